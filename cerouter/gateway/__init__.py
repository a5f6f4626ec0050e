"""The HTTP gateway: CloudEvents over HTTP into the router's pipeline, events out over SSE.

:func:`start_gateway` builds the app around the router's intake and serves it on the router's
event loop; :class:`~cerouter.gateway.server.GatewayServer` is what it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nats.aio.client import Client
from nats.js.client import JetStreamContext
from prometheus_client.registry import CollectorRegistry
from starlette.routing import BaseRoute

from cerouter.config.model import HttpSettings, StreamSpec
from cerouter.gateway.app import build_app
from cerouter.gateway.auth import Authenticator
from cerouter.gateway.context import GatewayContext
from cerouter.gateway.counters import GatewayCollector, GatewayMetrics
from cerouter.gateway.exposition import MetricsServer, metrics_route, start_metrics_server
from cerouter.gateway.principal import ALL_SUBSCRIPTIONS
from cerouter.gateway.server import GatewayServer, HttpServer
from cerouter.ingress.base import SubmitHandler
from cerouter.ingress.http import ReplyInbox
from cerouter.log import get_logger

log = get_logger("cerouter.gateway")

__all__ = [
    "Authenticator",
    "GatewayContext",
    "GatewayMetrics",
    "GatewayServer",
    "HttpServer",
    "MetricsServer",
    "authenticator",
    "start_gateway",
    "start_metrics_server",
]


def authenticator(settings: HttpSettings) -> Authenticator:
    """The gateway's token checker: reads the tokens file and variable now, so that a broken
    one stops the start before anything else starts (:class:`~cerouter.errors.ConfigError`).

    A token allowed to read a subscription ``http.subscriptions`` does not declare is logged (a
    typo, or a file shared by routers with other feeds: not an error).
    """
    auth = Authenticator(settings.auth, ttl=settings.sse.token_ttl)
    declared = {s.name for s in settings.subscriptions} | {ALL_SUBSCRIPTIONS}
    for principal in auth.principals:
        for name in sorted((principal.reads or frozenset()) - declared):
            log.warning(
                "a token may read a subscription that http.subscriptions does not declare",
                token=principal.name,
                subscription=name,
            )
    return auth


async def start_gateway(
    settings: HttpSettings,
    *,
    submit: SubmitHandler,
    nc: Client,
    js: JetStreamContext,
    ready: Callable[[], bool],
    drain_timeout: float,
    auth: Authenticator | None = None,
    streams: Sequence[StreamSpec] = (),
    registry: CollectorRegistry | None = None,
    feeds_nc: Client | None = None,
    snapshot: Callable[[], Mapping[str, Any]] | None = None,
) -> GatewayServer:
    """Start serving ``settings`` on the running loop; stop it with ``await server.stop()``.

    ``auth`` is :func:`authenticator` of ``settings``, made here when not given (a
    :class:`~cerouter.errors.ConfigError` when the tokens cannot be read). ``streams`` are
    routes.yaml's streams, the ones ``GET /events/stream`` may read. With a ``registry`` (the
    router's), the gateway serves it on ``GET /metrics`` and adds its own metrics to it
    (requests by mode and status, slots in use, event streams). ``feeds_nc`` is a connection
    for event streams alone (the router's otherwise); ``snapshot`` gives the router's counters
    to the live page (``GET /ui``, :mod:`cerouter.gateway.live`).
    """
    auth = auth or authenticator(settings)
    inbox = ReplyInbox(nc)
    await inbox.start()
    ctx = GatewayContext(
        settings,
        submit,
        nc,
        js,
        ready,
        inbox,
        auth,
        slots=asyncio.Semaphore(settings.limits.max_inflight),
        streams={spec.name: spec for spec in streams},
        feeds_nc=feeds_nc,
        snapshot=snapshot,
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
