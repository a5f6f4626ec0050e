"""``GET /events/stream``: routed events as Server-Sent Events, over real loopback HTTP.

Every test runs a router with its gateway on a nats-server of its own and reads the feed with
httpx (and httpx-sse where comments do not matter); every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import EventSource, ServerSentEvent, aconnect_sse
from nats.aio.client import Client

from cerouter.gateway.auth import Authenticator, Principal
from cerouter.service.serve import Service
from tests.metricskit import scrape, value
from tests.routerkit import event, eventually, publish, running_gateway, write_routes

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
streams:
  - {name: FEED, subjects: [feed.>]}
  - {name: SMALL, subjects: [small.>], max_msgs: 3}
routes:
  - name: feed
    match: {type: [com.example.thing, com.example.other]}
    to: {stream: FEED, subject: "feed.{type}"}
  - name: small
    match: {type: com.example.small}
    to: {stream: SMALL, subject: small.events}
  - name: live
    match: {type: com.example.live}
    to: {subject: live.events}
http:
  listen: 127.0.0.1:0
  sse: {keepalive: 200ms, buffer: %(buffer)d}
  subscriptions:
    - {name: things, from: {stream: FEED}}
    - {name: only-things, from: {stream: FEED}, match: {type: com.example.thing}}
    - {name: small, from: {stream: SMALL}}
    - {name: live, from: {subject: live.>}}
"""
WAIT = 10.0  # the deadline of every wait for an event
STRUCTURED = {"content-type": "application/cloudevents+json"}


def routes_file(tmp_path: Path, buffer: int = 256) -> Path:
    return write_routes(tmp_path, ROUTES % {"buffer": buffer})


@asynccontextmanager
async def gateway(
    nats_url: str, routes: Path, **client: Any
) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
    """A router with its gateway, and an HTTP client of it."""
    async with running_gateway(nats_url, routes) as service:
        assert service.gateway is not None
        async with httpx.AsyncClient(
            base_url=service.gateway.url, timeout=httpx.Timeout(WAIT), **client
        ) as http:
            yield service, http


async def post(http: httpx.AsyncClient, type_: str, id_: str, **extra: Any) -> None:
    """POST one structured event and check it was routed."""
    body = orjson.dumps(event(type_, id_=id_, **extra))
    response = await http.post("/events", content=body, headers=STRUCTURED)
    assert response.status_code == 202, response.text


async def post_things(
    http: httpx.AsyncClient, ids: range, type_: str = "com.example.thing"
) -> None:
    for i in ids:
        await post(http, type_, str(i), data={"n": i})


async def take(source: AsyncIterator[ServerSentEvent], count: int) -> list[ServerSentEvent]:
    """The next ``count`` events of a feed (``gap`` and ``overflow`` included)."""
    out: list[ServerSentEvent] = []
    async with asyncio.timeout(WAIT):
        while len(out) < count:
            sse = await anext(source)
            # httpx-sse, unlike EventSource, dispatches an empty message at the blank line after
            # a comment (a keep-alive) once an id was seen; there is no such message.
            if sse.data or sse.event != "message":
                out.append(sse)
    return out


def ce(sse: ServerSentEvent) -> dict[str, Any]:
    """The CloudEvent an SSE message carries."""
    value: dict[str, Any] = orjson.loads(sse.data)
    return value


def feed(source: EventSource) -> AsyncIterator[ServerSentEvent]:
    """The messages of an open event stream, once its status was checked."""
    assert source.response.status_code == 200, source.response.headers
    return source.aiter_sse()


async def raw_frames(
    response: httpx.Response, until: Callable[[list[str]], bool] = lambda frame: False
) -> list[list[str]]:
    """The frames (lists of lines) of a raw event stream, comments included and keep-alives
    left out, up to the one ``until`` accepts or the end of the response."""
    frames: list[list[str]] = []
    current: list[str] = []
    async with asyncio.timeout(WAIT):
        async for line in response.aiter_lines():
            if line:
                current.append(line)
                continue
            if current and current != [": keepalive"]:
                frames.append(current)
                if until(current):
                    break
            current = []
    return frames


def fields(frame: list[str]) -> dict[str, str]:
    """An event frame's fields by name."""
    return dict(line.split(": ", 1) for line in frame)


async def consumers(nc: Client, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.consumer_count)


async def test_subscription_feed_receives_routed_events(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    async with (
        gateway(nats_url, routes_file(tmp_path)) as (_, http),
        aconnect_sse(http, "GET", "/events/stream", params={"subscription": "things"}) as source,
    ):
        assert source.response.headers["content-type"] == "text/event-stream"
        assert source.response.headers["cache-control"] == "no-cache"
        assert source.response.headers["x-accel-buffering"] == "no"
        events = feed(source)
        await post_things(http, range(2))
        await post(http, "com.example.other", "o1", data={"x": 1})
        # Published to NATS, routed by the router like any event.
        await publish(nc, "events.x", event("com.example.thing", id_="nats", data={"n": 9}))
        got = await take(events, 4)
    thing, other = "com.example.thing", "com.example.other"
    assert [m.event for m in got] == [thing, thing, other, thing]
    assert [ce(m)["id"] for m in got] == ["0", "1", "o1", "nats"]
    assert ce(got[0]) == event("com.example.thing", id_="0", data={"n": 0})
    assert [m.id for m in got] == ["1", "2", "3", "4"]  # the FEED stream's sequences


async def test_head_answers_the_headers_without_opening_a_feed(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    async with gateway(nats_url, routes_file(tmp_path)) as (_, http):
        head = await http.head("/events/stream", params={"subscription": "things"})
        missing = await http.head("/events/stream", params={"subscription": "nope"})
        left = await consumers(nc, "FEED")
    assert (head.status_code, head.headers["content-type"]) == (200, "text/event-stream")
    assert missing.status_code == 404
    assert left == 0


async def test_subject_feed_is_live_and_has_no_ids(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    async with (
        gateway(nats_url, routes_file(tmp_path)) as (_, http),
        aconnect_sse(http, "GET", "/events/stream", params={"subscription": "live"}) as named,
        aconnect_sse(http, "GET", "/events/stream", params={"subject": "live.*"}) as adhoc,
    ):
        await post(http, "com.example.live", "l1", data="hello")
        for source in (named, adhoc):
            [got] = await take(feed(source), 1)
            assert (got.event, ce(got)["data"], got.id) == ("com.example.live", "hello", "")


async def test_match_and_filter_select_events(nats_url: str, tmp_path: Path) -> None:
    async with gateway(nats_url, routes_file(tmp_path)) as (_, http):
        sources = {
            "match": {"subscription": "only-things"},
            "match+filter": {"subscription": "only-things", "filter": "id IN ('2', '3')"},
            "ad-hoc": {"stream": "FEED", "filter": "type = 'com.example.other' OR id = '0'"},
            "ad-hoc subject": {"stream": "FEED", "subject": "feed.com_example_other"},
        }
        async with (
            aconnect_sse(http, "GET", "/events/stream", params=sources["match"]) as a,
            aconnect_sse(http, "GET", "/events/stream", params=sources["match+filter"]) as b,
            aconnect_sse(http, "GET", "/events/stream", params=sources["ad-hoc"]) as c,
            aconnect_sse(http, "GET", "/events/stream", params=sources["ad-hoc subject"]) as d,
        ):
            feeds = [feed(s) for s in (a, b, c, d)]
            await post(http, "com.example.other", "o1")
            await post_things(http, range(4))
            await post(http, "com.example.other", "o2")
            got = [
                [ce(m)["id"] for m in await take(f, n)]
                for f, n in zip(feeds, [4, 2, 3, 2], strict=True)
            ]
    assert got == [["0", "1", "2", "3"], ["2", "3"], ["o1", "0", "o2"], ["o1", "o2"]]


@pytest.mark.parametrize(
    ("params", "headers", "status", "detail"),
    [
        ({"subscription": "things", "filter": "type = "}, {}, 400, "column"),
        ({"stream": "FEED", "filter": "type = 'a' AND"}, {}, 400, "column"),
        ({"subscription": "nope"}, {}, 404, "no subscription 'nope'"),
        ({"stream": "NOPE"}, {}, 404, "no stream 'NOPE'"),
        ({}, {}, 400, "?subscription="),
        ({"subscription": "things", "subject": "x"}, {}, 400, "names its own source"),
        ({"stream": "FEED", "subject": "other.>"}, {}, 400, "not in stream 'FEED'"),
        ({"subject": "a..b"}, {}, 400, "empty token"),
        ({"subscription": "things"}, {"last-event-id": "abc"}, 400, "not a stream sequence"),
        ({"subscription": "things", "last_event_id": "-1"}, {}, 400, "not a stream sequence"),
    ],
)
async def test_bad_requests_are_problems(
    nats_url: str,
    tmp_path: Path,
    params: dict[str, str],
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    async with gateway(nats_url, routes_file(tmp_path)) as (_, http):
        response = await http.get("/events/stream", params=params, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert detail in body["detail"]


async def test_auth_is_asked_with_the_query_token_and_the_subscription(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str | None, str | None]] = []

    def authenticate(
        self: Authenticator, authorization: str | None, query_token: str | None = None
    ) -> Principal | None:
        asked.append((authorization, query_token))
        return Principal("reader") if query_token == "good" else None

    monkeypatch.setattr(Authenticator, "authenticate", authenticate)
    monkeypatch.setattr(Principal, "may_read", lambda self, name: name == "things")
    async with gateway(nats_url, routes_file(tmp_path)) as (_, http):
        anonymous = await http.get("/events/stream", params={"subscription": "things"})
        refused = await http.get("/events/stream", params={"subscription": "live", "token": "good"})
        adhoc = await http.get("/events/stream", params={"subject": "live.>", "token": "good"})
        async with aconnect_sse(
            http, "GET", "/events/stream", params={"subscription": "things", "token": "good"}
        ) as source:
            allowed = source.response.status_code
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (refused.status_code, adhoc.status_code, allowed) == (403, 403, 200)
    assert "subscription 'live'" in refused.json()["detail"]
    assert asked[:2] == [(None, None), (None, "good")]


async def test_resume_by_last_event_id_gets_exactly_the_events_after(
    nats_url: str, tmp_path: Path
) -> None:
    async with gateway(nats_url, routes_file(tmp_path)) as (_, http):
        params = {"subscription": "things"}
        async with aconnect_sse(http, "GET", "/events/stream", params=params) as source:
            await post_things(http, range(5))
            first = await take(feed(source), 5)
        await post_things(http, range(5, 7))  # while nobody is connected
        resume = {"last-event-id": first[2].id}
        async with aconnect_sse(http, "GET", "/events/stream", params=params, headers=resume) as s:
            events = feed(s)
            resumed = await take(events, 4)
            await post_things(http, range(7, 8))  # and the feed goes on live
            resumed += await take(events, 1)
        # For clients that cannot set headers; the header wins over it (EventSource keeps the
        # URL of its first connection and sends the header when it reconnects).
        query = {**params, "last_event_id": "5"}
        async with aconnect_sse(http, "GET", "/events/stream", params=query) as s:
            by_query = await take(feed(s), 3)
        both = {"last-event-id": "6"}
        async with aconnect_sse(http, "GET", "/events/stream", params=query, headers=both) as s:
            header_wins = await take(feed(s), 2)
        async with aconnect_sse(
            http, "GET", "/events/stream", params={**params, "last_event_id": "0"}
        ) as s:
            from_start = await take(feed(s), 8)
    assert [ce(m)["id"] for m in first] == ["0", "1", "2", "3", "4"]
    assert [(m.id, ce(m)["id"]) for m in resumed] == [(str(i + 1), str(i)) for i in range(3, 8)]
    assert [m.id for m in by_query] == ["6", "7", "8"]
    assert [m.id for m in header_wins] == ["7", "8"]
    assert [m.id for m in from_start] == [str(i) for i in range(1, 9)]
    assert all(m.event == "com.example.thing" for m in from_start)


async def test_gap_when_the_events_after_last_event_id_are_gone(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    small = "com.example.small"
    async with gateway(nats_url, routes_file(tmp_path)) as (service, http):
        params = {"subscription": "small"}  # SMALL keeps the last 3 messages
        async with aconnect_sse(http, "GET", "/events/stream", params=params) as source:
            await post_things(http, range(2), small)
            seen = await take(feed(source), 2)
        await post_things(http, range(2, 8), small)  # seqs 3-8, of which 6-8 are kept
        resume = {"last-event-id": seen[-1].id}
        async with aconnect_sse(http, "GET", "/events/stream", params=params, headers=resume) as s:
            after_limit = await take(feed(s), 4)
        await post_things(http, range(8, 10), small)  # seqs 9 and 10, then purged unread
        await nc.jetstream().purge_stream("SMALL")
        resume = {"last-event-id": after_limit[-1].id}
        async with aconnect_sse(http, "GET", "/events/stream", params=params, headers=resume) as s:
            events = feed(s)
            [purged] = await take(events, 1)  # said at once, before any new event
            await post_things(http, range(10, 11), small)
            [after_purge] = await take(events, 1)
        assert service.gateway is not None
        url = f"{service.gateway.url}/metrics"

        async def all_closed() -> bool:
            return value((await scrape(url))[0], "cerouter_sse_clients") == 0

        await eventually(all_closed, what="the three streams closed")
        samples, _ = await scrape(url)
    assert value(samples, "cerouter_sse_streams_total") == 3
    assert value(samples, "cerouter_sse_gaps_total") == 2
    assert value(samples, "cerouter_sse_missed_events_total") == 5
    assert value(samples, "cerouter_sse_events_total") == 2 + 3 + 1  # events, not gap frames
    assert [m.id for m in seen] == ["1", "2"]
    gap = after_limit[0]
    assert (gap.event, gap.id) == ("gap", "5")
    assert orjson.loads(gap.data) == {
        "stream": "SMALL",
        "requested": 3,
        "first_available": 6,
        "lost": 3,
    }
    assert [(m.event, m.id, ce(m)["id"]) for m in after_limit[1:]] == [
        (small, str(seq), str(seq - 1)) for seq in (6, 7, 8)
    ]
    assert (purged.event, purged.id) == ("gap", "10")
    assert orjson.loads(purged.data) == {
        "stream": "SMALL",
        "requested": 9,
        "first_available": 11,
        "lost": 2,
    }
    assert (after_purge.event, after_purge.id, ce(after_purge)["id"]) == (small, "11", "10")


async def test_gap_when_the_stream_sequence_jumps(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    async with gateway(nats_url, routes_file(tmp_path)) as (_, http):
        await post_things(http, range(5))  # FEED seqs 1-5
        await js.delete_msg("FEED", 3)  # gone, but the stream's first sequence is still 1
        resume = {"last-event-id": "1"}
        async with aconnect_sse(
            http, "GET", "/events/stream", params={"subscription": "things"}, headers=resume
        ) as source:
            got = await take(feed(source), 4)
    thing = "com.example.thing"
    assert [m.event for m in got] == [thing, "gap", thing, thing]
    assert orjson.loads(got[1].data) == {
        "stream": "FEED",
        "requested": 3,
        "first_available": 4,
        "lost": 1,
    }
    assert [m.id for m in got] == ["2", "3", "4", "5"]


async def test_keepalive_comments_on_an_idle_stream(nats_url: str, tmp_path: Path) -> None:
    async with (
        gateway(nats_url, routes_file(tmp_path)) as (_, http),
        http.stream("GET", "/events/stream", params={"subscription": "things"}) as response,
    ):
        lines: list[str] = []
        async with asyncio.timeout(WAIT):
            async for line in response.aiter_lines():
                lines.append(line)
                if lines.count(": keepalive") == 2:
                    break
    assert lines == [": keepalive", "", ": keepalive"]


async def test_data_is_one_line_and_unreadable_messages_are_skipped(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    text = "line one\nline two\r\nline three\r"
    async with (
        gateway(nats_url, routes_file(tmp_path)) as (_, http),
        http.stream("GET", "/events/stream", params={"subject": "live.>"}) as response,
    ):
        await publish(nc, "live.junk", b"not a cloudevent")
        await publish(nc, "live.junk", b'{"no": "type"}')
        await post(http, "com.example.live", "multi", data=text)
        frames = await raw_frames(response, until=lambda f: f[0].startswith("event:"))
    assert frames[0][0].startswith(": skipped a message on live.junk")
    assert "1 in all" in frames[0][0]
    assert "2 in all" in frames[1][0]
    [kind, data] = frames[2]
    assert kind == "event: com.example.live"
    assert orjson.loads(data.removeprefix("data: "))["data"] == text


async def test_slow_client_gets_overflow_and_is_disconnected(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    big = "x" * 60_000
    # A small receive window, so a client that does not read holds the server's writes back
    # soon (loopback would otherwise buffer megabytes in the kernel).
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)]
    )
    async with (
        gateway(nats_url, routes_file(tmp_path, buffer=2), transport=transport) as (_, http),
        http.stream("GET", "/events/stream", params={"subscription": "things"}) as response,
    ):
        assert response.status_code == 200
        await eventually(lambda: _has_consumers(nc, "FEED", 1), what="the feed's consumer")
        published = 0
        # The client reads nothing: publish until the feed gives up on it (bounded).
        while await consumers(nc, "FEED") and published < 400:
            for _ in range(10):
                body = orjson.dumps(event("com.example.thing", id_=str(published), data=big))
                await js.publish("feed.big", body, headers=STRUCTURED)
                published += 1
        await eventually(lambda: _has_consumers(nc, "FEED", 0), what="the consumer let go")
        frames = await raw_frames(response)  # to its end: the server ends the response
        healthy = await http.get("/healthz")
        last = fields(frames[-1])
        assert last["event"] == "overflow"
        overflow = orjson.loads(last["data"])
        delivered = [fields(f) for f in frames[:-1]]
        assert overflow["buffered"] == 2
        assert overflow["last_event_id"] == delivered[-1]["id"]
        assert "Last-Event-ID" in overflow["detail"]
        print("published", published, "delivered", len(delivered))
        assert len(delivered) < published
        assert healthy.status_code == 200
        # Nothing is lost for the client that resumes where it was.
        resume = {"last-event-id": overflow["last_event_id"]}
        async with aconnect_sse(
            http, "GET", "/events/stream", params={"subscription": "things"}, headers=resume
        ) as source:
            events = feed(source)
            [after] = await take(events, 1)
    assert int(after.id) == int(overflow["last_event_id"]) + 1


async def _has_consumers(nc: Client, stream: str, count: int) -> bool:
    return await consumers(nc, stream) == count


async def test_client_disconnect_removes_the_consumer(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    async with gateway(nats_url, routes_file(tmp_path)) as (_, http):
        for _ in range(2):  # and again: nothing is left over from the first time
            async with http.stream("GET", "/events/stream", params={"subscription": "things"}):
                await eventually(lambda: _has_consumers(nc, "FEED", 1), what="one consumer")
            await eventually(lambda: _has_consumers(nc, "FEED", 0), 5.0, "no consumer")


async def test_client_disconnect_removes_the_subscription(nats_url: str, tmp_path: Path) -> None:
    async with gateway(nats_url, routes_file(tmp_path)) as (service, http):
        feeds = service.feeds
        # Event streams read through a connection of their own, never the router's (many
        # replaying clients must not get the router's connection dropped as a slow consumer).
        assert feeds is not None
        assert feeds is not service.router.nc
        # nats-py has no public count of a connection's subscriptions; a core feed adds one.
        baseline = len(feeds._subs)

        async def subscriptions(count: int) -> bool:
            return len(feeds._subs) == count

        for _ in range(2):
            async with http.stream("GET", "/events/stream", params={"subject": "live.>"}):
                await eventually(lambda: subscriptions(baseline + 1), what="one more")
            await eventually(lambda: subscriptions(baseline), 5.0, "the subscription gone")


async def test_gateway_shutdown_ends_streams_promptly(nats_url: str, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=httpx.Timeout(WAIT)) as http:
        async with running_gateway(nats_url, routes_file(tmp_path)) as service:
            assert service.gateway is not None
            url = service.gateway.url + "/events/stream"
            opened = [asyncio.Event(), asyncio.Event()]
            readers = [
                asyncio.ensure_future(_read_all(http, url, {"subscription": "things"}, opened[0])),
                asyncio.ensure_future(_read_all(http, url, {"subject": "live.>"}, opened[1])),
            ]
            async with asyncio.timeout(WAIT):
                await asyncio.gather(*(o.wait() for o in opened))
            stopping = loop.time()
        stopped = loop.time() - stopping
        async with asyncio.timeout(WAIT):
            ends = [(await reader)[-1] for reader in readers]
    assert all(end.startswith(": the gateway is shutting down") for end in ends), ends
    # The streams did not hold up the graceful shutdown (its budget, drain_timeout, is 15s).
    assert stopped < 5.0


async def _read_all(
    http: httpx.AsyncClient, url: str, params: dict[str, str], opened: asyncio.Event
) -> list[str]:
    async with http.stream("GET", url, params=params) as response:
        assert response.status_code == 200
        opened.set()
        return [line async for line in response.aiter_lines() if line and line != ": keepalive"]


async def test_a_client_catching_up_is_fed_as_fast_as_it_reads(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    """The backlog waits in the stream, not in the buffer: resuming far behind with a buffer of
    4 is no overflow."""
    js = nc.jetstream()
    count = 500
    async with gateway(nats_url, routes_file(tmp_path, buffer=4)) as (_, http):
        acks = [
            await js.publish_async(
                "feed.backlog",
                orjson.dumps(event("com.example.thing", id_=str(i), data={"n": i})),
                headers=STRUCTURED,
            )
            for i in range(count)
        ]
        await asyncio.gather(*acks)
        params = {"subscription": "things", "last_event_id": "0"}
        async with aconnect_sse(http, "GET", "/events/stream", params=params) as source:
            got = await take(feed(source), count)
    assert [m.id for m in got] == [str(seq) for seq in range(1, count + 1)]
    assert {m.event for m in got} == {"com.example.thing"}


async def test_a_slow_subject_client_gets_overflow(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    big = "x" * 60_000
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)]
    )
    async with (
        gateway(nats_url, routes_file(tmp_path, buffer=2), transport=transport) as (_, http),
        http.stream("GET", "/events/stream", params={"subject": "live.>"}) as response,
    ):
        assert response.status_code == 200
        # More than the kernel and the gateway can hold for a client that reads nothing
        # (its socket buffers are a few MB at most).
        for i in range(400):
            body = orjson.dumps(event("com.example.live", id_=str(i), data=big))
            await nc.publish("live.big", body, headers=STRUCTURED)
        await nc.flush()
        frames = await raw_frames(response)
    last = fields(frames[-1])
    assert last["event"] == "overflow"
    overflow = orjson.loads(last["data"])
    assert overflow["buffered"] == 2
    assert overflow["last_event_id"] is None
    assert "cannot be resumed" in overflow["detail"]
    assert 0 < len(frames) - 1 < 400
    assert all("id" not in fields(f) for f in frames)


async def test_a_lost_consumer_is_made_again_from_where_the_feed_was(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    js = nc.jetstream()
    async with (
        gateway(nats_url, routes_file(tmp_path)) as (_, http),
        aconnect_sse(http, "GET", "/events/stream", params={"subscription": "things"}) as source,
    ):
        events = feed(source)
        await post_things(http, range(1))
        await take(events, 1)
        [lost] = await js.consumers_info("FEED")
        await js.delete_consumer("FEED", lost.name)
        await post_things(http, range(1, 3))  # while the feed has no consumer
        got = await take(events, 2)
        [made] = await js.consumers_info("FEED")
    assert [m.id for m in got] == ["2", "3"]
    assert made.name != lost.name


async def test_a_deleted_stream_ends_its_feeds(nats_url: str, nc: Client, tmp_path: Path) -> None:
    async with (
        gateway(nats_url, routes_file(tmp_path)) as (_, http),
        http.stream("GET", "/events/stream", params={"subscription": "things"}) as response,
    ):
        await eventually(lambda: _has_consumers(nc, "FEED", 1), what="the feed's consumer")
        await nc.jetstream().delete_stream("FEED")
        frames = await raw_frames(response)  # to its end
    assert frames == [[": stream FEED was deleted"]]


async def test_headers_arrive_before_any_event(nats_url: str, tmp_path: Path) -> None:
    routes = write_routes(
        tmp_path, (ROUTES % {"buffer": 8}).replace("keepalive: 200ms", "keepalive: 30s")
    )
    async with (
        gateway(nats_url, routes) as (_, http),
        http.stream("GET", "/events/stream", params={"subscription": "things"}) as response,
    ):
        # Well before the 30 s keep-alive: the stream is open, and says so.
        assert response.status_code == 200
        async with asyncio.timeout(5):
            first = await anext(response.aiter_lines())
    assert first == ": keepalive"
