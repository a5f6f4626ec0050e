"""``serve()``: the router service as a library — embedded server, router, signals, reload.

::

    async with serve(config, registry, embedded=ServerConfig()) as service:
        print("routing, publish to", service.url)
        await service.wait()          # until SIGINT/SIGTERM or service.request_stop()

``cerouter run`` is this plus argument parsing; the test suite and (later) the HTTP gateway and
the pytest plugin use the same function. Order: signal handlers first (a SIGTERM during start-up
means "stop as soon as started", not death by signal), then the embedded server when asked for,
then the router. Shutdown runs in reverse under one deadline (``options.drain_timeout``): stop
intake, finish in-flight events, drain the connection, stop the embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from nats.aio.client import Client

from cerouter.config.load import load_router_config
from cerouter.config.model import RouterConfig
from cerouter.errors import CerouterError
from cerouter.gateway import (
    GatewayServer,
    MetricsServer,
    authenticator,
    start_gateway,
    start_metrics_server,
)
from cerouter.lifecycle import Deadline, Lifecycle
from cerouter.log import get_logger
from cerouter.nats.connection import connect_service
from cerouter.nats.embedded import EmbeddedServer, ServerConfig
from cerouter.service.core import RouterOptions
from cerouter.service.router import Router
from cerouter.validation.registry import SchemaRegistry

log = get_logger("cerouter.service")

Fingerprint = tuple[tuple[str, float], ...]


@dataclass
class Service:
    """A running service, as :func:`serve` yields it."""

    router: Router
    server: EmbeddedServer | None
    lifecycle: Lifecycle
    reload_from: Path | None
    token: str | None = field(default=None, repr=False)  # replaces routes.yaml's credentials
    gateway: GatewayServer | None = None  # the HTTP gateway, when routes.yaml has ``http``
    feeds: Client | None = field(default=None, repr=False)  # the gateway's event streams' own
    metrics: MetricsServer | None = None  # the metrics-only server (``metrics=`` of serve)

    @property
    def metrics_url(self) -> str | None:
        """Where ``GET /metrics`` answers: the metrics server, else the gateway, else nowhere."""
        if self.metrics is not None:
            return self.metrics.url + "/metrics"
        if self.gateway is not None and self.router.registry is not None:
            return self.gateway.url + "/metrics"
        return None

    @property
    def url(self) -> str:
        """The URL the router is connected to (where producers publish)."""
        connected = self.router.nc.connected_url
        return connected.geturl() if connected is not None else ""

    async def wait(self) -> None:
        """Return once a stop was requested (signal or :meth:`request_stop`), or the router's
        connection closed for good (then :attr:`lost` is true)."""
        waiters = {
            asyncio.ensure_future(self.lifecycle.stop.wait()),
            asyncio.ensure_future(self.router.lost.wait()),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    @property
    def lost(self) -> bool:
        """Whether the router's connection closed for good (the process should exit non-zero)."""
        return self.router.lost.is_set()

    def request_stop(self) -> None:
        """Ask the service to stop (what SIGTERM does)."""
        self.lifecycle.stop.set()

    def request_reload(self) -> None:
        """Ask the service to reload routes.yaml (what SIGHUP does)."""
        self.lifecycle.reload.set()

    async def reload(self) -> bool:
        """Reload routes.yaml and the schemas now; ``False`` (logged) if they fail to load, in
        which case the running configuration stays in force."""
        if self.reload_from is None:
            return False
        try:
            config, registry = await asyncio.to_thread(load_router_config, self.reload_from)
            await self.router.reload(_authenticated(config, self.token), registry)
        except Exception as exc:  # whatever went wrong, the running configuration must survive
            log.error(
                "reload rejected; the previous configuration stays in force",
                error=str(exc) or type(exc).__name__,
            )
            return False
        return True


@asynccontextmanager
async def serve(
    config: RouterConfig,
    registry: SchemaRegistry | None,
    options: RouterOptions | None = None,
    *,
    embedded: ServerConfig | None = None,
    token: str | None = None,
    reload_from: Path | None = None,
    watch: bool = False,
    signals: bool = True,
    metrics: tuple[str, int] | None = None,
) -> AsyncIterator[Service]:
    """Run the router (on an embedded server when ``embedded`` is given) until the block exits.

    ``reload_from`` is the routes file SIGHUP (and :meth:`Service.reload`) reloads; ``watch``
    also reloads when it or a schema file changes. ``signals=False`` leaves signal handling to
    the caller (for a program that embeds the router). ``token`` authenticates the router instead
    of routes.yaml's ``nats`` credentials; it defaults to the embedded server's own
    (``embedded.token``).

    ``metrics`` is a ``(host, port)`` to serve ``/metrics``, ``/healthz`` and ``/readyz`` on
    (port 0: a free one). The gateway, when routes.yaml has ``http``, serves ``/metrics`` too;
    when ``metrics`` is the gateway's own address, no second server is started.
    """
    options = options or RouterOptions()
    if metrics is not None and not options.metrics:
        raise CerouterError("metrics=(host, port) needs RouterOptions(metrics=True)")
    if token is None and embedded is not None:
        token = embedded.token
    config = _authenticated(config, token)
    # The gateway's tokens are read first: a broken tokens file is a start-up error before any
    # server starts, stream is provisioned or signal handler is installed.
    auth = authenticator(config.http) if config.http is not None else None
    lifecycle = Lifecycle()
    if signals:
        lifecycle.install_signals(reload=reload_from is not None)
    # Taken before start-up, so a change made while the router starts is not missed.
    baseline = _fingerprint(reload_from, config) if watch and reload_from else None
    server: EmbeddedServer | None = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if embedded is not None:
            server = EmbeddedServer(embedded)
            await server.__aenter__()
            log.info("embedded nats-server started", url=server.url, store=str(server.store_dir))
            options = replace(options, urls=(server.url,))
        router = Router(config, registry, options)
        await router.start()
        service = Service(router, server, lifecycle, reload_from, token)
        tasks.append(asyncio.create_task(_reloads(service)))
        if baseline is not None and reload_from is not None:
            tasks.append(asyncio.create_task(_watch(service, reload_from, baseline)))
        try:
            if config.http is not None:
                feeds = await connect_service(
                    replace(config.nats, name=f"{config.nats.name} sse"),
                    urls=options.urls,
                    on_event=_feeds_event,
                )
                service.feeds = feeds
                service.gateway = await start_gateway(
                    config.http,
                    submit=router.core.handle_http,
                    nc=router.nc,
                    js=router.js,
                    ready=lambda: router.ready,
                    drain_timeout=options.drain_timeout,
                    auth=auth,
                    streams=config.streams,
                    registry=router.registry,
                    feeds_nc=feeds,
                    snapshot=router.snapshot,
                )
            http = config.http
            if metrics is not None and (http is None or metrics != (http.host, http.port)):
                assert router.registry is not None  # checked above: metrics are on
                service.metrics = await start_metrics_server(
                    router.registry, *metrics, ready=lambda: router.ready
                )
            yield service
        finally:
            deadline = Deadline(options.drain_timeout)
            log.info("stopping: draining in-flight events")
            for task in tasks:
                task.cancel()
            if service.gateway is not None:
                # First: no new HTTP events, and the ones in flight get their answers while
                # the router can still deliver them.
                await service.gateway.stop()
            if service.feeds is not None:
                with contextlib.suppress(Exception):  # its streams have ended; nothing to keep
                    await service.feeds.close()
            await router.stop(deadline.left())
            if service.metrics is not None:
                # Last: the counters of the drain itself can still be scraped while it runs.
                await service.metrics.stop()
    finally:
        if server is not None:
            await server.__aexit__(None, None, None)
        lifecycle.remove_signals()


def _feeds_event(state: str, detail: str) -> None:
    # The event streams' connection: its troubles end streams (clients resume), not routing.
    if state == "error":
        log.warning("sse nats error", error=detail)
    elif state in ("disconnected", "reconnected"):
        log.info(f"sse nats {state}", url=detail or None)


def _authenticated(config: RouterConfig, token: str | None) -> RouterConfig:
    """``config`` connecting with ``token`` instead of its own credentials (when given)."""
    if token is None:
        return config
    nats = replace(config.nats, token=token, credentials=None, user=None, password=None)
    return replace(config, nats=nats)


async def _reloads(service: Service) -> None:
    reload = service.lifecycle.reload
    while True:
        await reload.wait()
        reload.clear()
        await service.reload()


def _fingerprint(path: Path, config: RouterConfig) -> Fingerprint:
    schemas = config.schemas.directory
    files = [path]
    if schemas.is_dir():
        files += sorted(p for p in schemas.rglob("*") if p.is_file())
    out: list[tuple[str, float]] = []
    for file in files:
        with contextlib.suppress(OSError):
            out.append((str(file), file.stat().st_mtime))
    return tuple(out)


async def _watch(service: Service, path: Path, last: Fingerprint) -> None:
    # Polling keeps this dependency-free; a change is picked up within a second.
    while True:
        await asyncio.sleep(1.0)
        now = await asyncio.to_thread(_fingerprint, path, service.router.config)
        if now != last:
            last = now
            service.request_reload()
