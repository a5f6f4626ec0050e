"""``POST /auth/sse-token``: a short-lived query token for a browser's ``EventSource``.

``EventSource`` cannot send an ``Authorization`` header, so a page asks for a token with its
bearer token, then opens ``/events/stream?token=...``. The answer is
``{"token": "...", "expires_in": 300}`` (seconds, ``http.sse.token_ttl``), never cached.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cerouter.gateway.context import GatewayContext
from cerouter.gateway.outcome import PROBLEM_CONTENT_TYPE, problem

BEARER_CHALLENGE = "Bearer"
"""The ``WWW-Authenticate`` value of a 401."""


def unauthorized(*, given: bool = False, how: str = "Authorization: Bearer ...") -> Response:
    """The 401 of a request without a valid token: ``given`` says one was sent (and is not
    known, or has expired), ``how`` where a token goes."""
    detail = "the token is not known, or has expired" if given else "a token is required"
    out = problem(401, f"{detail} ({how})")
    return Response(
        orjson.dumps(out.body),
        401,
        headers={"www-authenticate": BEARER_CHALLENGE},
        media_type=PROBLEM_CONTENT_TYPE,
    )


async def post_sse_token(request: Request) -> Response:
    """Mint a query token for the bearer's principal (401 without a valid bearer)."""
    ctx: GatewayContext = request.app.state.ctx
    principal = ctx.auth.authenticate(request.headers.get("authorization"))
    if principal is None:
        return unauthorized()
    ttl = ctx.auth.ttl
    body = {"token": ctx.auth.mint(principal), "expires_in": int(ttl) if ttl.is_integer() else ttl}
    # A credential: no cache may keep it (RFC 6749, section 5.1).
    headers = {"cache-control": "no-store", "pragma": "no-cache"}
    return Response(orjson.dumps(body), 200, headers=headers, media_type="application/json")
