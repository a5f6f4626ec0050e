"""Kubernetes-style probes: ``/healthz`` (the process answers) and ``/readyz`` (send traffic)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cerouter.gateway.context import GatewayContext


async def healthz(request: Request) -> Response:
    """Alive: the event loop answers."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    """Ready: NATS connected, streams provisioned, and the gateway not shutting down."""
    ctx: GatewayContext = request.app.state.ctx
    checks = {
        "router": ctx.ready(),
        "nats": ctx.nc.is_connected,
        "accepting": not ctx.stopping.is_set(),
    }
    return readiness(checks)


def readiness(checks: dict[str, bool]) -> Response:
    """200 when every check holds, else 503; the body names each check."""
    ok = all(checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    return Response(orjson.dumps(body), 200 if ok else 503, media_type="application/json")
