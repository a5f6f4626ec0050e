"""Per-client in-flight limit: one address cannot take the whole gateway.

uvicorn serves the requests of one connection strictly one after the other (a pipelined request
waits, unread, until the one before it is answered), so "in flight per connection" is always 0 or
1, and a client wanting more opens more connections. The limit that means something is per
**client address**: at most ``http.limits.max_inflight_per_client`` POST requests of one address
are open at once (from the end of their head to the end of their answer, body upload included,
so slow uploads count too); one more is a 429 with ``Retry-After``. Probes and the event stream
(GET) do not count. The address is the peer's, or what ``X-Forwarded-For`` says when the peer is
a proxy uvicorn trusts (``FORWARDED_ALLOW_IPS``, default 127.0.0.1): behind a proxy it does not
trust, every client shares the proxy's address, and this limit with it.

``http.limits.max_inflight`` (:attr:`~cerouter.gateway.context.GatewayContext.slots`, 503) bounds
everyone together.
"""

from __future__ import annotations

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cerouter.gateway.outcome import PROBLEM_CONTENT_TYPE, problem

RETRY_AFTER = "1"
"""Seconds a refused client is told to wait (its own requests are what it waits for)."""


class ClientLimit:
    """ASGI middleware: at most ``limit`` POST requests open at once per client address."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._open: dict[str, int] = {}

    def inflight(self, host: str) -> int:
        """How many POST requests of ``host`` are open now."""
        return self._open.get(host, 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request against its client, or refuse it with a 429."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        host = str(client[0]) if client else ""
        count = self._open.get(host, 0)
        if count >= self.limit:
            out = problem(
                429,
                f"this client already has {count} requests in flight (the limit); retry later",
            )
            response = Response(
                orjson.dumps(out.body),
                429,
                headers={"retry-after": RETRY_AFTER},
                media_type=PROBLEM_CONTENT_TYPE,
            )
            await response(scope, receive, send)
            return
        self._open[host] = count + 1
        try:
            await self.app(scope, receive, send)
        finally:
            left = self._open[host] - 1
            if left:
                self._open[host] = left
            else:
                del self._open[host]  # the table holds only addresses with requests open
