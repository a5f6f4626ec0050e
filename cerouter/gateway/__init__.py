"""The HTTP gateway: CloudEvents over HTTP into the router's pipeline, events out over SSE.

:func:`start_gateway` builds the app around the router's intake and serves it on the router's
event loop; :class:`~cerouter.gateway.server.GatewayServer` is what it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from nats.aio.client import Client
from nats.js.client import JetStreamContext

from cerouter.config.model import HttpSettings, StreamSpec
from cerouter.gateway.app import build_app
from cerouter.gateway.auth import Authenticator
from cerouter.gateway.context import GatewayContext
from cerouter.gateway.server import GatewayServer
from cerouter.ingress.base import SubmitHandler
from cerouter.ingress.http import ReplyInbox

__all__ = ["GatewayContext", "GatewayServer", "start_gateway"]


async def start_gateway(
    settings: HttpSettings,
    *,
    submit: SubmitHandler,
    nc: Client,
    js: JetStreamContext,
    ready: Callable[[], bool],
    drain_timeout: float,
    streams: Sequence[StreamSpec] = (),
) -> GatewayServer:
    """Start serving ``settings`` on the running loop; stop it with ``await server.stop()``.

    ``streams`` are routes.yaml's streams, the ones ``GET /events/stream`` may read.
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
        streams={spec.name: spec for spec in streams},
    )
    server = GatewayServer(build_app(ctx), ctx, drain_timeout=drain_timeout)
    try:
        await server.start()
    except BaseException:
        await inbox.stop()
        raise
    return server
