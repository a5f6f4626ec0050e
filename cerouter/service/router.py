"""The router service: one NATS connection, the router core, and the ingress adapters feeding it.

One :class:`Router` owns one NATS connection and everything it starts. Ingress adapters
(:mod:`cerouter.ingress`) turn messages into :class:`~cerouter.types.Inbound` values:

* core NATS subjects, subscribed in a queue group so that N routers share the load
  (at-most-once, as core NATS is);
* JetStream streams through a durable pull consumer shared by every router process
  (at-least-once, settled through the JetStream ack).

:class:`~cerouter.service.core.RouterCore` processes them; a reload swaps its pipeline, and a
message keeps the pipeline it started with.

With ``metrics`` on (the default) a router has a Prometheus registry of its own
(:attr:`Router.registry`, never the process-wide default one): its counters, JetStream lag read
in the background, and the process's CPU and memory. Whoever serves HTTP serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from nats.micro.service import Service
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.registry import CollectorRegistry

from cerouter.config.model import RouterConfig, StreamSpec
from cerouter.delivery.dispatch import Dispatcher
from cerouter.errors import CerouterError
from cerouter.ingress.base import Ingress
from cerouter.ingress.core import CoreIngress
from cerouter.ingress.jetstream import JetStreamIngress
from cerouter.log import get_logger
from cerouter.nats.connection import connect_service, full_flush
from cerouter.nats.jspub import JetStreamPublisher
from cerouter.nats.provision import provision_streams
from cerouter.pipeline import Pipeline
from cerouter.service.core import RouterCore, RouterOptions
from cerouter.service.metrics import JetStreamWatch, RouterCollector
from cerouter.service.micro import start_stats_service
from cerouter.service.stats import Stats, stats_snapshot
from cerouter.validation.registry import SchemaRegistry

log = get_logger("cerouter.router")


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
        self._pipeline = Pipeline(
            config, registry, max_hops=self.options.max_hops,
            include_values=self.options.log_values,
        )  # fmt: skip
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._core: RouterCore | None = None
        self._publisher: JetStreamPublisher | None = None
        self._ingresses: list[Ingress] = []
        self._stopping = asyncio.Event()
        self.lost = asyncio.Event()
        """Set when the connection closed for good while not stopping: the router is dead."""
        self._stats_task: asyncio.Task[None] | None = None
        self._micro: Service | None = None
        self._watch: JetStreamWatch | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self.registry: CollectorRegistry | None = None
        """This router's metrics (``None`` with ``RouterOptions(metrics=False)``)."""
        if self.options.metrics:
            self.registry = registry_for(self)

    # ------------------------------------------------------------------ properties

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline new messages are processed with."""
        return self._core.pipeline if self._core is not None else self._pipeline

    @property
    def config(self) -> RouterConfig:
        """The configuration in force."""
        return self.pipeline.config

    @property
    def nc(self) -> Client:
        """The NATS connection (once started)."""
        if self._nc is None:
            raise CerouterError("the router is not started")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context (once started)."""
        if self._js is None:
            raise CerouterError("the router is not started")
        return self._js

    @property
    def ready(self) -> bool:
        """Started, connected and not lost: what a readiness probe reports."""
        return self._nc is not None and self._nc.is_connected and not self.lost.is_set()

    def snapshot(self) -> dict[str, Any]:
        """The counters now, with the routes in force (see :func:`stats_snapshot`)."""
        return stats_snapshot(self.config, self.stats)

    @property
    def ingresses(self) -> tuple[Ingress, ...]:
        """The running ingress adapters (once started)."""
        return tuple(self._ingresses)

    @property
    def watch(self) -> JetStreamWatch | None:
        """What reads JetStream lag for ``/metrics`` (once started, with metrics on)."""
        return self._watch

    @property
    def inflight(self) -> int:
        """Fire-and-forget events waiting for their deliveries now."""
        return self._core.inflight if self._core is not None else 0

    @property
    def core(self) -> RouterCore:
        """The router core (once started): what every ingress hands its messages to."""
        if self._core is None:
            raise CerouterError("the router is not started")
        return self._core

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, provision streams, start the ingress adapters."""
        config = self.config
        nc = self._nc = await connect_service(
            config.nats, urls=self.options.urls, on_event=self._on_connection
        )
        js = self._js = nc.jetstream()
        self._publisher = JetStreamPublisher(nc)
        await self._publisher.start()
        await self._provision(config.streams)
        core = self._core = RouterCore(
            self._pipeline,
            nc,
            js,
            Dispatcher(nc, self._publisher),
            self.stats,
            self.options,
            recreate_deadletter=self._recreate_deadletter,
        )
        ingress = config.ingress
        if ingress.core is not None:
            self._ingresses.append(CoreIngress(nc, ingress.core, core.handle))
        for spec in ingress.jetstream:
            self._ingresses.append(JetStreamIngress(nc, js, spec, core.handle_batch))
        for adapter in self._ingresses:
            await adapter.start()
        self._micro = await start_stats_service(nc, self.snapshot)
        await full_flush(nc)  # subscribed for real before anyone is told we are started
        self._stats_task = asyncio.create_task(self._report_stats())
        if self.registry is not None:
            consumers = [(spec.stream, spec.durable) for spec in ingress.jetstream]
            self._watch = JetStreamWatch(
                js,
                consumers,
                lambda: self.config.deadletter.stream,
                interval=self.options.metrics_interval,
                timeout=min(self.options.ack_timeout, 5.0),
            )
            self._watch_task = asyncio.create_task(self._watch.run())
        log.info(
            "router started",
            url=nc.connected_url.geturl() if nc.connected_url else None,
            routes=len(config.routes),
            ingress=[adapter.name for adapter in self._ingresses],
        )

    async def _provision(self, streams: tuple[StreamSpec, ...]) -> None:
        assert self._js is not None  # called once connected
        for item in await provision_streams(self._js, streams):
            if item.action == "updated":
                log.info("stream updated", stream=item.name, changes=list(item.changes))
            elif item.action == "created":
                log.info("stream created", stream=item.name)

    async def _recreate_deadletter(self) -> None:
        # The dead-letter stream was deleted while running: provision it again as declared.
        name = self.config.deadletter.stream
        specs = tuple(s for s in self.config.streams if s.name == name)
        log.warning("dead-letter stream missing; provisioning it again", stream=name)
        await self._provision(specs)

    async def stop(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - a budget
        """Stop intake, finish in-flight events, drain the connection: all within ``timeout``
        seconds (default: the options' ``drain_timeout``), one deadline for every phase."""
        self._stopping.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.options.drain_timeout if timeout is None else timeout)

        def left() -> float:
            return max(0.0, deadline - loop.time())

        await asyncio.gather(*(adapter.stop(left()) for adapter in self._ingresses))
        if self._micro is not None:
            with contextlib.suppress(Exception):
                await self._micro.stop()
        if self._core is not None:
            late = await self._core.drain(left())
            if late:
                log.warning("shutdown deadline passed with events in flight", count=late)
        for task in (self._stats_task, self._watch_task):
            if task is not None:
                task.cancel()
        if self._publisher is not None:
            await self._publisher.close()  # acknowledgements still missing now never come
        if self._nc is not None and not self._nc.is_closed:
            self._nc.options["drain_timeout"] = max(left(), 0.5)
            with contextlib.suppress(Exception):
                await self._nc.drain()
        log.info("router stopped", **self.stats.snapshot())

    async def reload(self, config: RouterConfig, registry: SchemaRegistry | None) -> None:
        """Route new messages with a new configuration; messages in flight keep the old one."""
        pipeline = Pipeline(
            config, registry, max_hops=self.options.max_hops,
            include_values=self.options.log_values,
        )  # fmt: skip
        await self._provision(config.streams)
        old = self.pipeline.config
        self._pipeline = pipeline
        if self._core is not None:
            self._core.pipeline = pipeline
        if old.ingress != config.ingress or old.nats != config.nats:
            log.warning("ingress or nats settings changed; they take effect after a restart")
        log.info("configuration reloaded", routes=len(config.routes), path=str(config.path))

    async def __aenter__(self) -> Router:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ reporting

    def _on_connection(self, state: str, detail: str) -> None:
        if state == "error":
            log.warning("nats error", error=detail)
        elif state == "reconnected":
            log.info("nats reconnected", url=detail)
        elif self._stopping.is_set():
            log.debug(f"nats {state}")  # the expected end of a drain
        elif state == "closed":
            # nats-py gave up (e.g. the server refused a protocol message): nothing will be
            # routed again, so say so and let the owner exit rather than linger as a zombie.
            log.error("nats connection closed for good; the router stops")
            self.lost.set()
        else:
            log.warning(f"nats {state}")

    async def _report_stats(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(self.options.stats_interval)
            now = self.stats.snapshot()
            if now != last:
                log.info("traffic", **now)
                last = now


def registry_for(router: Router) -> CollectorRegistry:
    """A registry of the router's own: its collector, plus the process's CPU, memory and GC."""
    registry = CollectorRegistry()
    registry.register(RouterCollector(router.stats, lambda: router.inflight, lambda: router.watch))
    # Always with registry=: without it these register in prometheus_client's global one.
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
