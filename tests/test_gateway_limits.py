"""Gateway limits and a hostile pass: body, head size and time, per-client and global in-flight.

Everything runs over real loopback TCP against a router on a real nats-server. Requests that
must stay in flight are routed to a ``request:`` destination whose responder is this test: it
holds the requests until the test has seen what it wanted, then answers them. Raw requests go
through asyncio streams (the server shares the test's event loop: a blocking socket would stall
it) and every read has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from starlette.types import Message, Receive, Scope, Send

from cerouter.config.load import parse_config
from cerouter.config.model import HttpLimits
from cerouter.gateway.limits import ClientLimit
from cerouter.gateway.protocol import LINGER_BYTES, GuardedHttpToolsProtocol
from cerouter.nats.connection import full_flush
from cerouter.service.serve import Service
from tests.routerkit import event, running_gateway, write_routes

pytestmark = pytest.mark.nats

WITHIN = 10.0  # every wait for an answer; generous for a loaded machine
STRUCTURED = {"Content-Type": "application/cloudevents+json"}

ROUTES = """\
http:
  listen: 127.0.0.1:0
  batch: {max_events: 100}
  limits: {%s}
routes:
  - name: ask
    match: {type: com.example.ask}
    to: {request: ask.things, timeout: 20s}
  - name: things
    match: {type: com.example.thing}
    to: {subject: things.out}
"""


@asynccontextmanager
async def gateway(nats_url: str, tmp_path: Path, limits: str = "") -> AsyncIterator[Service]:
    """A router with its gateway, ``limits`` the flow mapping's content."""
    write_routes(tmp_path, ROUTES % limits)
    async with running_gateway(nats_url, tmp_path / "routes.yaml") as service:
        yield service


def address(service: Service) -> tuple[str, int]:
    assert service.gateway is not None
    return service.gateway.address


def body(type_: str = "com.example.thing", id_: str = "1", **extra: Any) -> bytes:
    return orjson.dumps(event(type_, id_, data={"n": 1}, **extra))


class Reply:
    """An HTTP response read off a raw connection."""

    def __init__(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.status = status
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        return orjson.loads(self.content)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """One response (Content-Length framed, as all of the gateway's are)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return Reply(int(status_line.split()[1]), headers, await reader.readexactly(length))


class Connection:
    """A raw connection to the gateway (asyncio streams: the server shares this loop)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await asyncio.wait_for(self.writer.drain(), WITHIN)

    async def reply(self) -> Reply:
        return await asyncio.wait_for(read_reply(self.reader), WITHIN)

    async def ended(self) -> bool:
        """Whether the server ends the connection (EOF or reset) within the deadline."""
        try:
            return await asyncio.wait_for(self.reader.read(65536), WITHIN) == b""
        except ConnectionError:
            return True


@asynccontextmanager
async def connect(service: Service, *, local: str | None = None) -> AsyncIterator[Connection]:
    host, port = address(service)
    reader, writer = await asyncio.open_connection(
        host, port, local_addr=(local, 0) if local else None
    )
    try:
        yield Connection(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def exchange(service: Service, data: bytes) -> tuple[Reply, bool]:
    """Send raw bytes on a new connection; the reply, and whether the server then closed."""
    async with connect(service) as conn:
        await conn.send(data)
        reply = await conn.reply()
        return reply, await conn.ended()


async def ask(service: Service, data: bytes) -> Reply:
    """Send raw bytes on a new connection; the reply (the connection may stay open)."""
    async with connect(service) as conn:
        await conn.send(data)
        return await conn.reply()


def post(payload: bytes, *headers: str, path: str = "/events") -> bytes:
    """A raw POST with ``headers`` (lines without CRLF) and a Content-Length."""
    head = [
        f"POST {path} HTTP/1.1",
        "Host: gateway",
        "Content-Type: application/cloudevents+json",
        *headers,
    ]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


async def assert_ready(service: Service) -> None:
    """The router still routes and the gateway still answers its probe."""
    assert service.gateway is not None
    async with httpx.AsyncClient(base_url=service.gateway.url, timeout=WITHIN) as http:
        assert (await http.get("/readyz")).status_code == 200
        response = await http.post("/events", content=body(id_="probe"), headers=STRUCTURED)
        assert response.status_code == 202, response.text


class Responder:
    """Holds the requests of the ``ask`` route until :meth:`release`."""

    def __init__(self) -> None:
        self.held: list[Msg] = []
        self._changed = asyncio.Event()

    @classmethod
    async def on(cls, nc: Client) -> Responder:
        responder = cls()
        await nc.subscribe("ask.things", cb=responder._hold)
        await full_flush(nc)  # registered before the router (another connection) requests
        return responder

    async def _hold(self, msg: Msg) -> None:
        self.held.append(msg)
        self._changed.set()

    async def holding(self, count: int) -> None:
        """Wait (bounded) until ``count`` requests are held."""

        async def enough() -> None:
            while len(self.held) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(enough(), WITHIN)
        except TimeoutError:
            raise AssertionError(f"held {len(self.held)} of {count} requests") from None

    async def release(self) -> None:
        """Answer every held request (a CloudEvent reply)."""
        for msg in self.held:
            answer = event("com.example.answer", "r-" + orjson.loads(msg.data)["id"])
            await msg.respond(orjson.dumps(answer))
        self.held.clear()


async def in_flight(
    http: httpx.AsyncClient, count: int, responder: Responder
) -> list[asyncio.Task[httpx.Response]]:
    """``count`` requests held by the responder (started, and seen by it)."""
    already = len(responder.held)
    tasks = [
        asyncio.create_task(
            http.post(
                "/events", content=body("com.example.ask", f"h{already + i}"), headers=STRUCTURED
            )
        )
        for i in range(count)
    ]
    await responder.holding(already + count)
    return tasks


# -- body ---------------------------------------------------------------------------------------


async def test_a_declared_body_over_the_limit_is_413_before_it_is_sent(
    nats_url: str, tmp_path: Path
) -> None:
    async with gateway(nats_url, tmp_path, "max_body: 4KiB") as service:
        # Only the head is sent: the 413 must not wait for a body that is not coming.
        reply = await ask(service, post(b"", "Content-Length: 5000"))
        assert reply.status == 413
        assert "4096 bytes" in reply.json()["detail"]
        # With Expect: 100-continue the client is not even told to go on.
        reply = await ask(service, post(b"", "Content-Length: 5000", "Expect: 100-continue"))
        assert reply.status == 413
        await assert_ready(service)


async def test_a_chunked_body_over_the_limit_is_413(nats_url: str, tmp_path: Path) -> None:
    async with gateway(nats_url, tmp_path, "max_body: 4KiB") as service:
        assert service.gateway is not None

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 1024

        # The client sees the 413, not a reset over its unread upload, and the connection
        # serves the next request.
        async with httpx.AsyncClient(base_url=service.gateway.url, timeout=WITHIN) as http:
            response = await http.post("/events", content=chunks(), headers=STRUCTURED)
            assert response.status_code == 413
            assert response.headers["content-type"] == "application/problem+json"
            response = await http.post("/events", content=body(), headers=STRUCTURED)
            assert response.status_code == 202
        await assert_ready(service)


async def test_an_early_answer_reads_on_only_so_long(nats_url: str, tmp_path: Path) -> None:
    limits = "max_body: 4KiB, read_timeout: 1s"
    async with gateway(nats_url, tmp_path, limits) as service:
        # Answered at the limit, not at the end of an endless chunked body; then, once nothing
        # more comes, closed after read_timeout.
        chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
        async with connect(service) as conn:
            await conn.send(post(b"", "Transfer-Encoding: chunked") + chunk * 5)
            assert (await conn.reply()).status == 413
            assert await conn.ended()
    async with gateway(nats_url, tmp_path, "max_body: 4KiB") as service:
        # An upload that goes on: closed after LINGER_BYTES, well before read_timeout (30s).
        async with connect(service) as conn:
            await conn.send(post(b"", "Content-Length: 100000000"))
            assert (await conn.reply()).status == 413
            started = asyncio.get_running_loop().time()
            with contextlib.suppress(ConnectionError):
                for _ in range(2 * LINGER_BYTES // 65536 + 1):
                    await conn.send(b"x" * 65536)
            assert await conn.ended()
            assert asyncio.get_running_loop().time() - started < 25
        await assert_ready(service)


async def test_a_body_at_the_limit_is_taken(nats_url: str, tmp_path: Path) -> None:
    async with gateway(nats_url, tmp_path, "max_body: 4KiB") as service:
        assert service.gateway is not None
        padded = body(pad="")
        padded = body(pad="x" * (4096 - len(padded)))
        assert len(padded) == 4096
        async with httpx.AsyncClient(base_url=service.gateway.url, timeout=WITHIN) as http:
            response = await http.post("/events", content=padded, headers=STRUCTURED)
            assert response.status_code == 202, response.text
            response = await http.post("/events", content=padded + b" ", headers=STRUCTURED)
            assert response.status_code == 413


async def test_a_body_trickled_too_slowly_is_408_and_frees_its_slot(
    nats_url: str, tmp_path: Path
) -> None:
    limits = "read_timeout: 1s, max_inflight_per_client: 1"
    async with gateway(nats_url, tmp_path, limits) as service:
        started = asyncio.get_running_loop().time()
        # 10 of 100 bytes, then nothing: the deadline ends it, and the client's slot is free.
        reply, closed = await exchange(service, post(b"x" * 10, "Content-Length: 100"))
        assert reply.status == 408
        assert "did not arrive within 1s" in reply.json()["detail"]
        assert closed
        assert asyncio.get_running_loop().time() - started >= 0.9  # the deadline, not at once
        await assert_ready(service)  # max_inflight_per_client 1: the slot was given back


# -- the request head ---------------------------------------------------------------------------


async def test_a_head_over_max_headers_is_431(nats_url: str, tmp_path: Path) -> None:
    async with gateway(nats_url, tmp_path, "max_headers: 8KiB") as service:
        for headers in (
            ["X-Big: " + "a" * 9000],  # one big header
            [f"X-H{i}: v" for i in range(2000)],  # many small ones
        ):
            reply, closed = await exchange(service, post(body(), *headers))
            assert reply.status == 431
            assert reply.headers["content-type"] == "application/problem+json"
            assert "8192 bytes" in reply.json()["detail"]
            assert closed
        # A long URL is part of the head too.
        reply = await ask(service, post(body(), path="/events?" + "q" * 9000))
        assert reply.status == 431
        # Under the limit is fine.
        reply = await ask(service, post(body(), "X-Big: " + "a" * 7000))
        assert reply.status == 202
        await assert_ready(service)


async def test_an_endless_head_is_cut_off_at_the_limit(nats_url: str, tmp_path: Path) -> None:
    # httptools alone buffers a header value whole, in quadratic time; the guard stops reading
    # at max_headers, so a client pushing 64 MiB gets nowhere near sending it.
    async with gateway(nats_url, tmp_path, "max_headers: 8KiB") as service:
        host, port = address(service)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /events HTTP/1.1\r\nHost: gateway\r\nX-Endless: ")
        sent = 0
        chunk = b"a" * 65536
        with contextlib.suppress(ConnectionError):
            while sent < 64 * 1024 * 1024:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), WITHIN)
                sent += len(chunk)
        # What got through before the server closed is at most what the sockets' buffers
        # hold, far from 64 MiB.
        assert sent < 32 * 1024 * 1024, sent
        with contextlib.suppress(ConnectionError):
            reply = await asyncio.wait_for(read_reply(reader), WITHIN)
            assert reply.status == 431  # when the reset did not swallow it
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        await assert_ready(service)


async def test_a_slow_or_missing_head_is_408(nats_url: str, tmp_path: Path) -> None:
    async with gateway(nats_url, tmp_path, "read_timeout: 1s") as service:
        # Part of a head, then silence (slowloris); and a connection that says nothing at all.
        for data in (b"POST /events HTTP/1.1\r\nHost: gateway\r\nX-Slow: a", b"", b"\r\n"):
            reply, closed = await exchange(service, data)
            assert reply.status == 408
            assert "request head did not arrive within 1s" in reply.json()["detail"]
            assert closed
        await assert_ready(service)


def test_the_guard_is_what_serves() -> None:
    # A class of its own per gateway, carrying its limits (uvicorn instantiates what it's given).
    guarded = GuardedHttpToolsProtocol.with_limits(1234, 2.5)
    assert issubclass(guarded, GuardedHttpToolsProtocol)
    assert (guarded.max_head, guarded.head_timeout) == (1234, 2.5)
    assert GuardedHttpToolsProtocol.max_head != 1234


# -- in flight ----------------------------------------------------------------------------------


async def test_per_client_in_flight_is_429_for_that_client_only(
    nats_url: str, tmp_path: Path, nc: Client
) -> None:
    limits = "max_inflight_per_client: 2, max_inflight: 100"
    async with gateway(nats_url, tmp_path, limits) as service:
        assert service.gateway is not None
        responder = await Responder.on(nc)
        async with httpx.AsyncClient(base_url=service.gateway.url, timeout=WITHIN) as http:
            held = await in_flight(http, 2, responder)
            response = await http.post("/events", content=body(), headers=STRUCTURED)
            assert response.status_code == 429
            assert response.headers["retry-after"] == "1"
            assert "2 requests in flight" in response.json()["detail"]
            # Probes are not counted; another address (127.0.0.2 is loopback too) is not limited.
            assert (await http.get("/readyz")).status_code == 200
            other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
            async with httpx.AsyncClient(
                base_url=service.gateway.url, timeout=WITHIN, transport=other
            ) as elsewhere:
                response = await elsewhere.post("/events", content=body(), headers=STRUCTURED)
                assert response.status_code == 202, response.text
            await responder.release()
            for task in held:
                answered = await asyncio.wait_for(task, WITHIN)
                assert answered.status_code == 200, answered.text
                assert answered.json()["type"] == "com.example.answer"
            response = await http.post("/events", content=body(), headers=STRUCTURED)
            assert response.status_code == 202
        await assert_ready(service)


async def test_global_in_flight_is_503(nats_url: str, tmp_path: Path, nc: Client) -> None:
    limits = "max_inflight: 2, max_inflight_per_client: 100"
    async with gateway(nats_url, tmp_path, limits) as service:
        assert service.gateway is not None
        responder = await Responder.on(nc)
        async with httpx.AsyncClient(base_url=service.gateway.url, timeout=WITHIN) as http:
            held = await in_flight(http, 2, responder)
            response = await http.post("/events", content=body(), headers=STRUCTURED)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert "in-flight limit" in response.json()["detail"]
            await responder.release()
            for task in held:
                assert (await asyncio.wait_for(task, WITHIN)).status_code == 200
        await assert_ready(service)


async def test_pipelined_requests_are_served_one_at_a_time(nats_url: str, tmp_path: Path) -> None:
    # Why the limit is per client and not per connection: 50 requests in one write, with a
    # per-client limit of 1, are all taken, one after the other, in order.
    async with gateway(nats_url, tmp_path, "max_inflight_per_client: 1") as service:
        async with connect(service) as conn:
            await conn.send(b"".join(post(body(id_=f"p{i}")) for i in range(50)))
            for _ in range(50):
                reply = await conn.reply()
                assert reply.status == 202, reply.content
        await assert_ready(service)


async def test_client_limit_counts_only_posts_and_forgets_idle_clients() -> None:
    gate = asyncio.Event()
    started: asyncio.Queue[str] = asyncio.Queue()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await started.put(f"{scope['method']} {scope['client'][0]}")
        await gate.wait()

    limit = ClientLimit(app, 1)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    def scope(method: str, host: str = "192.0.2.1") -> Scope:
        return {"type": "http", "method": method, "client": (host, 1234), "headers": []}

    first = asyncio.create_task(limit(scope("POST"), receive, send))
    assert await asyncio.wait_for(started.get(), WITHIN) == "POST 192.0.2.1"
    assert limit.inflight("192.0.2.1") == 1
    await limit(scope("POST"), receive, send)  # refused at once, the app never called
    assert sent[0]["status"] == 429
    assert started.empty()
    others = [
        asyncio.create_task(limit(scope("GET"), receive, send)),  # not counted
        asyncio.create_task(limit(scope("POST", "192.0.2.2"), receive, send)),
    ]
    seen = {await asyncio.wait_for(started.get(), WITHIN) for _ in others}
    assert seen == {"GET 192.0.2.1", "POST 192.0.2.2"}
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, *others), WITHIN)
    assert limit.inflight("192.0.2.1") == 0
    assert limit._open == {}  # nothing kept for clients with nothing open


# -- a hostile pass -----------------------------------------------------------------------------

NESTED = b"[" * 3000 + b"]" * 3000
HOSTILE: list[tuple[str, bytes, set[int]]] = [
    ("garbage request line", b"GARBAGE\r\n\r\n", {400}),
    ("NUL in a header", post(body(), "X-Nul: a\x00b"), {400}),
    ("space in a header name", post(body(), "Bad Header: x"), {400}),
    ("two Content-Lengths", post(body(), "Content-Length: 3", "Content-Length: 4"), {400}),
    ("Content-Length not a number", post(body(), "Content-Length: abc"), {400}),
    ("absurd Content-Length", post(b"", "Content-Length: " + "9" * 30), {400}),
    (
        "chunked and Content-Length (smuggling)",
        post(b"0\r\n\r\n", "Content-Length: 5", "Transfer-Encoding: chunked"),
        {400},
    ),
    ("bad chunk size", post(b"zz\r\nabc\r\n0\r\n\r\n", "Transfer-Encoding: chunked"), {400}),
    (
        "invalid UTF-8 in ce- headers (binary mode)",
        post(
            b'{"n": 1}',
            "ce-specversion: 1.0",
            "ce-id: \xff\xfe",
            "ce-type: com.example.\xc3\x28",
            "ce-source: /\xed\xa0\x80",
        ).replace(b"application/cloudevents+json", b"application/json"),
        {400},
    ),
    (
        "a repeated ce- header",
        post(
            b"{}", "ce-specversion: 1.0", "ce-id: 1", "ce-id: 2", "ce-type: t", "ce-source: /s"
        ).replace(b"application/cloudevents+json", b"application/json"),
        {400},
    ),
    ("odd Content-Type", post(body()).replace(b"cloudevents+json", b"x-\x01weird"), {400}),
    (
        "no Content-Type",
        post(body()).replace(b"Content-Type: application/cloudevents+json\r\n", b""),
        {415},
    ),
    ("two Content-Types", post(body(), "Content-Type: text/plain"), {415}),
    ("empty body", post(b""), {400}),
    ("not JSON", post(b"\x00\xff{"), {400}),
    (
        "deeply nested data",
        post(
            b'{"specversion":"1.0","id":"1","source":"/s","type":"com.example.thing","data":'
            + NESTED
            + b"}"
        ),
        {400},
    ),
    ("a JSON string, not an event", post(b'"' + b"a" * 1000 + b'"'), {400}),
    ("GET /events", b"GET /events HTTP/1.1\r\nHost: g\r\n\r\n", {405}),
    ("an unknown path", post(body(), path="/nope"), {404}),
    ("a path with NUL", post(body(), path="/ev%00ents"), {404}),
    (
        "a WebSocket upgrade",
        post(body(), "Connection: Upgrade", "Upgrade: websocket"),
        {400},
    ),
    (
        "a batch of 10,000 (max 100)",
        post(b"[" + b",".join([b"{}"] * 10_000) + b"]").replace(
            b"cloudevents+json", b"cloudevents-batch+json"
        ),
        {413},
    ),
    (
        "a deeply nested batch",
        post(NESTED).replace(b"cloudevents+json", b"cloudevents-batch+json"),
        {400},
    ),
    (
        "a batch that is an object",
        post(b"{}").replace(b"cloudevents+json", b"cloudevents-batch+json"),
        {400},
    ),
]


@pytest.mark.parametrize(("what", "data", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_requests_get_a_clear_4xx(
    nats_url: str, tmp_path: Path, what: str, data: bytes, expected: set[int]
) -> None:
    async with gateway(nats_url, tmp_path, "max_headers: 8KiB") as service:
        reply = await ask(service, data)
        assert reply.status in expected, (what, reply.status, reply.content[:300])
        if reply.status != 202 and reply.headers.get("content-type") == "application/problem+json":
            assert reply.json()["status"] == reply.status
            assert reply.json()["detail"]
        await assert_ready(service)
        assert service.router.ready


# -- the settings -------------------------------------------------------------------------------


def _limits(text: str) -> tuple[HttpLimits | None, list[str]]:
    routes = f"version: 1\nroutes: []\nhttp:\n  limits: {{{text}}}\n"
    result = parse_config(routes, check_schemas=False)
    http = result.config.http if result.config is not None else None
    return (http.limits if http is not None else None), [str(e) for e in result.errors]


def test_limits_settings() -> None:
    limits, errors = _limits(
        "max_body: 2KiB, max_headers: 16KiB, max_inflight: 7, max_inflight_per_client: 3, "
        "read_timeout: 1500ms"
    )
    assert errors == []
    assert limits == HttpLimits(2048, 16384, 7, 3, 1.5)
    defaults, _ = _limits("")
    assert defaults == HttpLimits(None, 32 * 1024, 1000, 100, 30.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("read_timeout: 0s", "http.limits.read_timeout: must be more than 0s"),
        ("read_timeout: soon", "http.limits.read_timeout: "),
        ("max_inflight_per_client: 0", "http.limits.max_inflight_per_client: "),
        # Renamed: uvicorn never has two requests of one connection in flight.
        (
            "max_inflight_per_connection: 5",
            "unknown key 'max_inflight_per_connection' (did you mean 'max_inflight_per_client'?)",
        ),
    ],
)
def test_limits_errors(text: str, expected: str) -> None:
    _, errors = _limits(text)
    assert len(errors) == 1, errors
    assert errors[0].startswith("routes.yaml:4: "), errors
    assert expected in errors[0], errors
