"""What the gateway counts for ``/metrics``: requests by content mode and status, slots, SSE.

The router core counts the events themselves (``cerouter_events_received_total{ingress="http"}``
and every outcome); the gateway counts what only it sees: requests answered before an event
reached the router (401, 413, 415, 503 at the in-flight limit), batch requests as such, and
event streams.

For the SSE endpoints: call :meth:`GatewayMetrics.sse_opened` when a stream starts,
:meth:`~GatewayMetrics.sse_closed` when it ends (in a ``finally``), :meth:`~GatewayMetrics.sse_sent`
per event written and :meth:`~GatewayMetrics.sse_gap` when a slow client missed events; each is
a plain int update, cheap enough per event. ``ctx.metrics`` is where an endpoint finds them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cerouter.binding.http import BATCH_CONTENT_TYPE, media_type
from cerouter.metrics import counter, gauge


class GatewayMetrics:
    """The gateway's counters (plain ints, read at scrape time)."""

    __slots__ = ("requests", "sse_clients", "sse_events", "sse_gaps", "sse_missed", "sse_streams")

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (mode, status code)
        self.sse_clients = 0  # streams open now
        self.sse_streams = 0  # streams opened in all
        self.sse_events = 0  # events written to streams
        self.sse_gaps = 0  # times a client fell behind and missed events
        self.sse_missed = 0  # events those clients missed

    def sse_opened(self) -> None:
        """An event stream started."""
        self.sse_clients += 1
        self.sse_streams += 1

    def sse_closed(self) -> None:
        """An event stream ended (however it ended)."""
        self.sse_clients -= 1

    def sse_sent(self, n: int = 1) -> None:
        """``n`` events were written to a stream."""
        self.sse_events += n

    def sse_gap(self, missed: int = 0) -> None:
        """A client fell behind: ``missed`` events (0 when unknown) never reached it."""
        self.sse_gaps_seen(1, missed)

    def sse_gaps_seen(self, gaps: int, missed: int) -> None:
        """A stream ended after sending ``gaps`` gap events that said ``missed`` were lost."""
        self.sse_gaps += gaps
        self.sse_missed += missed


def request_mode(headers: list[tuple[bytes, bytes]]) -> str:
    """The content mode a ``POST /events`` asks for, as the HTTP binding will read it (or
    ``other``): decided on the headers alone, so even a refused request has its mode."""
    content_type = ""
    binary = False
    for name, value in headers:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"ce-specversion":
            binary = True
    media = media_type(content_type)
    if media == BATCH_CONTENT_TYPE:
        return "batch"
    if media.startswith("application/cloudevents"):
        return "structured"
    return "binary" if binary else "other"


class CountRequests:
    """ASGI middleware: counts each ``POST /events`` by mode and status once it is answered."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting the status it is answered with."""
        if scope["type"] != "http" or scope["path"] != "/events" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees when the app raises before answering

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            self.metrics.requests[(request_mode(scope["headers"]), status)] += 1


class GatewayCollector(Collector):
    """The gateway's metric families; ``in_use`` is how many request slots are taken now."""

    def __init__(self, metrics: GatewayMetrics, in_use: Callable[[], int]) -> None:
        self._metrics = metrics
        self._in_use = in_use

    def collect(self) -> Iterator[Metric]:
        """Every gateway metric, as counted so far."""
        m = self._metrics
        yield counter(
            "http_requests",
            "POST /events requests answered, by content mode and status code.",
            ["mode", "code"],
            {(mode, str(code)): float(n) for (mode, code), n in m.requests.items()},
        )
        yield gauge(
            "http_inflight_requests",
            "Requests being routed now (http.limits.max_inflight bounds them).",
            [],
            {(): float(self._in_use())},
        )
        yield gauge("sse_clients", "Event streams open now.", [], {(): float(m.sse_clients)})
        yield counter("sse_streams", "Event streams opened.", [], {(): float(m.sse_streams)})
        yield counter("sse_events", "Events written to event streams.", [], {(): m.sse_events})
        yield counter(
            "sse_gaps", "Times an event stream client fell behind.", [], {(): float(m.sse_gaps)}
        )
        yield counter(
            "sse_missed_events",
            "Events clients that fell behind never received.",
            [],
            {(): float(m.sse_missed)},
        )
