"""The gateway's HTTP server: uvicorn on the router's own event loop.

:class:`HttpServer` is the uvicorn glue for any app (the metrics-only server of ``cerouter run
--metrics`` and ``cerouter worker --metrics`` use it too); :class:`GatewayServer` adds the
gateway's shutdown order.

uvicorn's ``Server`` runs as a task beside nats-py, so an HTTP request and the NATS publishes it
causes share one loop and no thread hand-off. cerouter binds the socket itself (a port taken is
a clean error, port 0 a free port known before serving) and leaves signals to its own lifecycle.
Shutdown: stop accepting, end event streams, let in-flight requests finish (they wait for the
router, which is still running), then the router drains NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.applications import Starlette

from cerouter.config.model import HttpLimits
from cerouter.errors import GatewayError
from cerouter.gateway.context import GatewayContext
from cerouter.log import get_logger

log = get_logger("cerouter.gateway")


def http_protocol(limits: HttpLimits) -> type[asyncio.Protocol] | str:
    """httptools (C parser: a third of h11's CPU per request, measured) with the head guards of
    :mod:`cerouter.gateway.protocol`; uvicorn's ``h11`` where httptools is not installed (it
    bounds the head itself, answering 400, but has no head deadline)."""
    try:
        from cerouter.gateway.protocol import GuardedHttpToolsProtocol
    except ImportError:
        return "h11"
    return GuardedHttpToolsProtocol.with_limits(limits.max_headers, limits.read_timeout)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # cerouter's Lifecycle owns SIGTERM/SIGINT; uvicorn must not take them over.
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6; port 0: a free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise GatewayError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise GatewayError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class HttpServer:
    """Serves one app on one socket until :meth:`stop`; ``name`` is what its log lines say."""

    def __init__(
        self,
        app: Starlette,
        host: str,
        port: int,
        *,
        drain_timeout: float,
        limits: HttpLimits = HttpLimits(),  # noqa: B008 - frozen, shared default
        name: str = "http server",
    ) -> None:
        self.host = host
        self.port = port
        self.name = name
        self._config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            http=http_protocol(limits),
            h11_max_incomplete_event_size=limits.max_headers,
            ws="none",  # no WebSocket endpoint: an Upgrade request is served as plain HTTP
            timeout_graceful_shutdown=int(max(drain_timeout, 1)),
        )
        self._server = _Server(self._config)
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on (the real port when 0 was asked for)."""
        assert self._sock is not None, "not started"
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        """Bind and begin serving."""
        self._sock = bind(self.host, self.port)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        # uvicorn says it is serving by a flag only; wait for it, bounded, or for its failure.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise GatewayError("the HTTP server stopped while starting")
            if loop.time() > deadline:
                raise GatewayError("the HTTP server did not start within 10s")
            await asyncio.sleep(0.01)
        log.info(f"{self.name} listening", url=self.url)

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests (bounded by the drain budget)."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._sock is not None:
            self._sock.close()


class GatewayServer(HttpServer):
    """The gateway's server: its context's settings, and the gateway's shutdown order."""

    def __init__(self, app: Starlette, ctx: GatewayContext, *, drain_timeout: float) -> None:
        settings = ctx.settings
        super().__init__(
            app,
            settings.host,
            settings.port,
            drain_timeout=drain_timeout,
            limits=settings.limits,
            name="gateway",
        )
        self.ctx = ctx

    async def stop(self) -> None:
        """Stop accepting, end streams, finish in-flight requests (bounded by the drain budget)."""
        self.ctx.stopping.set()
        await super().stop()
        await self.ctx.inbox.stop()
