"""The gateway's Starlette application: every endpoint, one context."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from cerouter.gateway.context import GatewayContext
from cerouter.gateway.counters import CountRequests
from cerouter.gateway.health import healthz, readyz
from cerouter.gateway.ingest import options_events, post_events


def build_app(ctx: GatewayContext, extra: list[BaseRoute] | None = None) -> Starlette:
    """The ASGI app serving ``ctx``; ``extra`` routes are mounted after the built-in ones."""
    routes: list[BaseRoute] = [
        Route("/events", post_events, methods=["POST"]),
        Route("/events", options_events, methods=["OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *(extra or []),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(CountRequests, metrics=ctx.metrics)
    app.state.ctx = ctx
    return app
