"""The HTTP gateway: CloudEvents over HTTP into the router's pipeline, events out over SSE.

:func:`start_gateway` builds the app around the router's intake and serves it on the router's
event loop; :class:`~cerouter.gateway.server.GatewayServer` is what it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from prometheus_client.registry import CollectorRegistry
from starlette.routing import BaseRoute

from cerouter.config.model import HttpSettings
from cerouter.gateway.app import build_app
from cerouter.gateway.auth import Authenticator
from cerouter.gateway.context import GatewayContext
from cerouter.gateway.counters import GatewayCollector, GatewayMetrics
from cerouter.gateway.exposition import MetricsServer, metrics_route, start_metrics_server
from cerouter.gateway.server import GatewayServer, HttpServer
from cerouter.ingress.base import SubmitHandler
from cerouter.ingress.http import ReplyInbox

__all__ = [
    "GatewayContext",
    "GatewayMetrics",
    "GatewayServer",
    "HttpServer",
    "MetricsServer",
    "start_gateway",
    "start_metrics_server",
]


async def start_gateway(
    settings: HttpSettings,
    *,
    submit: SubmitHandler,
    nc: Client,
    js: JetStreamContext,
    ready: Callable[[], bool],
    drain_timeout: float,
    registry: CollectorRegistry | None = None,
) -> GatewayServer:
    """Start serving ``settings`` on the running loop; stop it with ``await server.stop()``.

    With a ``registry`` (the router's), the gateway serves it on ``GET /metrics`` and adds its
    own metrics to it (requests by mode and status, slots in use, event streams).
    """
    inbox = ReplyInbox(nc)
    await inbox.start()
    ctx = GatewayContext(
        settings,
        submit,
        nc,
        js,
        ready,
        inbox,
        Authenticator(settings.auth),
        slots=asyncio.Semaphore(settings.limits.max_inflight),
    )
    extra: list[BaseRoute] = []
    if registry is not None:
        registry.register(GatewayCollector(ctx.metrics, lambda: ctx.slots_in_use))
        extra.append(metrics_route(registry))
    server = GatewayServer(build_app(ctx, extra), ctx, drain_timeout=drain_timeout)
    try:
        await server.start()
    except BaseException:
        await inbox.stop()
        raise
    return server
