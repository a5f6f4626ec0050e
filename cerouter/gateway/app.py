"""The gateway's Starlette application: every endpoint, one context."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from cerouter.gateway.context import GatewayContext
from cerouter.gateway.counters import CountRequests
from cerouter.gateway.health import healthz, readyz
from cerouter.gateway.ingest import options_events, post_events
from cerouter.gateway.limits import ClientLimit
from cerouter.gateway.live import ui_asset, ui_page, ui_root, ui_stats
from cerouter.gateway.sse import event_stream
from cerouter.gateway.sse_token import post_sse_token


def build_app(ctx: GatewayContext, extra: list[BaseRoute] | None = None) -> Starlette:
    """The ASGI app serving ``ctx``; ``extra`` routes are mounted after the built-in ones."""
    routes: list[BaseRoute] = [
        Route("/events", post_events, methods=["POST"]),
        Route("/events", options_events, methods=["OPTIONS"]),
        Route("/events/stream", event_stream, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/auth/sse-token", post_sse_token, methods=["POST"]),
        Route("/", ui_root, methods=["GET"]),
        Route("/ui", ui_page, methods=["GET"]),
        Route("/ui/stats", ui_stats, methods=["GET"]),
        Route("/ui/{name}", ui_asset, methods=["GET"]),
        *(extra or []),
    ]
    per_client = ctx.settings.limits.max_inflight_per_client
    app = Starlette(routes=routes, middleware=[Middleware(ClientLimit, limit=per_client)])
    # Outermost, so that the per-client limit's 429s are counted too.
    app.add_middleware(CountRequests, metrics=ctx.metrics)
    app.state.ctx = ctx
    return app
