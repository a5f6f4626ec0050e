"""The router service against a real nats-server: destinations, modes, fan-out, dead-letters."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.binding import decode, from_message
from cerouter.nats.connection import full_flush
from cerouter.nats.embedded import EmbeddedServer
from tests.routerkit import (
    Inbox,
    event,
    eventually,
    publish,
    running_router,
    stream_messages,
    write_routes,
)

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress:
  core: {subjects: [in.>], queue: routers}
streams:
  - {name: THINGS, subjects: [things.>]}
  - {name: WORK, subjects: [work.>], retention: workqueue}
routes:
  - name: plain
    match: {type: com.example.thing}
    to:
      - {subject: out.same}
      - {subject: out.structured, mode: structured}
      - {subject: out.binary, mode: binary}
      - {subject: "out.typed.{type}"}
  - name: stored
    match: {prefix: {type: com.example.}}
    to: {stream: THINGS, subject: "things.{type}"}
  - name: big
    match: {sql: "INT(size) > 10"}
    to: {subject: out.big}
  - name: stop-here
    match: {type: com.example.final}
    final: true
    to: {subject: out.final}
  - name: after-final
    match: {prefix: {type: com.example.fin}}
    to: {subject: out.after}
  - name: work
    match: {type: com.example.job}
    to:
      - {queue: fast}
      - {queue: slow, durable: true, stream: WORK}
  - name: ask
    match: {type: com.example.question}
    to: {request: "answers.{subject}", timeout: 500ms}
unrouted: deadletter
"""


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    return write_routes(tmp_path, ROUTES)


async def test_each_output_mode(fresh_server: EmbeddedServer, nc: Client, routes: Path) -> None:
    same, structured, binary = [
        await Inbox.on(nc, f"out.{s}") for s in ("same", "structured", "binary")
    ]
    async with running_router(fresh_server.url, routes):
        await publish(nc, "in.x", event(data={"n": 1}, tenant="acme"))
        [s] = await same.wait(1)
        [st] = await structured.wait(1)
        [b] = await binary.wait(1)
    assert decode(s.headers, s.data).mode.value == "structured"
    assert orjson.loads(st.data)["tenant"] == "acme"
    assert b.headers is not None
    assert b.headers["ce-tenant"] == "acme"
    assert b.headers["ce-datacontenttype"] == "application/json"
    assert orjson.loads(b.data) == {"n": 1}
    assert "Content-Type" not in b.headers
    assert b.headers["cerouter-hops"] == "1"


async def test_same_mode_forwards_the_original_bytes(
    fresh_server: EmbeddedServer, nc: Client, routes: Path
) -> None:
    same = await Inbox.on(nc, "out.same")
    original = (
        b'{"specversion":"1.0","id":"raw","source":"/t","type":"com.example.thing","data":{"n":2}}'
    )
    async with running_router(fresh_server.url, routes):
        await publish(nc, "in.raw", original)
        [msg] = await same.wait(1)
    assert msg.data == original


async def test_binary_input_stays_binary_and_converts_to_structured(
    fresh_server: EmbeddedServer, nc: Client, routes: Path
) -> None:
    same, structured = await Inbox.on(nc, "out.same"), await Inbox.on(nc, "out.structured")
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "b1",
        "ce-source": "/t",
        "ce-type": "com.example.thing",
        "ce-datacontenttype": "application/json",
    }
    async with running_router(fresh_server.url, routes):
        await publish(nc, "in.bin", b'{"n": 3}', headers=headers)
        [s] = await same.wait(1)
        [st] = await structured.wait(1)
    assert s.data == b'{"n": 3}'
    assert s.headers is not None
    assert s.headers["ce-id"] == "b1"
    assert orjson.loads(st.data)["data"] == {"n": 3}
    assert st.headers is not None
    assert st.headers["Content-Type"] == "application/cloudevents+json"


async def test_subject_template_is_rendered_safely(
    fresh_server: EmbeddedServer, nc: Client, routes: Path
) -> None:
    typed = await Inbox.on(nc, "out.typed.*")
    async with running_router(fresh_server.url, routes):
        await publish(nc, "in.x", event(data={"n": 1}))
        [msg] = await typed.wait(1)
    assert msg.subject == "out.typed.com_example_thing"


async def test_stream_destination_with_dedupe_id(
    fresh_server: EmbeddedServer, nc: Client, routes: Path
) -> None:
    async with running_router(fresh_server.url, routes):
        for _ in range(3):  # the same event three times: one copy in the stream
            await publish(nc, "in.x", event(id_="dup", data={"n": 1}))
        await publish(nc, "in.x", event(id_="other", data={"n": 1}))
        msgs = await stream_messages(nc, "THINGS", count=2)
    assert [from_message(m.headers, m.data).get_id() for m in msgs] == ["dup", "other"]
    assert msgs[0].headers is not None
    assert msgs[0].headers["Nats-Msg-Id"]
    info = await nc.jetstream().stream_info("THINGS")
    assert info.state.messages == 2


async def test_fan_out_and_final_routes(
    fresh_server: EmbeddedServer, nc: Client, routes: Path
) -> None:
    big, final, after = [await Inbox.on(nc, f"out.{s}") for s in ("big", "final", "after")]
    async with running_router(fresh_server.url, routes):
        await publish(nc, "in.x", event(data={"n": 1}, size=42))
        await publish(nc, "in.x", event("com.example.final", id_="f"))
        await big.wait(1)
        await final.wait(1)
        # The final route's event is also stored (route 'stored' comes before it); wait for that
        # copy, so 'after-final' has certainly been decided.
        await stream_messages(nc, "THINGS", "things.com_example_final", count=1)
    assert after.messages == []


async def test_queue_destinations(fresh_server: EmbeddedServer, nc: Client, routes: Path) -> None:
    fast_a, fast_b = (
        await Inbox.on(nc, "work.fast", "fast"),
        await Inbox.on(nc, "work.fast", "fast"),
    )
    async with running_router(fresh_server.url, routes):
        for i in range(20):
            await publish(nc, "in.jobs", event("com.example.job", id_=str(i)))

        async def all_twenty() -> bool:
            return len(fast_a.messages) + len(fast_b.messages) == 20

        await eventually(all_twenty, what="20 events in queue group fast")
        durable = await stream_messages(nc, "WORK", "work.slow", count=20)
    assert len(durable) == 20


async def test_request_reply_through_the_router(
    fresh_server: EmbeddedServer, nc: Client, routes: Path
) -> None:
    async def answer(msg: Msg) -> None:
        question = from_message(msg.headers, msg.data)
        reply = event("com.example.answer", id_="a-" + question.get_id(), data={"ok": True})
        await msg.respond(orjson.dumps(reply))

    await nc.subscribe("answers.life", cb=answer)
    await full_flush(nc)
    async with running_router(fresh_server.url, routes):
        q = orjson.dumps(event("com.example.question", id_="q1", subject="life"))
        reply = await nc.request(
            "in.q", q, timeout=5, headers={"Content-Type": "application/cloudevents+json"}
        )
    assert from_message(reply.headers, reply.data).get_id() == "a-q1"


@pytest.mark.parametrize(
    ("subject", "expected"), [("nobody", "no responders"), ("slow", "no reply within 0.5s")]
)
async def test_request_failures_answer_with_an_error_event(
    fresh_server: EmbeddedServer, nc: Client, routes: Path, subject: str, expected: str
) -> None:
    async def never(msg: Msg) -> None:
        return None

    await nc.subscribe("answers.slow", cb=never)
    await full_flush(nc)
    async with running_router(fresh_server.url, routes):
        q = orjson.dumps(event("com.example.question", id_="q2", subject=subject))
        reply = await nc.request(
            "in.q", q, timeout=5, headers={"Content-Type": "application/cloudevents+json"}
        )
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    answer = from_message(reply.headers, reply.data)
    assert answer.get_type() == "io.cerouter.error"
    data = answer.get_data()
    assert isinstance(data, dict)
    assert expected in data["error"]
    assert letter.headers is not None
    assert letter.headers["cerouter-deadletter"] == "delivery"
    assert expected in letter.headers["cerouter-reason"]
