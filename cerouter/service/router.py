"""The router service: consume CloudEvents from NATS, dispatch them, dead-letter what fails.

One :class:`Router` owns one NATS connection and every task it starts. Ingress:

* core NATS subjects, subscribed in a queue group so that N routers share the load
  (at-most-once, as core NATS is);
* JetStream streams through a durable pull consumer shared by every router process
  (at-least-once): a fetched batch is processed with all deliveries in flight at once, then each
  message is acked only after all its destinations accepted it, NAKed with a growing delay when
  one did not, and dead-lettered then TERMed after ``max_deliver`` attempts.

The decisions are made by :class:`~cerouter.pipeline.Pipeline` (pure); this module only does I/O.
A reload swaps the pipeline; a message keeps the pipeline it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.client import JetStreamContext

from cerouter.binding import DecodedEvent
from cerouter.config.model import JetStreamIngress as IngressSpec
from cerouter.config.model import RouterConfig
from cerouter.delivery.deadletter import build_deadletter
from cerouter.delivery.dispatch import Dispatcher, Pending, failures_of, settle, wait_all
from cerouter.errors import CerouterError
from cerouter.ingress.jetstream import JetStreamIngress
from cerouter.nats.connection import connect_service, full_flush
from cerouter.nats.jspub import JetStreamPublisher
from cerouter.nats.provision import provision_streams
from cerouter.pipeline import Decision, Pipeline, Rejection
from cerouter.service.stats import Outcome, Stats
from cerouter.validation.registry import SchemaRegistry

log = structlog.get_logger("cerouter")


@dataclass(frozen=True)
class RouterOptions:
    """Runtime settings that are not part of routes.yaml."""

    urls: tuple[str, ...] | None = None  # overrides routes.yaml's nats.urls
    max_hops: int = 8
    ack_timeout: float = 10.0  # for JetStream publish acknowledgements
    retry_initial: float = 0.5  # first NAK delay; doubles per delivery
    retry_max: float = 30.0
    max_inflight: int = 10_000  # core-ingress events waiting for acknowledgements at once
    drain_timeout: float = 15.0
    stats_interval: float = 30.0


def retry_delay(attempt: int, initial: float, maximum: float) -> float:
    """The NAK delay after ``attempt`` failed deliveries: exponential, capped."""
    return float(min(initial * (2 ** max(attempt - 1, 0)), maximum))


class Router:
    """A running router: call :meth:`start`, then :meth:`stop` (or use ``async with``)."""

    def __init__(
        self,
        config: RouterConfig,
        registry: SchemaRegistry | None,
        options: RouterOptions | None = None,
    ) -> None:
        self.options = options or RouterOptions()
        self.stats = Stats()
        self._pipeline = Pipeline(config, registry, max_hops=self.options.max_hops)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._dispatcher: Dispatcher | None = None
        self._publisher: JetStreamPublisher | None = None
        self._subs: list[Subscription] = []
        self._ingresses: list[JetStreamIngress] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.options.max_inflight)
        self._stopping = asyncio.Event()
        self._stats_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline new messages are processed with."""
        return self._pipeline

    @property
    def config(self) -> RouterConfig:
        """The configuration in force."""
        return self._pipeline.config

    @property
    def nc(self) -> Client:
        """The NATS connection (once started)."""
        if self._nc is None:
            raise CerouterError("the router is not started")
        return self._nc

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, provision streams, subscribe the ingress."""
        config = self.config
        self._nc = await connect_service(
            config.nats, urls=self.options.urls, on_event=self._on_connection
        )
        self._js = self._nc.jetstream()
        self._publisher = JetStreamPublisher(self._nc)
        await self._publisher.start()
        self._dispatcher = Dispatcher(self._nc, self._publisher)
        await self._provision(config)
        ingress = config.ingress
        if ingress.core is not None:
            for subject in ingress.core.subjects:
                sub = await self._nc.subscribe(
                    subject, queue=ingress.core.queue, cb=self._on_core_message
                )
                self._subs.append(sub)
        for spec in ingress.jetstream:
            puller = JetStreamIngress(self._nc, self._js, spec, self._process_batch)
            await puller.start()
            self._ingresses.append(puller)
        await full_flush(self._nc)  # subscribed for real before anyone is told we are started
        self._stats_task = asyncio.create_task(self._report_stats())
        log.info(
            "router started",
            url=self._nc.connected_url.geturl() if self._nc.connected_url else None,
            routes=len(config.routes),
            core=list(ingress.core.subjects) if ingress.core else [],
            jetstream=[s.stream for s in ingress.jetstream],
        )

    async def _provision(self, config: RouterConfig) -> None:
        assert self._js is not None
        for item in await provision_streams(self._js, config.streams):
            if item.action == "updated":
                log.info("stream updated", stream=item.name, changes=list(item.changes))
            elif item.action == "created":
                log.info("stream created", stream=item.name)

    async def stop(self) -> None:
        """Stop intake, finish in-flight events up to the drain timeout, drain the connection."""
        self._stopping.set()
        for sub in self._subs:
            # drain, not unsubscribe: messages already buffered for us are still routed.
            with contextlib.suppress(Exception):
                await sub.drain()  # type: ignore[no-untyped-call]
        deadline = self.options.drain_timeout
        await asyncio.gather(*(ingress.stop(deadline) for ingress in self._ingresses))
        if self._inflight:
            _, late_tasks = await asyncio.wait(set(self._inflight), timeout=deadline)
            if late_tasks:
                log.warning("shutdown deadline passed with events in flight", count=len(late_tasks))
        if self._stats_task is not None:
            self._stats_task.cancel()
        if self._publisher is not None:
            await self._publisher.close()  # acknowledgements still missing now never come
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.drain()
        log.info("router stopped", **self.stats.snapshot())

    async def reload(self, config: RouterConfig, registry: SchemaRegistry | None) -> None:
        """Route new messages with a new configuration; messages in flight keep the old one."""
        pipeline = Pipeline(config, registry, max_hops=self.options.max_hops)
        await self._provision(config)
        old = self._pipeline.config
        self._pipeline = pipeline
        if old.ingress != config.ingress or old.nats != config.nats:
            log.warning("ingress or nats settings changed; they take effect after a restart")
        log.info("configuration reloaded", routes=len(config.routes), path=str(config.path))

    async def __aenter__(self) -> Router:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ core ingress

    async def _on_core_message(self, msg: Msg) -> None:
        self.stats.count(Outcome.RECEIVED)
        pipeline = self._pipeline
        decision = pipeline.process(msg.headers, msg.data)
        pending = await self._begin(decision, msg)
        if decision.rejections or any(p.waiter is not None for p in pending):
            # Bounded: when JetStream or a responder is slow, stop taking messages rather than
            # piling up waiting tasks without limit (core NATS then applies its own limits).
            await self._slots.acquire()
            self._track(self._finish_core(pipeline, decision, msg, pending))
        elif decision.dropped:
            self.stats.count(Outcome.DROPPED)
        else:
            self.stats.count(Outcome.ROUTED)

    async def _finish_core(
        self, pipeline: Pipeline, decision: Decision, msg: Msg, pending: list[Pending]
    ) -> None:
        failures = await settle(pending, self.options.ack_timeout)
        rejections = [*decision.rejections, *failures]
        await self._deadletter_all(pipeline, decision.event, msg, rejections, attempt=1)
        if not failures and decision.matches:
            self.stats.count(Outcome.ROUTED)

    # ------------------------------------------------------------------ JetStream ingress

    async def _process_batch(self, spec: IngressSpec, msgs: list[Msg]) -> None:
        pipeline = self._pipeline
        started: list[tuple[Msg, Decision, list[Pending]]] = []
        for msg in msgs:
            self.stats.count(Outcome.RECEIVED)
            decision = pipeline.process(msg.headers, msg.data)
            started.append((msg, decision, await self._begin(decision, msg)))
        # Core publishes are only buffered: one flush covers the batch before anything is acked,
        # and one wait covers every JetStream acknowledgement and request of the batch.
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=int(max(self.options.ack_timeout, 1)))
        await wait_all([p for _, _, pending in started for p in pending], self.options.ack_timeout)
        for msg, decision, pending in started:
            failures = failures_of(pending, self.options.ack_timeout)
            if failures or decision.rejections:
                await self._settle_failed(spec, pipeline, msg, decision, failures)
                continue
            await msg.ack()
            self.stats.count(Outcome.DROPPED if decision.dropped else Outcome.ROUTED)

    async def _settle_failed(
        self,
        spec: IngressSpec,
        pipeline: Pipeline,
        msg: Msg,
        decision: Decision,
        failures: list[Rejection],
    ) -> None:
        attempt = msg.metadata.num_delivered or 1
        delay = retry_delay(attempt, self.options.retry_initial, self.options.retry_max)
        if failures and attempt < spec.max_deliver:
            self.stats.count(Outcome.RETRIED)
            log.info(
                "delivery failed, will retry",
                attempt=attempt,
                delay=delay,
                errors=[f.detail for f in failures],
                **_event_fields(decision.event),
            )
            await msg.nak(delay=delay)
            return
        rejections = [*decision.rejections, *failures]
        if not await self._deadletter_all(pipeline, decision.event, msg, rejections, attempt):
            # The dead-letter stream did not take it either: keep the message for a later try.
            await msg.nak(delay=delay)
            return
        if failures:
            await msg.term()
            return
        await msg.ack()
        if decision.matches:
            self.stats.count(Outcome.ROUTED)

    # ------------------------------------------------------------------ shared

    async def _begin(self, decision: Decision, msg: Msg) -> list[Pending]:
        if not decision.matches or decision.event is None:
            return []
        assert self._dispatcher is not None
        return await self._dispatcher.start(
            decision.event,
            decision.matches,
            headers=msg.headers,
            payload=msg.data,
            hops=decision.hops,
            reply=msg.reply or None,
        )

    async def _deadletter_all(
        self,
        pipeline: Pipeline,
        event: DecodedEvent | None,
        msg: Msg,
        rejections: Sequence[Rejection],
        attempt: int,
    ) -> bool:
        """Dead-letter each rejection; ``False`` if the dead-letter stream refused any."""
        if not rejections:
            return True
        assert self._js is not None
        ok = True
        for rejection in rejections:
            letter = build_deadletter(
                pipeline.config.deadletter,
                rejection,
                subject=msg.subject,
                headers=msg.headers,
                payload=msg.data,
                event=event,
                attempt=attempt,
            )
            letter.headers["Nats-Msg-Id"] = letter.msg_id
            try:
                await asyncio.wait_for(
                    self._js.publish(
                        letter.subject,
                        letter.payload,
                        headers=letter.headers,
                        stream=pipeline.config.deadletter.stream,
                    ),
                    self.options.ack_timeout,
                )
            except Exception as exc:
                ok = False
                self.stats.count(Outcome.DEADLETTER_FAILED)
                log.error(
                    "dead-letter failed",
                    reason=rejection.reason,
                    detail=rejection.detail,
                    error=str(exc) or type(exc).__name__,
                    subject=msg.subject,
                    **_event_fields(event),
                )
                continue
            self.stats.deadlettered(rejection.reason)
            log.warning(
                "dead-lettered",
                reason=rejection.reason,
                stage=rejection.stage,
                detail=rejection.detail,
                route=rejection.route,
                subject=msg.subject,
                attempt=attempt,
                **_event_fields(event),
            )
        return ok

    def _on_connection(self, state: str, detail: str) -> None:
        if state == "error":
            log.warning("nats error", error=detail)
        elif state == "reconnected":
            log.info("nats reconnected", url=detail)
        elif self._stopping.is_set():
            log.debug(f"nats {state}")  # the expected end of a drain
        else:
            log.warning(f"nats {state}")

    def _track(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _report_stats(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.options.stats_interval)
            now = self.stats.snapshot()
            if now != last:
                log.info("traffic", **now)
                last = now


def _event_fields(event: DecodedEvent | None) -> Mapping[str, object]:
    if event is None:
        return {}
    attrs = event.attributes
    return {
        "ce_id": attrs.get("id"),
        "ce_type": attrs.get("type"),
        "ce_source": attrs.get("source"),
    }
