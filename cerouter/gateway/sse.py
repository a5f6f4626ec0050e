"""``GET /events/stream``: routed events as Server-Sent Events.

What to read, in the query string:

* ``?subscription=NAME``: a feed named in routes.yaml's ``http.subscriptions`` (its ``match``
  applies);
* ``?stream=NAME`` (a stream declared in routes.yaml), optionally with ``&subject=PATTERN``
  inside it; or ``?subject=PATTERN`` alone: a core NATS subscription, live events only;
* ``&filter=CESQL``: a CESQL expression every event must satisfy as well (a syntax error is a
  400 naming the column).

Each event is one message: ``event:`` its CloudEvents ``type``, ``data:`` the event in the JSON
format on a single line, and, for a stream, ``id:`` its stream sequence. A lost connection is
resumed by sending that id back: ``Last-Event-ID`` (what EventSource does by itself on
reconnecting) or ``?last_event_id=`` for clients that cannot set headers (the header wins, as
the query string stays what it was on the first connection); delivery goes on at the next
sequence, and ``last_event_id=0`` reads the stream from its start. Without either, a feed
starts with the events that arrive after it connected.

Messages of the gateway's own:

* ``event: gap``: events were lost before they could be delivered (purged, or dropped by the
  stream's limits); data ``{"stream", "requested", "first_available", "lost"}`` (a count of
  stream sequences), and as ``id`` the last sequence lost. Delivery goes on from the first
  available event.
* ``event: overflow``, then the end of the response: the slow-client policy. Each client has a
  buffer of ``http.sse.buffer`` events between NATS and its connection. A stream feed pulls
  from the stream only what fits in the buffer, so a client catching up on a backlog reads as
  fast as it can and the rest waits in the stream; a client that leaves its buffer full for a
  whole keep-alive period is too slow. A subject feed has nowhere else to keep events: when its
  buffer is full, it is too slow at once. Too slow means: the feed lets go of its NATS
  subscription, the events already buffered are written, then ``overflow`` with
  ``{"buffered", "last_event_id", "detail"}``, and the stream ends. A stream client reconnects
  with ``Last-Event-ID`` and loses nothing; a subject feed cannot be resumed. Whatever a client
  does, what it holds in memory is bounded by its buffer.
* a comment ``: keepalive`` after every ``http.sse.keepalive`` without a message, so proxies and
  clients see a live connection; and a comment for each message skipped because it is not a
  CloudEvent the gateway can write (it is counted and logged, and the stream goes on).

The events' own types share the ``event:`` field with ``gap`` and ``overflow``; a CloudEvents
type of exactly one of those two names cannot be told apart from them.

A client that disconnects is noticed at once (the ASGI receive channel says so), and its NATS
subscription and JetStream consumer are removed. When the gateway shuts down, every stream ends
promptly so uvicorn's graceful shutdown is not held up; clients reconnect to the next instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cerouter.config.model import StreamSpec
from cerouter.gateway.context import GatewayContext
from cerouter.gateway.counters import GatewayMetrics
from cerouter.gateway.ingest import respond
from cerouter.gateway.outcome import Answer, problem
from cerouter.gateway.sse_feed import End, Feed, FeedError, FeedSpec
from cerouter.gateway.sse_source import open_feed
from cerouter.gateway.sse_token import unauthorized
from cerouter.routing.filter_spec import FilterError, compile_sql
from cerouter.routing.filters import Filter, MatchAll, conjunction
from cerouter.routing.subjects import SubjectError, check_subject, pattern_covers, patterns_overlap

_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    # nginx buffers proxied responses unless told not to; an event stream must not wait.
    "x-accel-buffering": "no",
}
EVENT_STREAM_HEADERS = [(k.encode(), v.encode()) for k, v in _HEADERS.items()]
KEEPALIVE = b": keepalive\n\n"
SHUTDOWN = b": the gateway is shutting down; reconnect to resume\n\n"
FINAL_SEND_TIMEOUT = 1.0
"""How long the last write may wait for a client that does not read when the gateway stops."""

_MAX_SEQUENCE = 2**64 - 1


class _Refused(Exception):
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body.get("detail"))
        self.answer = answer


async def event_stream(request: Request) -> Response:
    """Open a feed as the query string says; errors are problem documents."""
    ctx: GatewayContext = request.app.state.ctx
    principal = ctx.auth.authenticate(
        request.headers.get("authorization"), query_token=request.query_params.get("token")
    )
    if principal is None:
        given = "authorization" in request.headers or "token" in request.query_params
        return unauthorized(given=given, how="Authorization: Bearer ..., or ?token=")
    try:
        spec = feed_spec(ctx, request)
    except _Refused as refused:
        return respond(refused.answer)
    if not principal.may_read(spec.name):
        what = f"subscription '{spec.name}'" if spec.name is not None else "ad-hoc feeds"
        return respond(problem(403, f"token '{principal.name}' may not read {what}"))
    if ctx.stopping.is_set():
        out = problem(503, "the gateway is shutting down")
        return respond(Answer(out.status, out.body, {"retry-after": "1"}))
    if request.method == "HEAD":  # Starlette routes HEAD here too: the headers, and no feed
        return Response(status_code=200, headers=dict(_HEADERS))
    sse = ctx.settings.sse
    nc, js = ctx.feeds
    feed = open_feed(nc, js, spec, buffer=sse.buffer, patience=sse.keepalive)
    return EventStreamResponse(feed, sse.keepalive, ctx.stopping, ctx.metrics)


def feed_spec(ctx: GatewayContext, request: Request) -> FeedSpec:
    """What the query string asks for, checked against routes.yaml; raises :class:`_Refused`."""
    query = request.query_params
    name = query.get("subscription")
    stream, subject = query.get("stream"), query.get("subject")
    filters: list[Filter] = []
    if name is not None:
        if stream is not None or subject is not None:
            raise _Refused(
                problem(400, "?subscription= names its own source: no ?stream= or ?subject=")
            )
        sub = ctx.settings.subscription(name)
        if sub is None:
            raise _Refused(problem(404, f"no subscription '{name}' in http.subscriptions"))
        stream, subject = sub.stream, sub.subject
        if sub.match is not None:
            filters.append(sub.match)
    elif stream is None and subject is None:
        raise _Refused(problem(400, "name a ?subscription=, a ?stream= or a ?subject="))
    spec = _stream(ctx.streams, stream)
    if subject is None:
        subject = spec.subjects[0] if spec is not None and len(spec.subjects) == 1 else ">"
    try:
        check_subject(subject, wildcards=True)
    except SubjectError as exc:
        raise _Refused(problem(400, f"?subject=: {exc}")) from None
    if spec is not None and not any(patterns_overlap(subject, s) for s in spec.subjects):
        raise _Refused(
            problem(
                400,
                f"subject '{subject}' is not in stream '{spec.name}' "
                f"(its subjects: {', '.join(spec.subjects)})",
            )
        )
    if (expression := query.get("filter")) is not None:
        try:
            filters.append(compile_sql(expression))
        except FilterError as exc:
            raise _Refused(problem(400, f"?filter=: {exc.message}", parameter="filter")) from None
    return FeedSpec(
        subject=subject,
        stream=spec.name if spec is not None else None,
        match=conjunction(filters) if filters else MatchAll(),
        start=_start(request) if spec is not None else None,
        contiguous=spec is not None and all(pattern_covers(subject, s) for s in spec.subjects),
        name=name,
    )


def _stream(streams: Mapping[str, StreamSpec], name: str | None) -> StreamSpec | None:
    if name is None:
        return None
    spec = streams.get(name)
    if spec is None:
        raise _Refused(problem(404, f"no stream '{name}' is declared in routes.yaml"))
    return spec


def _start(request: Request) -> int | None:
    """The first sequence to deliver: the one after ``Last-Event-ID``, or ``None`` (new ones)."""
    text = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if not text:
        return None
    text = text.strip()
    if not text.isdigit() or not text.isascii() or int(text) >= _MAX_SEQUENCE:
        raise _Refused(
            problem(400, f"Last-Event-ID '{text[:40]}' is not a stream sequence (the id: sent)")
        )
    return int(text) + 1


class EventStreamResponse(Response):
    """A ``text/event-stream`` response writing one :class:`Feed` until it ends, the client
    goes, or the gateway stops; the feed is closed in every case."""

    def __init__(
        self, feed: Feed, keepalive: float, stopping: asyncio.Event, metrics: GatewayMetrics
    ) -> None:
        # Not Response.__init__: it would add ``content-length: 0``.
        self.status_code = 200
        self.background = None
        self.raw_headers = list(EVENT_STREAM_HEADERS)
        self.feed = feed
        self.keepalive = keepalive
        self.stopping = stopping
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        feed = self.feed
        reason = "error"
        try:
            try:
                await feed.start()
            except FeedError as exc:
                reason = "refused"
                await respond(problem(exc.status, exc.detail))(scope, receive, send)
                return
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            # A first comment at once: uvicorn holds the headers back until some body is sent,
            # and a client (EventSource's onopen, curl) would see nothing until the first event.
            await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
            self.metrics.sse_opened()
            try:
                reason = await self._serve(receive, send)
            finally:
                self.metrics.sse_closed()
                self.metrics.sse_sent(feed.delivered)
                self.metrics.sse_gaps_seen(feed.gaps, feed.missed)
        finally:
            await feed.close(reason)

    async def _serve(self, receive: Receive, send: Send) -> str:
        writer = asyncio.ensure_future(self._write(send))
        gone = asyncio.ensure_future(_disconnected(receive))
        stop = asyncio.ensure_future(self.stopping.wait())
        tasks = (writer, gone, stop)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if writer.done() and not writer.cancelled():
            return writer.result()  # the feed ended (overflow); the response is complete
        if gone.done() and not gone.cancelled():
            return "disconnected"
        # Shutting down: say so and complete the response, unless the client is not reading;
        # then uvicorn is left to close the connection (and says the response was cut short).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINAL_SEND_TIMEOUT):
                await send({"type": "http.response.body", "body": SHUTDOWN, "more_body": False})
        return "shutdown"

    async def _write(self, send: Send) -> str:
        feed, keepalive = self.feed, self.keepalive
        while True:
            try:
                async with asyncio.timeout(keepalive):
                    item = await feed.take()
            except TimeoutError:
                await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
                continue
            if isinstance(item, End):
                last = item.frame or b""
                await send({"type": "http.response.body", "body": last, "more_body": False})
                return item.reason
            await send({"type": "http.response.body", "body": b"".join(item), "more_body": True})


async def _disconnected(receive: Receive) -> None:
    """Return when the client has gone (the request of a GET has no body to read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
