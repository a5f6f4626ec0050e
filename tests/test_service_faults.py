"""Faults the router must survive without losing an event (found in review, kept as tests)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import nats.js.errors
import orjson
import pytest
from nats.aio.client import Client
from nats.js.api import RetentionPolicy, StreamConfig

from cerouter.binding import from_message
from cerouter.nats.provision import ProvisionError
from tests.routerkit import (
    Inbox,
    event,
    eventually,
    publish,
    running_router,
    stream_count,
    stream_messages,
    write_routes,
)

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress:
  core: {subjects: [in.>], queue: routers}
  jetstream:
    - {stream: EVENTS, durable: routers, max_deliver: 2}
streams:
  - {name: EVENTS, subjects: [events.>]}
  - {name: OUT, subjects: [out.>]}
routes:
  - name: keep
    match: {prefix: {type: com.example.}}
    to:
      - {stream: OUT, subject: out.kept}
      - {subject: plain.same}
      - {subject: plain.structured, mode: structured}
  - name: ask
    match: {type: org.example.question}
    to: {request: nobody.home, timeout: 100ms}
"""


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    return write_routes(tmp_path, ROUTES)


async def test_producer_jetstream_headers_are_not_forwarded(
    nc: Client, nats_url: str, routes: Path
) -> None:
    hostile = {
        "Content-Type": "application/cloudevents+json",
        "Nats-Expected-Last-Sequence": "999999",
        "Nats-Rollup": "sub",
        "Nats-Msg-Id": "producer-id",
    }
    async with running_router(nats_url, routes):
        await publish(nc, "in.x", event("com.example.item"), headers=hostile)
        await publish(nc, "in.x", b"not an event", headers=hostile)
        [kept] = await stream_messages(nc, "OUT", count=1)
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert kept.headers is not None
    assert "Nats-Expected-Last-Sequence" not in kept.headers
    assert "Nats-Rollup" not in kept.headers
    assert letter.headers is not None
    assert letter.headers["cerouter-deadletter"] == "binding"
    assert letter.headers["cerouter-msg-id"] == "producer-id"
    assert "Nats-Rollup" not in letter.headers


async def test_a_destination_that_cannot_be_tried_does_not_stop_the_others(
    nc: Client, nats_url: str, routes: Path
) -> None:
    same = await Inbox.on(nc, "plain.same")
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "b",
        "ce-source": "/s",
        "ce-type": "com.example.broken",
        "ce-datacontenttype": "application/json",
    }
    async with running_router(nats_url, routes):
        # A JSON-typed body that is not JSON: forwarded as is, but not re-encodable.
        await publish(nc, "in.x", b"{not json", headers=headers)
        [forwarded] = await same.wait(1)
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert forwarded.data == b"{not json"
    assert letter.headers is not None
    assert letter.headers["cerouter-deadletter"] == "delivery"
    assert letter.headers["cerouter-destination"] == "plain.structured"
    assert "not valid JSON" in letter.headers["cerouter-reason"]


async def test_a_deadletter_stream_deleted_at_run_time_is_provisioned_again(
    nc: Client, nats_url: str, routes: Path
) -> None:
    js = nc.jetstream()
    async with running_router(nats_url, routes, retry_initial=0.05, retry_max=0.2):
        await js.delete_stream("DEADLETTER")
        await js.publish(
            "events.q",
            orjson.dumps(event("org.example.question", id_="q")),
            headers={"Content-Type": "application/cloudevents+json"},
        )

        async def stored() -> bool:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                return await stream_count(nc, "DEADLETTER") == 1
            return False

        await eventually(stored, what="the event in the re-provisioned dead-letter stream")
    [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert from_message(letter.headers, letter.data).get_id() == "q"
    info = await js.stream_info("DEADLETTER")
    assert info.config.subjects == ["deadletter.*"], "provisioned as routes.yaml declares it"


async def test_last_attempt_survives_a_deadletter_stream_that_cannot_be_recreated(
    nc: Client, nats_url: str, routes: Path
) -> None:
    js = nc.jetstream()
    async with running_router(nats_url, routes, retry_initial=0.05, retry_max=0.2) as router:
        # Another stream squats on the dead-letter subjects: DEADLETTER cannot come back.
        await js.delete_stream("DEADLETTER")
        await js.add_stream(StreamConfig(name="SQUATTER", subjects=["deadletter.>"]))
        await js.publish(
            "events.q",
            orjson.dumps(event("org.example.question", id_="q")),
            headers={"Content-Type": "application/cloudevents+json"},
        )

        async def refused() -> bool:
            return router.stats.outcomes["deadletter_failed"] >= 2

        await eventually(refused, what="the dead-letter stream to refuse twice")
        assert await stream_count(nc, "SQUATTER") == 0, "a letter went to the wrong stream"
        await js.delete_stream("SQUATTER")

        async def stored() -> bool:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                return await stream_count(nc, "DEADLETTER") == 1
            return False

        await eventually(stored, what="the event to reach the re-created dead-letter stream")
    [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert from_message(letter.headers, letter.data).get_id() == "q"
    assert letter.headers is not None
    assert int(letter.headers["cerouter-attempt"]) >= 2


async def test_a_stored_message_with_a_status_header_is_routed(
    nc: Client, nats_url: str, routes: Path
) -> None:
    js = nc.jetstream()
    async with running_router(nats_url, routes):
        await js.publish(
            "events.s",
            orjson.dumps(event("com.example.item", id_="status")),
            headers={"Content-Type": "application/cloudevents+json", "Status": "404"},
        )

        async def kept() -> bool:
            return await stream_count(nc, "OUT") == 1

        await eventually(kept, what="the event in OUT")
    # Read it directly: nats-py's own fetch() would take the Status header for a pull status.
    stored = await js.get_msg("OUT", seq=1)
    assert from_message(stored.headers, stored.data or b"").get_id() == "status"


async def test_a_stream_with_other_retention_stops_the_start(
    nc: Client, nats_url: str, routes: Path
) -> None:
    await nc.jetstream().add_stream(
        StreamConfig(name="OUT", subjects=["out.>"], retention=RetentionPolicy.WORK_QUEUE)
    )
    with pytest.raises(
        ProvisionError, match=r"stream OUT exists with retention workqueue -> limits"
    ):
        async with running_router(nats_url, routes):
            await asyncio.sleep(0)


async def test_a_bug_in_a_check_dead_letters_instead_of_losing_the_event(
    nc: Client, nats_url: str, routes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cerouter import pipeline

    def broken(*_: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "decode", broken)  # stands in for any bug in the pipeline
    async with running_router(nats_url, routes):
        await publish(nc, "in.x", event("com.example.item"))
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert letter.headers is not None
    assert letter.headers["cerouter-deadletter"] == "internal"
    assert "RuntimeError: boom" in letter.headers["cerouter-reason"]
