"""The live page: ``GET /ui`` (``/`` redirects there), its files, and its feed ``GET /ui/stats``.

The page (``cerouter/gateway/ui/``: plain HTML, a script and a stylesheet, no build step) shows
the routes with their counters and rates, the outcomes, the dead-letter reasons, the latest dead
letters, and a tail of events read from ``GET /events/stream`` with an optional CESQL filter.

``GET /ui/stats`` is a Server-Sent Events stream: every :data:`INTERVAL` an ``event: stats``
whose data is the router's snapshot (:func:`cerouter.service.stats.stats_snapshot`: routes,
per-route deliveries and failures, outcomes, dead-letter reasons), and an ``event: deadletter``
for each dead letter stored in the dead-letter stream since the last one sent (the latest
:data:`RECENT` at first), read with :func:`~cerouter.delivery.deadletter.parse_deadletter`: the
reason, stage and detail from its ``cerouter-*`` headers, and the original event's id, type and
source. ``id:`` is the dead letter's stream sequence.

Auth is the gateway's: with tokens configured, the page and ``/ui/stats`` need a bearer token or
a query token (``POST /auth/sse-token``) as ``?token=``, which the page passes on to its feeds;
reading them takes a token allowed ad-hoc feeds (dead letters carry any event). The script and
the stylesheet are the same for everyone and are served without a token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

import nats.errors
import nats.js.errors
import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from cerouter.binding import decode
from cerouter.delivery.deadletter import parse_deadletter
from cerouter.errors import BindingError
from cerouter.gateway.context import GatewayContext
from cerouter.gateway.ingest import respond
from cerouter.gateway.outcome import Answer, problem
from cerouter.gateway.principal import Principal
from cerouter.gateway.sse import EVENT_STREAM_HEADERS

INTERVAL = 1.0
"""Seconds between two stats snapshots."""
RECENT = 20
"""Dead letters sent when the feed opens, and at most per snapshot."""
PREVIEW = 300
"""Characters of a dead letter's payload the page is sent."""

_ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
_UI = files("cerouter.gateway") / "ui"


def _caller(request: Request) -> Principal | None:
    ctx: GatewayContext = request.app.state.ctx
    return ctx.auth.authenticate(
        request.headers.get("authorization"), query_token=request.query_params.get("token")
    )


def _unauthorized() -> Response:
    out = problem(401, "a bearer token is required (Authorization: Bearer ..., or ?token=)")
    return respond(Answer(out.status, out.body, {"www-authenticate": "Bearer"}))


async def ui_root(request: Request) -> Response:
    """``GET /``: to the live page, keeping the query string (the token)."""
    query = request.url.query
    return RedirectResponse("/ui" + (f"?{query}" if query else ""), status_code=307)


async def ui_page(request: Request) -> Response:
    """``GET /ui``: the page itself."""
    if _caller(request) is None:
        return _unauthorized()
    body = (_UI / "index.html").read_bytes()
    return Response(body, media_type="text/html; charset=utf-8", headers=_NO_STORE)


async def ui_asset(request: Request) -> Response:
    """``GET /ui/app.js`` and ``/ui/style.css``."""
    name = request.path_params["name"]
    if name not in _ASSETS:
        return respond(problem(404, f"no file '{name}' in /ui"))
    return Response((_UI / name).read_bytes(), media_type=_ASSETS[name], headers=_NO_STORE)


_NO_STORE = {"cache-control": "no-store"}


async def ui_stats(request: Request) -> Response:
    """``GET /ui/stats``: the snapshot every second and the dead letters, as SSE."""
    ctx: GatewayContext = request.app.state.ctx
    principal = _caller(request)
    if principal is None:
        return _unauthorized()
    if not principal.may_read(None):
        return respond(problem(403, f"token '{principal.name}' may not read ad-hoc feeds"))
    if ctx.snapshot is None:
        return respond(problem(404, "this gateway has no router statistics to show"))
    headers = {k.decode(): v.decode() for k, v in EVENT_STREAM_HEADERS}
    return StreamingResponse(_stats_frames(ctx), headers=headers)


async def _stats_frames(ctx: GatewayContext) -> AsyncIterator[bytes]:
    assert ctx.snapshot is not None
    after: int | None = None  # the last dead letter sent (None: none read yet)
    while not ctx.stopping.is_set():
        snapshot = ctx.snapshot()
        yield b"event: stats\ndata: " + orjson.dumps(snapshot) + b"\n\n"
        stream = snapshot.get("deadletter_stream")
        if isinstance(stream, str):
            letters, after = await recent_deadletters(ctx, stream, after)
            for seq, letter in letters:
                yield b"id: %d\nevent: deadletter\ndata: %s\n\n" % (seq, orjson.dumps(letter))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(INTERVAL):
                await ctx.stopping.wait()


async def recent_deadletters(
    ctx: GatewayContext, stream: str, after: int | None
) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
    """The dead letters stored after sequence ``after`` (the latest :data:`RECENT` when
    ``None``), and the sequence to read after next time; none when the stream is unreadable."""
    _, js = ctx.feeds  # page traffic stays off the router's own connection
    try:
        info = await js.stream_info(stream)
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError):
        return [], after
    last, first = info.state.last_seq, info.state.first_seq
    start = max(first, last - RECENT + 1, (after or 0) + 1)
    out: list[tuple[int, dict[str, Any]]] = []
    for seq in range(start, last + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError):
            continue  # deleted meanwhile, or NATS is busy: skipped
        out.append((seq, describe_deadletter(msg.headers, msg.data or b"", msg.subject)))
    return out, max(last, after or 0)


def describe_deadletter(
    headers: dict[str, str] | None, payload: bytes, subject: str | None
) -> dict[str, Any]:
    """What the page shows of one dead letter (plain JSON types)."""
    record = parse_deadletter(headers, payload, subject=subject)
    event: dict[str, Any] = {}
    try:
        decoded = decode(record.headers, record.payload)
        event = {k: decoded.attributes.get(k) for k in ("id", "type", "source")}
    except BindingError:
        pass
    return {
        "reason": str(record.reason) if record.reason is not None else None,
        "stage": str(record.stage) if record.stage is not None else None,
        "detail": record.detail,
        "subject": record.subject,
        "route": record.route,
        "destination": record.destination,
        "time": record.time.isoformat() if record.time is not None else None,
        "event": event,
        "payload": record.payload[:PREVIEW].decode("utf-8", "replace"),
    }
