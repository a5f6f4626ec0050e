"""Dead-lettering and unrouted policies: every reason, with its headers, original bytes kept."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client

from cerouter.timestamps import is_rfc3339
from tests.routerkit import Inbox, event, publish, running_router, stream_messages, write_routes

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress:
  core: {subjects: [in.>], queue: routers}
schemas:
  unknown: allow
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: out.things}
  - name: strict
    match: {type: com.example.strict}
    schema: https://example.com/schemas/thing.json
    to: {subject: out.strict}
  - name: loop
    match: {type: com.example.loop}
    to: {subject: in.again}
unrouted: deadletter
"""


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    return write_routes(tmp_path, ROUTES)


CASES = [
    # (what is published, reason code, stage, text in cerouter-reason)
    (b"\x00\x01 not json", "binding", "binding", "not a JSON event"),
    (orjson.dumps({**event(), "specversion": "0.9"}), "envelope", "envelope", "specversion"),
    (orjson.dumps({**event(), "Bad": "x"}), "envelope", "envelope", "Bad"),
    (orjson.dumps(event(data={"n": -3})), "schema", "data", "is less than the minimum of 0"),
    (
        orjson.dumps(event("com.example.strict", data={"x": 1})),
        "schema",
        "data",
        '"n" is a required',
    ),
    (orjson.dumps(event("org.nobody.cares")), "unrouted", "routing", "org.nobody.cares"),
]


@pytest.mark.parametrize(("payload", "reason", "stage", "text"), CASES)
async def test_each_dead_letter_reason(
    nc: Client, nats_url: str, routes: Path, payload: bytes, reason: str, stage: str, text: str
) -> None:
    headers = {"Content-Type": "application/cloudevents+json", "x-trace": "t-1"}
    async with running_router(nats_url, routes) as router:
        await publish(nc, "in.orders", payload, headers=headers)
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert letter.subject == f"deadletter.{reason}"
    assert letter.data == payload  # the original bytes, untouched
    assert letter.headers is not None
    assert letter.headers["x-trace"] == "t-1"  # the original headers too
    assert letter.headers["cerouter-deadletter"] == reason
    assert letter.headers["cerouter-stage"] == stage
    assert text in letter.headers["cerouter-reason"]
    assert letter.headers["cerouter-subject"] == "in.orders"
    assert letter.headers["cerouter-attempt"] == "1"
    assert is_rfc3339(letter.headers["cerouter-time"])
    assert router.stats.reasons[reason] == 1


async def test_route_schema_failure_names_the_route(
    nc: Client, nats_url: str, routes: Path
) -> None:
    async with running_router(nats_url, routes):
        await publish(nc, "in.x", event("com.example.strict", data={"n": "many"}))
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert letter.headers is not None
    assert letter.headers["cerouter-route"] == "strict"


async def test_routing_loop_is_dead_lettered(nc: Client, nats_url: str, routes: Path) -> None:
    async with running_router(nats_url, routes, max_hops=3):
        await publish(nc, "in.start", event("com.example.loop"))
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert letter.subject == "deadletter.loop"
    assert letter.headers is not None
    assert letter.headers["cerouter-hops"] == "3"
    assert "forwarded 3 times" in letter.headers["cerouter-reason"]


async def test_non_ascii_reasons_stay_valid_headers(
    nc: Client, nats_url: str, routes: Path
) -> None:
    async with running_router(nats_url, routes):
        await publish(nc, "in.x", event("com.example.ünrouted"))
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert letter.headers is not None
    assert all(32 <= ord(c) < 127 for c in letter.headers["cerouter-reason"])
    assert "%C3%BC" in letter.headers["cerouter-reason"]


@pytest.mark.parametrize("policy", ["drop", "{subject: 'parked.{type}'}"])
async def test_unrouted_policies(nc: Client, nats_url: str, tmp_path: Path, policy: str) -> None:
    routes = write_routes(tmp_path, ROUTES.replace("unrouted: deadletter", f"unrouted: {policy}"))
    parked = await Inbox.on(nc, "parked.>")
    things = await Inbox.on(nc, "out.things")
    async with running_router(nats_url, routes) as router:
        await publish(nc, "in.x", event("org.nobody.cares"))
        # a routed event published after it has been handled after it, too
        await publish(nc, "in.x", event(data={"n": 1}))
        await things.wait(1)
        if policy == "drop":
            assert router.stats.outcomes["dropped"] == 1
            assert parked.messages == []
        else:
            [msg] = await parked.wait(1)
            assert msg.subject == "parked.org_nobody_cares"
    info = await nc.jetstream().stream_info("DEADLETTER")
    assert info.state.messages == 0
