"""The router core: process :class:`~cerouter.types.Inbound` messages from any ingress.

For each message the pure :class:`~cerouter.pipeline.Pipeline` decides; the core starts every
delivery (:class:`~cerouter.delivery.dispatch.Dispatcher`), waits for the outcomes, dead-letters
every rejection, and settles the message through its settler: ack when every destination
accepted it, retry with a growing delay while attempts remain, dead-letter then terminate after
the last. Where a message came from never matters here.

Two entry points, one set of rules:

* :meth:`RouterCore.handle` — one message from a fire-and-forget ingress (core NATS). The happy
  path costs no task and no flush; a message that needs waiting (JetStream destinations,
  requests, dead letters) finishes in a task, bounded by ``max_inflight``.
* :meth:`RouterCore.handle_batch` — messages that must be settled (JetStream). Every delivery of
  the batch is in flight at once; one flush covers its core publishes and one wait its
  acknowledgements. A failed flush means the core publishes may be lost, so those events are
  retried, never acked.

Every outcome is counted in :class:`~cerouter.service.stats.Stats`; with ``metrics`` on (the
default) the core also counts what ``/metrics`` shows per ingress, route and schema, and times
each event with ``perf_counter`` (about 0.07 µs a call).

With tracing on (``tracing=True`` or a ``tracer_provider``, :mod:`cerouter.tracing`) each event
gets one span, ``cerouter route``, from before the pipeline until it is settled; receive,
validate and route are its attributes (``cerouter.routes``, ``cerouter.outcome``,
``cerouter.rejections``) rather than spans of their own, so a traced event costs one span plus
one per delivery. With tracing off the core holds ``None`` and pays one ``is None`` test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter, time_ns
from typing import Any

import structlog
from nats.aio.client import Client
from nats.js.client import JetStreamContext

from cerouter.binding import DecodedEvent, Mode, decode, encode
from cerouter.delivery.conflicts import conflicts, duplicates
from cerouter.delivery.deadletter import build_deadletter
from cerouter.delivery.deadletter_store import Recreate, store_deadletter
from cerouter.delivery.dispatch import Dispatcher, Pending, failures_of, wait_all
from cerouter.errors import BindingError, DeliveryError
from cerouter.ingress.base import Verdict
from cerouter.log import event_fields, get_logger
from cerouter.nats.connection import FlushGroup
from cerouter.pipeline import Decision, Pipeline, Rejection
from cerouter.service.metrics import failed_schema
from cerouter.service.stats import UNDECODED, IngressKind, Outcome, Stats
from cerouter.tracing import CE_TRACEPARENT, TRACEPARENT, Tracing
from cerouter.types import Inbound, Reason, Stage

log = get_logger("cerouter.router")

DEADLETTER_RETRIES = 10
"""Attempts past ``max_deliver`` to store a dead letter before the event is abandoned."""


@dataclass(frozen=True)
class RouterOptions:
    """Runtime settings that are not part of routes.yaml."""

    urls: tuple[str, ...] | None = None  # overrides routes.yaml's nats.urls
    max_hops: int = 8
    ack_timeout: float = 10.0  # for JetStream publish acknowledgements
    retry_initial: float = 0.5  # first retry delay; doubles per delivery
    retry_max: float = 30.0
    max_inflight: int = 10_000  # fire-and-forget events waiting for acknowledgements at once
    drain_timeout: float = 15.0  # the whole shutdown: intake, in-flight events, connection
    stats_interval: float = 30.0
    log_values: bool = False  # quote event values in dead-letter reasons and logs
    metrics: bool = True  # count per ingress, route and schema, time events, serve a registry
    metrics_interval: float = 5.0  # how often JetStream consumer lag is read for /metrics
    tracing: bool = False  # OpenTelemetry spans per event (the global TracerProvider)
    tracer_provider: Any = None  # a TracerProvider of the caller's own: tracing on, with it


def retry_delay(attempt: int, initial: float, maximum: float) -> float:
    """The delay before the next delivery after ``attempt`` failed ones: exponential, capped."""
    return float(min(initial * (2 ** max(attempt - 1, 0)), maximum))


def _fields(event: DecodedEvent | None, inbound: Inbound | None = None) -> dict[str, object]:
    if event is None and inbound is not None:
        # Rejected before decoding (a routing loop): worth decoding now, on this rare path,
        # so that the log line still names the event.
        with contextlib.suppress(BindingError):
            event = decode(inbound.headers, inbound.payload)
    return event_fields(event.attributes if event is not None else None)


class RouterCore:
    """Processes inbound messages with the current pipeline; swap :attr:`pipeline` to reload."""

    def __init__(
        self,
        pipeline: Pipeline,
        nc: Client,
        js: JetStreamContext,
        dispatcher: Dispatcher,
        stats: Stats,
        options: RouterOptions,
        recreate_deadletter: Recreate | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.stats = stats
        self.options = options
        self._nc = nc
        self._js = js
        self._dispatcher = dispatcher
        self._recreate = recreate_deadletter
        self._inflight: set[asyncio.Task[object]] = set()
        self._slots = asyncio.Semaphore(options.max_inflight)
        self._flushes = FlushGroup(nc)
        self._metered = options.metrics
        self._received_core = stats.received[IngressKind.CORE]
        self._tracing: Tracing | None = None
        if options.tracing or options.tracer_provider is not None:
            self._tracing = Tracing(options.tracer_provider)

    @property
    def inflight(self) -> int:
        """Fire-and-forget events still waiting for their deliveries (the ``max_inflight`` use)."""
        return len(self._inflight)

    # ------------------------------------------------------------------ fire and forget

    async def handle(self, inbound: Inbound) -> None:
        """Process one message; a message with a settler goes through :meth:`handle_batch`."""
        if inbound.settler is not None:
            await self.handle_batch((inbound,))
            return
        self.stats.count(Outcome.RECEIVED)
        pipeline = self.pipeline
        metered = self._metered
        if self._tracing is not None:
            await self._handle_traced(inbound, self._tracing)
            return
        if metered:
            # _taken inlined: this is the per-message path of core NATS (saves ~0.1 µs).
            started = perf_counter()
            decision = pipeline.process(inbound.headers, inbound.payload)
            self.stats.pipeline_seconds += perf_counter() - started
            event = decision.event
            self._received_core[UNDECODED if event is None else event.mode] += 1
        else:
            started = 0.0
            decision = pipeline.process(inbound.headers, inbound.payload)
        pending = await self._begin(decision, inbound)
        if decision.rejections or any(p.waiter is not None for p in pending):
            # Bounded: when JetStream or a responder is slow, stop taking messages rather than
            # piling up waiting tasks without limit (core NATS then applies its own limits).
            await self._slots.acquire()
            finish = self._finish(
                pipeline, inbound, decision, pending, flush_error=None, started=started
            )
            self._track(finish)
        elif decision.dropped:
            self.stats.count(Outcome.DROPPED)
        else:
            self.stats.count(Outcome.ROUTED)
            if metered:
                self.stats.dispatch.observe(perf_counter() - started)

    async def _handle_traced(self, inbound: Inbound, tracing: Tracing) -> None:
        # handle() with a span: kept apart so that the untraced path stays as it was.
        pipeline = self.pipeline
        started = perf_counter()
        began = time_ns()
        decision = pipeline.process(inbound.headers, inbound.payload)
        if self._metered:
            self._taken(decision, started, IngressKind.CORE)
        span = self._span(tracing, inbound, decision, IngressKind.CORE, began)
        pending = await self._begin(decision, inbound, span)
        if decision.rejections or any(p.waiter is not None for p in pending):
            await self._slots.acquire()
            finish = self._finish(
                pipeline, inbound, decision, pending, flush_error=None, started=started, span=span
            )
            self._track(finish)
            return
        # Nothing is logged on this path: the span need not become the current one (saves the
        # context switch in and out, ~5 µs).
        if decision.dropped:
            self.stats.count(Outcome.DROPPED)
            span.set_attribute("cerouter.outcome", "dropped")
        else:
            self._routed(started)
            span.set_attribute("cerouter.outcome", "routed")
        span.end()

    @staticmethod
    def _span(
        tracing: Tracing, inbound: Inbound, decision: Decision, ingress: str, began: int
    ) -> Any:
        event = decision.event
        span = tracing.router_span(
            inbound.headers,
            event.attributes if event is not None else None,
            ingress=ingress,
            started=began,
        )
        # Few attributes: the SDK checks each one (~1 µs apiece on a slow machine).
        if decision.hops:
            span.set_attribute("cerouter.hops", decision.hops)
        if decision.matches:
            span.set_attribute("cerouter.routes", [m.route.name for m in decision.matches])
        if decision.rejections:
            tracing.failed(span, [str(r.reason) for r in decision.rejections])
        return span

    def _taken(self, decision: Decision, started: float, ingress: str) -> None:
        # Only with metrics on: the pipeline's time and the message's ingress and mode.
        stats = self.stats
        stats.pipeline_seconds += perf_counter() - started
        event = decision.event
        # Mode is a StrEnum: its members hash and compare as their strings.
        stats.received[ingress][UNDECODED if event is None else event.mode] += 1

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109 - a shutdown budget
        """Wait for fire-and-forget events still in flight; return how many did not finish."""
        if not self._inflight:
            return 0
        _, late = await asyncio.wait(set(self._inflight), timeout=timeout)
        return len(late)

    # ------------------------------------------------------------------ settled batches

    async def handle_http(self, batch: Sequence[Inbound]) -> list[Verdict]:
        """:meth:`handle_batch` for the HTTP gateway (its events are counted as ``http``)."""
        return await self.handle_batch(batch, IngressKind.HTTP)

    async def handle_batch(
        self, batch: Sequence[Inbound], ingress: str = IngressKind.JETSTREAM
    ) -> list[Verdict]:
        """Process messages that must be settled: deliver all, flush once, wait once, settle.

        Returns what happened to each, in order, for an ingress that answers its producer.
        ``ingress`` (an :class:`~cerouter.service.stats.IngressKind`) is what they are counted as.
        """
        pipeline = self.pipeline
        metered = self._metered
        # One intake time for the batch: every message of it was received by now.
        intake = perf_counter() if metered else 0.0
        started: list[tuple[Inbound, Decision, list[Pending]]] = []
        tracing = self._tracing
        spans: list[Any] = []
        buffered = False
        for inbound in batch:
            self.stats.count(Outcome.RECEIVED)
            before = perf_counter() if metered else 0.0
            began = time_ns() if tracing is not None else 0
            decision = pipeline.process(inbound.headers, inbound.payload)
            if metered:
                self._taken(decision, before, ingress)
            span = None
            if tracing is not None:
                span = self._span(tracing, inbound, decision, ingress, began)
                spans.append(span)
            pending = await self._begin(decision, inbound, span)
            buffered = buffered or any(p.waiter is None for p in pending)
            started.append((inbound, decision, pending))
        flush_error: str | None = None
        if buffered:
            # Core publishes are only buffered: the server has them once a flush returns.
            try:
                await self._flushes.flush(int(max(self.options.ack_timeout, 1)))
            except Exception as exc:
                flush_error = f"flush failed: {exc or type(exc).__name__}"
        await wait_all([p for _, _, pending in started for p in pending], self.options.ack_timeout)
        verdicts: list[Verdict] = []
        for index, (inbound, decision, pending) in enumerate(started):
            failures = await self._finish(
                pipeline,
                inbound,
                decision,
                pending,
                flush_error=flush_error,
                started=intake,
                span=spans[index] if spans else None,
            )
            verdicts.append(Verdict(decision, tuple(failures)))
        return verdicts

    # ------------------------------------------------------------------ shared

    async def _begin(self, decision: Decision, inbound: Inbound, span: Any = None) -> list[Pending]:
        if not decision.matches or decision.event is None:
            return []
        event = decision.event
        headers = inbound.headers
        payload = inbound.payload
        trace = None
        if span is not None:
            trace = Tracing.headers_of(span)  # the per-hop parent of every delivery
            event, headers, payload = _with_creation_context(
                trace[TRACEPARENT], event, headers, payload
            )
        pending = await self._dispatcher.start(
            event,
            decision.matches,
            headers=headers,
            payload=payload,
            hops=decision.hops,
            reply=inbound.reply,
            tracing=self._tracing if span is not None else None,
            span=span,
            trace=trace,
        )
        if self._metered:
            deliveries = self.stats.deliveries
            for p in pending:
                key = (p.route, p.destination.destination.kind)
                try:  # an exact dict, a zero-cost try: ~0.1 µs per delivery
                    deliveries[key] += 1
                except KeyError:
                    deliveries[key] = 1
        return pending

    async def _finish(
        self,
        pipeline: Pipeline,
        inbound: Inbound,
        decision: Decision,
        pending: list[Pending],
        *,
        flush_error: str | None,
        started: float,
        span: Any = None,
    ) -> list[Rejection]:
        if span is None:
            return await self._conclude(
                pipeline, inbound, decision, pending, flush_error=flush_error, started=started
            )
        assert self._tracing is not None  # a span only comes from it
        with self._tracing.current(span):  # the dead-letter log lines carry the span's ids
            failures = await self._conclude(
                pipeline, inbound, decision, pending, flush_error=flush_error, started=started
            )
            if failures:
                reasons = [str(r.reason) for r in (*decision.rejections, *failures)]
                self._tracing.failed(span, reasons)
                span.set_attribute("cerouter.outcome", "failed")
            elif decision.rejections:
                span.set_attribute("cerouter.outcome", "rejected")
            else:
                span.set_attribute("cerouter.outcome", "dropped" if decision.dropped else "routed")
        return failures

    async def _conclude(
        self,
        pipeline: Pipeline,
        inbound: Inbound,
        decision: Decision,
        pending: list[Pending],
        *,
        flush_error: str | None,
        started: float,
    ) -> list[Rejection]:
        if inbound.settler is None:
            await wait_all(pending, self.options.ack_timeout)
        failures = failures_of(pending, self.options.ack_timeout)
        if flush_error is not None:
            failures += unflushed(pending, flush_error)
        if decision.event is not None and (dups := duplicates(pending)):
            failures += await conflicts(self._js, decision.event, dups)
        settler = inbound.settler
        if failures:
            self._failed(failures)
        if not failures and not decision.rejections:
            if settler is not None:
                await settler.ack()
            if decision.dropped:
                self.stats.count(Outcome.DROPPED)
            else:
                self._routed(started)
            return failures
        if settler is not None and inbound.retryable and _worth_retrying(failures):
            await self._retry(inbound, decision, failures)
            return failures
        stored = await self._deadletter_all(
            pipeline, decision.event, inbound, [*decision.rejections, *failures]
        )
        if settler is not None:
            if not stored:
                await self._deadletter_refused(inbound, decision)
                return failures
            await (settler.terminate() if failures else settler.ack())
        if not failures and decision.matches:
            self._routed(started)
        return failures

    def _routed(self, started: float) -> None:
        self.stats.count(Outcome.ROUTED)
        if self._metered:
            self.stats.dispatch.observe(perf_counter() - started)

    def _failed(self, failures: list[Rejection]) -> None:
        # Counted before the retry-or-dead-letter decision: each attempt that failed counts.
        self.stats.count(Outcome.DELIVERY_FAILED, len(failures))
        if self._metered:
            counts = self.stats.delivery_failures
            for failure in failures:
                counts[(failure.route or "", failure.reason)] += 1

    async def _deadletter_refused(self, inbound: Inbound, decision: Decision) -> None:
        # The dead-letter stream did not take it either: keep it for a later try, a bounded
        # number of times, then give up loudly (a message NAKed forever blocks its consumer).
        assert inbound.settler is not None  # only settled messages come here
        attempt = inbound.attempt
        if attempt < inbound.max_attempts + DEADLETTER_RETRIES:
            delay = retry_delay(attempt, self.options.retry_initial, self.options.retry_max)
            await inbound.settler.retry(delay)
            return
        self.stats.count(Outcome.ABANDONED)
        log.error(
            "event abandoned: the dead-letter stream refused it on every attempt",
            attempt=attempt,
            subject=inbound.subject,
            origin=inbound.identity,
            **_fields(decision.event),
        )
        await inbound.settler.terminate()

    async def _retry(self, inbound: Inbound, decision: Decision, failures: list[Rejection]) -> None:
        assert inbound.settler is not None  # only settled messages are retried
        attempt = inbound.attempt
        delay = retry_delay(attempt, self.options.retry_initial, self.options.retry_max)
        self.stats.count(Outcome.RETRIED)
        log.info(
            "delivery failed, will retry",
            attempt=attempt,
            delay=delay,
            errors=[f.detail for f in failures],
            **_fields(decision.event),
        )
        await inbound.settler.retry(delay)

    async def _deadletter_all(
        self,
        pipeline: Pipeline,
        event: DecodedEvent | None,
        inbound: Inbound,
        rejections: Sequence[Rejection],
    ) -> bool:
        """Dead-letter each rejection; ``False`` if the dead-letter stream refused any."""
        settings = pipeline.config.deadletter
        attributes: Mapping[str, object] | None = event.attributes if event is not None else None
        ok = True
        attempt = inbound.attempt
        for rejection in rejections:
            if self._metered and (schema := failed_schema(pipeline, event, rejection)):
                self.stats.invalid[schema] += 1
            letter = build_deadletter(
                settings.subject,
                rejection,
                subject=inbound.subject,
                headers=inbound.headers,
                payload=inbound.payload,
                attributes=attributes,
                attempt=attempt,
                identity=inbound.identity,
                max_payload=self._nc.max_payload,
            )
            fields = {
                "reason": str(rejection.reason),
                "stage": str(rejection.stage),
                "detail": rejection.detail,
                "route": rejection.route,
                "subject": inbound.subject,
                "attempt": attempt,
                **_fields(event, inbound),
            }
            with structlog.contextvars.bound_contextvars(
                **{k: v for k, v in fields.items() if v is not None}
            ):
                try:
                    await store_deadletter(
                        self._js,
                        letter,
                        stream=settings.stream,
                        timeout=self.options.ack_timeout,
                        recreate=self._recreate,
                    )
                except DeliveryError as exc:
                    ok = False
                    self.stats.count(Outcome.DEADLETTER_FAILED)
                    log.error("dead-letter failed", error=str(exc))
                    continue
                self.stats.deadlettered(rejection.reason)
                log.warning("dead-lettered")
        return ok

    def _track(self, coro: Coroutine[object, object, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._inflight.discard(task)
        self._slots.release()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("event task failed", error=str(exc) or type(exc).__name__)


def _with_creation_context(
    value: str,
    event: DecodedEvent,
    headers: Mapping[str, str] | None,
    payload: bytes,
) -> tuple[DecodedEvent, Mapping[str, str] | None, bytes]:
    """The event as forwarded: with a CloudEvents ``traceparent`` extension (``value``, the
    router span's context) when it had none; an event that has one keeps it untouched."""
    if TRACEPARENT in event.attributes:
        return event, headers, payload
    traced = DecodedEvent(
        {**event.attributes, TRACEPARENT: value}, event.mode, event.data, event.data_kind
    )
    if event.mode is Mode.BINARY:
        return traced, {**(headers or {}), CE_TRACEPARENT: value}, payload
    try:
        message = encode(traced, Mode.STRUCTURED)
    except BindingError:  # it arrived as JSON, so this does not happen; if it did: as it came
        return event, headers, payload
    # The headers stay as they came: Content-Type already says structured.
    return traced, headers, message.payload


def _worth_retrying(failures: list[Rejection]) -> bool:
    # A destination that refused may take it next time; a message too large never fits.
    return any(f.reason is Reason.DELIVERY for f in failures)


def unflushed(pending: list[Pending], error: str) -> list[Rejection]:
    """One delivery failure per core publish of an event whose batch flush failed."""
    return [
        Rejection(
            Reason.DELIVERY,
            Stage.DELIVERY,
            f"{p.destination.destination.describe()}: {error}",
            route=p.route,
            destination=p.destination.subject,
        )
        for p in pending
        if p.waiter is None
    ]
