"""Hostile input at the delivery end: near max_payload, odd and huge headers, control headers,
reply subjects that are not the producer's own. Against a real nats-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import nats.js.errors
import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.delivery.deadletter import parse_deadletter
from cerouter.ingress.core import reply_to
from cerouter.nats import wire
from cerouter.service.stats import Outcome
from cerouter.types import Reason
from tests.routerkit import Inbox, event, eventually, running_router, stream_messages, write_routes

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

STRUCTURED = {"Content-Type": "application/cloudevents+json"}

ROUTES = """
ingress:
  core: {subjects: [events.>], queue: cerouter}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: out.things}
  - name: binary
    match: {type: com.example.big}
    to: {subject: out.big, mode: binary}
  - name: ask
    match: {type: com.example.question}
    to: {request: answers.here, timeout: 2s}
unrouted: deadletter
"""


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    return write_routes(tmp_path, ROUTES)


def thing(id_: str, **extra: object) -> bytes:
    return orjson.dumps(event("com.example.thing", id_=id_, data={"n": 1}, **extra))


async def still_routes(nc: Client, id_: str) -> None:
    out = await Inbox.on(nc, "out.things")
    await nc.publish("events.ok", thing(id_), headers=STRUCTURED)
    [msg] = await out.wait(1)
    assert orjson.loads(msg.data)["id"] == id_


async def test_an_unrouted_event_near_max_payload_is_dead_lettered_truncated(
    nc: Client, nats_url: str, routes: Path
) -> None:
    async with running_router(nats_url, routes) as router:
        room = router.nc.max_payload - len(wire.encode_headers(STRUCTURED) or b"") - 50
        body = orjson.dumps(event("org.nobody", id_="big", data={"pad": ""}))
        big = body.replace(b'"pad":""', b'"pad":"' + b"x" * (room - len(body)) + b'"')
        assert len(big) > router.nc.max_payload - 200
        await nc.publish("events.big", big, headers=STRUCTURED)
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
        record = parse_deadletter(letter.headers, letter.data)
        assert record.reason is Reason.UNROUTED
        assert record.truncated == len(big)
        assert big.startswith(record.payload)
        assert router.nc.is_connected, "the router kept its connection"
        await still_routes(nc, "after-big")


async def test_a_forward_that_would_exceed_max_payload_is_dead_lettered_too_large(
    nc: Client, nats_url: str, routes: Path
) -> None:
    async with running_router(nats_url, routes) as router:
        # Binary mode moves the attributes into headers, percent-encoded (a space takes three
        # bytes there): the same event no longer fits.
        note = " " * 400
        skeleton = orjson.dumps(event("com.example.big", id_="b-1", data="", note=note))
        room = router.nc.max_payload - wire.header_size(STRUCTURED) - len(skeleton) - 20
        big = orjson.dumps(event("com.example.big", id_="b-1", data="y" * room, note=note))
        await nc.publish("events.big", big, headers=STRUCTURED)
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
        record = parse_deadletter(letter.headers, letter.data)
        assert record.reason is Reason.TOO_LARGE
        assert "max_payload" in record.detail
        assert router.stats.outcomes[Outcome.RETRIED] == 0
        await still_routes(nc, "after-too-large")


async def test_headers_jetstream_refuses_still_reach_the_dead_letter_stream(
    nc: Client, nats_url: str, routes: Path
) -> None:
    odd = {**STRUCTURED, "X(odd)": "1", "Huge": "h" * 70_000}
    async with running_router(nats_url, routes) as router:
        # nats-py refuses such names itself; other clients send them, and NATS accepts them.
        await wire.publish(nc, "events.odd", orjson.dumps(event("org.nobody", id_="odd")), odd)
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
        record = parse_deadletter(letter.headers, letter.data)
        assert record.reason is Reason.UNROUTED
        assert record.headers == odd, "the original headers are recoverable"
        assert orjson.loads(record.payload)["id"] == "odd"
        assert router.stats.outcomes[Outcome.DEADLETTER_FAILED] == 0


async def test_producer_status_headers_are_not_forwarded(
    nc: Client, nats_url: str, routes: Path
) -> None:
    headers = {**STRUCTURED, "Status": "503", "Description": "No Responders"}
    async with running_router(nats_url, routes):
        out = await Inbox.on(nc, "out.things")
        await nc.publish("events.s", thing("s-1"), headers=headers)
        await nc.publish("events.s", orjson.dumps(event("org.nobody", id_="s-2")), headers=headers)
        [msg] = await out.wait(1)
        assert msg.headers is not None
        assert not {"Status", "Description"} & set(msg.headers)
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert letter.headers is not None
    assert "Status" not in letter.headers
    assert parse_deadletter(letter.headers, letter.data).headers["Status"] == "503"


def test_replies_never_go_to_system_subjects() -> None:
    assert reply_to("_INBOX.abc") == "_INBOX.abc"
    for subject in ("$JS.API.STREAM.DELETE.X", "$JS.ACK.S.c.1.1.1.1.0", "$SYS.REQ.X", ""):
        assert reply_to(subject) is None


async def test_a_producer_cannot_make_the_router_call_the_jetstream_api(
    nc: Client, nats_url: str, routes: Path
) -> None:
    js = nc.jetstream()
    await js.add_stream(name="VICTIM", subjects=["victim.>"])
    answered = asyncio.Event()

    async def answer(msg: Msg) -> None:
        await nc.publish(msg.reply, b"{}")
        answered.set()

    await nc.subscribe("answers.here", cb=answer)
    async with running_router(nats_url, routes) as router:
        question = orjson.dumps(event("com.example.question", id_="q-1"))
        await nc.publish(
            "events.q", question, reply="$JS.API.STREAM.DELETE.VICTIM", headers=STRUCTURED
        )
        await asyncio.wait_for(answered.wait(), 10)

        async def settled() -> bool:
            return router.stats.outcomes[Outcome.ROUTED] == 1

        await eventually(settled, what="the question routed")
    info = await js.stream_info("VICTIM")
    assert info.config.name == "VICTIM", "the stream was not deleted"


async def test_closing_the_connection_for_good_marks_the_router_lost(
    nats_url: str, routes: Path
) -> None:
    async with running_router(nats_url, routes) as router:
        assert router.ready
        await router.nc.close()  # what nats-py does when it gives up on a connection
        await asyncio.wait_for(router.lost.wait(), 5)
        assert not router.ready


async def test_jetstream_ingress_request_replies_go_nowhere(tmp_path: Path, nats_url: str) -> None:
    routes = write_routes(
        tmp_path,
        """
        ingress:
          jetstream: [{stream: EVENTS, durable: routers}]
        streams:
          - {name: EVENTS, subjects: [events.>]}
        routes:
          - name: ask
            match: {type: com.example.question}
            to: {request: answers.here, timeout: 2s}
        """,
    )
    nc = await nats.connect(nats_url)
    acks: list[bytes] = []

    async def on_ack(msg: Msg) -> None:
        acks.append(msg.data)

    await nc.subscribe("$JS.ACK.>", cb=on_ack)

    async def answer(msg: Msg) -> None:
        await nc.publish(msg.reply, b"THE-REPLY")

    await nc.subscribe("answers.here", cb=answer)
    try:
        async with running_router(nats_url, routes) as router:
            await nc.jetstream().publish(
                "events.q", orjson.dumps(event("com.example.question", id_="q")),
                headers=STRUCTURED,
            )  # fmt: skip

            async def routed() -> bool:
                return router.stats.outcomes[Outcome.ROUTED] == 1

            await eventually(routed, what="the question routed")
            await nc.flush()
        assert b"THE-REPLY" not in acks, "a reply reached the JetStream ack subject"
        with pytest.raises(nats.js.errors.NotFoundError):
            await nc.jetstream().get_last_msg("DEADLETTER", "deadletter.>")
    finally:
        await nc.close()


async def test_a_different_event_reusing_a_stored_source_and_id_is_a_conflict(
    tmp_path: Path, nc: Client, nats_url: str
) -> None:
    routes = write_routes(
        tmp_path,
        """
        ingress:
          core: {subjects: [events.>], queue: cerouter}
        streams:
          - {name: OUT, subjects: [out.>]}
        routes:
          - name: store
            match: {type: com.example.thing}
            to: {stream: OUT, subject: out.things}
        """,
    )
    async with running_router(nats_url, routes) as router:
        for n in (1, 1, 2):  # the original, a retry of it, then a different event, same id
            body = orjson.dumps(event("com.example.thing", id_="same", data={"n": n}))
            await nc.publish("events.t", body, headers=STRUCTURED)

        async def settled() -> bool:
            outcomes = router.stats.outcomes
            return outcomes[Outcome.ROUTED] == 2 and outcomes[Outcome.DEADLETTERED] == 1

        await eventually(settled, what="three events settled")
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    record = parse_deadletter(letter.headers, letter.data)
    assert record.reason is Reason.CONFLICT
    assert orjson.loads(record.payload)["data"] == {"n": 2}
    stored = await nc.jetstream().stream_info("OUT")
    assert stored.state.messages == 1, "the original stays, stored once"
    assert router.stats.outcomes[Outcome.ROUTED] == 2


async def test_a_deleted_deadletter_stream_comes_back_despite_a_subscriber_on_its_subjects(
    nc: Client, nats_url: str, routes: Path
) -> None:
    js = nc.jetstream()
    async with running_router(nats_url, routes, ack_timeout=1.0) as router:
        # `cerouter sub 'deadletter.>'` from the README walk-through: a core subscriber answers
        # for the missing stream, so the publish times out instead of failing with "no stream".
        watcher = await Inbox.on(nc, "deadletter.>")
        await js.delete_stream("DEADLETTER")
        await nc.publish("events.x", orjson.dumps(event("org.nobody", id_="n")), headers=STRUCTURED)

        async def stored() -> bool:
            try:
                return (await js.stream_info("DEADLETTER")).state.messages == 1
            except nats.js.errors.NotFoundError:
                return False

        await eventually(stored, what="the letter in the re-provisioned stream")
        assert router.stats.outcomes[Outcome.DEADLETTER_FAILED] == 0
        assert watcher.messages, "the subscriber saw it too"
