"""JetStream ingress: at-least-once delivery, retries with growing delay, no loss on SIGTERM."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.binding import from_message
from cerouter.nats.connection import full_flush
from cerouter.nats.embedded import EmbeddedServer
from tests.helpers import CliProcess
from tests.routerkit import (
    event,
    eventually,
    running_router,
    stream_count,
    stream_messages,
    write_routes,
)

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress:
  jetstream:
    - {stream: EVENTS, durable: routers, ack_wait: 5s, max_deliver: 3}
streams:
  - {name: EVENTS, subjects: [events.>]}
  - {name: OUT, subjects: [out.>], duplicate_window: 5m}
routes:
  - name: store
    match: {type: com.example.thing}
    to: {stream: OUT, subject: out.things}
  - name: ask
    match: {type: com.example.question}
    to: {request: answers.slow, timeout: 200ms}
"""


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    return write_routes(tmp_path, ROUTES)


async def js_publish(nc: Client, n: int, start: int = 0, type_: str = "com.example.thing") -> None:
    js = nc.jetstream()
    acks = [
        await js.publish_async(
            "events.things",
            orjson.dumps(event(type_, id_=str(i), data={"n": i})),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        for i in range(start, start + n)
    ]
    await asyncio.gather(*acks)


async def test_jetstream_ingress_to_stream(nc: Client, nats_url: str, routes: Path) -> None:
    async with running_router(nats_url, routes) as router:
        await router.nc.flush()
        await js_publish(nc, 200)
        msgs = await stream_messages(nc, "OUT", count=200)
        consumer = await nc.jetstream().consumer_info("EVENTS", "routers")
    assert sorted(int(from_message(m.headers, m.data).get_id()) for m in msgs) == list(range(200))
    assert consumer.num_ack_pending == 0


async def test_failing_destination_is_retried_with_growing_delay_then_dead_lettered(
    nc: Client, nats_url: str, routes: Path
) -> None:
    seen: list[float] = []

    async def silent(msg: Msg) -> None:  # takes the request, never answers
        seen.append(time.monotonic())

    await nc.subscribe("answers.slow", cb=silent)
    await full_flush(nc)
    async with running_router(nats_url, routes, retry_initial=0.3, retry_max=5):
        await js_publish(nc, 1, type_="com.example.question")
        [letter] = await stream_messages(nc, "DEADLETTER", count=1)
    assert len(seen) == 3  # max_deliver
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    # each gap is the 0.2 s request timeout plus the NAK delay: 0.3 s, then 0.6 s
    assert gaps[0] >= 0.2 + 0.3 - 0.05
    assert gaps[1] >= 0.2 + 0.6 - 0.05
    assert gaps[1] > gaps[0]
    assert letter.headers is not None
    assert letter.headers["cerouter-deadletter"] == "delivery"
    assert letter.headers["cerouter-attempt"] == "3"
    assert letter.headers["cerouter-route"] == "ask"
    assert "no reply within 0.2s" in letter.headers["cerouter-reason"]
    consumer = await nc.jetstream().consumer_info("EVENTS", "routers")
    assert consumer.num_ack_pending == 0
    assert consumer.num_redelivered == 0  # TERMed: not coming back


async def test_sigterm_during_a_burst_loses_nothing(
    nc: Client, fresh_server: EmbeddedServer, routes: Path
) -> None:
    total = 3000
    router = CliProcess("run", "--routes", str(routes), "--nats-url", fresh_server.url,
                        "--log-format", "json", cwd=routes.parent)  # fmt: skip
    try:
        await asyncio.to_thread(router.wait_for_stderr, "cerouter ready")
        await js_publish(nc, total)
        js = nc.jetstream()

        async def started() -> bool:  # let it get going, then stop it mid-burst
            return await stream_count(nc, "OUT") >= 200

        await eventually(started, what="the first 200 events")
        router.proc.send_signal(signal.SIGTERM)
        code, _, err = await asyncio.to_thread(router.finish)
    finally:
        router.kill()
    assert code == 0, err
    assert '"router stopped"' in err
    # A second router picks up whatever the first had not taken yet.
    async with running_router(fresh_server.url, routes):

        async def all_there() -> bool:
            return await stream_count(nc, "OUT") >= total

        await eventually(all_there, what=f"{total} events in OUT")
        consumer = await js.consumer_info("EVENTS", "routers")
        assert consumer.num_pending == 0
    out = await stream_messages(nc, "OUT", count=total)
    ids = [from_message(m.headers, m.data).get_id() for m in out]
    assert sorted(map(int, ids)) == list(range(total))  # none lost, none duplicated
