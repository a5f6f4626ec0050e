"""``GET /metrics`` in the Prometheus text format, and a small server that only serves metrics.

The gateway mounts :func:`metrics_route` beside ``/events``; ``cerouter run --metrics`` and
``cerouter worker --metrics`` serve :func:`metrics_app` (``/metrics``, ``/healthz``,
``/readyz``) with :func:`start_metrics_server` when there is no gateway to carry it. Rendering
reads counters only (collectors never wait for I/O), so it runs on the event loop as is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cerouter.gateway.health import healthz, readiness
from cerouter.gateway.server import HttpServer


def metrics_route(registry: CollectorRegistry) -> Route:
    """``GET /metrics`` rendering ``registry`` (OpenMetrics when the scraper asks for it)."""

    async def metrics(request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), headers={"content-type": content_type})

    return Route("/metrics", metrics, methods=["GET"])


def metrics_app(
    registry: CollectorRegistry, ready: Callable[[], bool], stopping: asyncio.Event
) -> Starlette:
    """``/metrics`` and the probes: ``/readyz`` is ``ready()`` and not ``stopping``."""

    async def readyz(request: Request) -> Response:
        return readiness({"ready": ready(), "accepting": not stopping.is_set()})

    return Starlette(
        routes=[
            metrics_route(registry),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


class MetricsServer(HttpServer):
    """A metrics-only server; its ``/readyz`` turns 503 as soon as :meth:`stop` begins."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        *,
        ready: Callable[[], bool],
        drain_timeout: float = 5.0,
    ) -> None:
        self.stopping = asyncio.Event()
        app = metrics_app(registry, ready, self.stopping)
        super().__init__(app, host, port, drain_timeout=drain_timeout, name="metrics")

    async def stop(self) -> None:
        """Turn not-ready, then stop serving."""
        self.stopping.set()
        await super().stop()


async def start_metrics_server(
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    ready: Callable[[], bool],
    drain_timeout: float = 5.0,
) -> MetricsServer:
    """Serve ``registry`` on ``host:port`` (port 0: a free one) on the running loop."""
    server = MetricsServer(registry, host, port, ready=ready, drain_timeout=drain_timeout)
    await server.start()
    return server
