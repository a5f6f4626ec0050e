"""Workers against a real nats-server: sharing, retries, dead-letters, concurrency, draining."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import nats
import orjson
import pytest
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client as Nats
from nats.aio.msg import Msg

from cerouter.binding import Mode
from cerouter.client import Client
from cerouter.errors import CerouterError
from cerouter.nats.connection import full_flush
from cerouter.timestamps import is_rfc3339
from cerouter.worker import WorkerApp, current_delivery
from tests.test_worker_support import (
    consumer_settled,
    eventually,
    order_event,
    publisher,
    running,
    unique,
    workqueue,
)

pytestmark = pytest.mark.nats


# --------------------------------------------------------------------------- sharing a queue


async def test_three_core_workers_share_300_events_none_twice(nc: Nats, nats_url: str) -> None:
    queue = unique("core")
    app = WorkerApp("core")
    handled: list[str] = []

    @app.handler("com.example.order.paid", queue=queue)
    async def handle(event: CloudEvent) -> None:
        handled.append(event.get_id())

    async with running(app, nats_url, count=3) as workers, publisher(nats_url) as client:
        for n in range(300):
            await client.publish(
                order_event(n), f"work.{queue}", mode=(Mode.BINARY, Mode.STRUCTURED)[n % 2]
            )
        await client.flush()
        await eventually(lambda: len(handled) >= 300, what="300 events handled")
        counts = [w.stats.handled for w in workers]
    assert Counter(handled).most_common(1)[0][1] == 1, "an event was processed twice"
    assert set(handled) == {f"o-{n}" for n in range(300)}
    assert sum(counts) == 300
    assert all(count > 0 for count in counts), f"one worker got nothing: {counts}"


async def test_three_durable_workers_share_300_events_none_lost(nc: Nats, nats_url: str) -> None:
    queue, stream = unique("dur"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("durable")
    handled: list[str] = []

    @app.handler("com.example.order.*", queue=queue, durable=True)
    async def handle(event: CloudEvent) -> None:
        handled.append(event.get_id())

    async with running(app, nats_url, count=3) as workers:
        events = [(order_event(n), f"work.{queue}") for n in range(300)]
        await Client(nc).publish_js_many(events)
        expected = {f"o-{n}" for n in range(300)}
        await eventually(lambda: set(handled) == expected, what="every event handled")
        counts = [w.stats.handled for w in workers]
        stats = await nc.jetstream().consumer_info(stream, queue)
    assert stats.num_pending == 0
    assert sum(counts) == len(handled) >= 300
    assert all(count > 0 for count in counts), f"one worker got nothing: {counts}"
    info = await nc.jetstream().stream_info(stream)
    assert info.state.messages == 0, "a workqueue stream is empty once every event is acked"


# --------------------------------------------------------------------------- retries


async def test_failing_twice_then_succeeding_sees_three_deliveries_with_growing_delay(
    nc: Nats, nats_url: str
) -> None:
    queue, stream = unique("retry"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("retry")
    deliveries: list[tuple[int, float]] = []
    backoff = (0.2, 0.5)

    @app.handler("com.example.order.paid", queue=queue, durable=True, backoff=backoff)
    async def flaky(event: CloudEvent) -> None:
        attempt = current_delivery().attempt
        deliveries.append((attempt, time.monotonic()))
        if attempt < 3:
            raise ConnectionError(f"downstream unavailable (attempt {attempt})")

    async with running(app, nats_url) as (worker,):
        await Client(nc).publish_js(order_event(1), f"work.{queue}")
        await eventually(lambda: worker.stats.handled == 1, what="the third attempt to succeed")
        await eventually(lambda: worker.stats.failed == 2, what="two failures counted")
    assert [attempt for attempt, _ in deliveries] == [1, 2, 3]
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(deliveries)]
    for gap, delay in zip(gaps, backoff, strict=True):
        assert gap >= delay, f"redelivered after {gap:.3f}s, backoff says {delay}s"
    assert gaps[1] > gaps[0]
    assert worker.stats.retried == 2
    assert worker.stats.dead_lettered == 0
    await eventually(lambda: consumer_settled(nc, stream, queue), what="the event acked")


# --------------------------------------------------------------------------- dead letters


async def test_poison_event_ends_in_the_deadletter_stream_with_its_reason(
    nc: Nats, nats_url: str
) -> None:
    queue, stream = unique("poison"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    dl_subject = f"deadletter.{queue}"
    app = WorkerApp("poison", deadletter_subject=dl_subject)
    attempts: list[int] = []

    @app.handler(
        "com.example.order.paid", queue=queue, durable=True, max_deliver=3, backoff=(0.05,)
    )
    async def reject(event: CloudEvent) -> None:
        attempts.append(current_delivery().attempt)
        data = event.get_data()
        assert isinstance(data, dict)
        raise ValueError(f"order {data['n']} has no\ncustomer")

    event = order_event(7, tenant="acme")
    async with running(app, nats_url) as (worker,):
        # Binary mode with an extra header: the dead-letter copy must keep both untouched.
        await Client(nc, mode=Mode.BINARY).publish_js(event, f"work.{queue}")
        await eventually(lambda: worker.stats.dead_lettered == 1, what="the event dead-lettered")
    assert attempts == [1, 2, 3]
    stored = await nc.jetstream().get_last_msg("DEADLETTER", dl_subject)
    headers = stored.headers or {}
    assert headers["cerouter-deadletter"] == "handler"
    assert headers["cerouter-stage"] == "handler"
    assert headers["cerouter-reason"] == "ValueError: order 7 has no customer"
    assert headers["cerouter-subject"] == f"work.{queue}"
    assert headers["cerouter-attempt"] == "3"
    assert headers["cerouter-queue"] == queue
    assert is_rfc3339(headers["cerouter-time"])
    assert headers["ce-id"] == "o-7"
    assert headers["ce-tenant"] == "acme"
    assert headers["Nats-Msg-Id"].startswith("dl-"), "the letter's own id, not the original's"
    assert "cerouter-msg-id" in headers
    assert orjson.loads(stored.data or b"") == {"n": 7}
    await eventually(lambda: consumer_settled(nc, stream, queue), what="the poison event TERMed")


async def test_core_handler_failure_is_deadlettered_at_once(nc: Nats, nats_url: str) -> None:
    queue = unique("corepoison")
    dl_subject = f"deadletter.{queue}"
    app = WorkerApp("core-poison", deadletter_subject=dl_subject)

    @app.handler("*", queue=queue)
    async def reject(event: CloudEvent) -> None:
        raise KeyError("sku")

    async with running(app, nats_url) as (worker,), publisher(nats_url) as client:
        await client.publish(order_event(3), f"work.{queue}")
        await eventually(lambda: worker.stats.dead_lettered == 1, what="the event dead-lettered")
    stored = await nc.jetstream().get_last_msg("DEADLETTER", dl_subject)
    assert stored.headers is not None
    assert stored.headers["cerouter-reason"] == "KeyError: 'sku'"
    assert stored.headers["cerouter-attempt"] == "1"
    assert stored.headers["Content-Type"] == "application/cloudevents+json"
    assert orjson.loads(stored.data or b"")["id"] == "o-3"


async def test_message_that_is_not_a_cloudevent_is_deadlettered_without_retry(
    nc: Nats, nats_url: str
) -> None:
    queue, stream = unique("garbage"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("garbage", deadletter_subject=f"deadletter.{queue}")
    calls: list[str] = []

    @app.handler("*", queue=queue, durable=True)
    async def never(event: CloudEvent) -> None:
        calls.append(event.get_id())

    async with running(app, nats_url) as (worker,):
        await nc.jetstream().publish(f"work.{queue}", b"\x00not json")
        await eventually(lambda: worker.stats.dead_lettered == 1, what="the message dead-lettered")
    assert calls == []
    assert worker.stats.undecodable == 1
    stored = await nc.jetstream().get_last_msg("DEADLETTER", f"deadletter.{queue}")
    assert stored.data == b"\x00not json"
    assert stored.headers is not None
    assert stored.headers["cerouter-deadletter"] == "binding"
    assert stored.headers["cerouter-stage"] == "binding"
    await eventually(lambda: consumer_settled(nc, stream, queue), what="the message TERMed")


async def test_missing_deadletter_stream_is_created(nc: Nats, nats_url: str) -> None:
    name = unique("dlq")
    app = WorkerApp("dlq", deadletter_subject=f"{name}.handler", deadletter_stream=name.upper())

    @app.handler("*", queue=name)
    async def reject(event: CloudEvent) -> None:
        raise RuntimeError("no")

    async with running(app, nats_url) as (worker,):
        info = await nc.jetstream().stream_info(name.upper())
        assert info.config.subjects == [f"{name}.>"]
        assert info.config.retention == "limits"
        async with publisher(nats_url) as client:
            await client.publish(order_event(1), f"work.{name}")
        await eventually(lambda: worker.stats.dead_lettered == 1, what="the event dead-lettered")
    info = await nc.jetstream().stream_info(name.upper())
    assert info.state.messages == 1


# --------------------------------------------------------------------------- other outcomes


async def test_event_no_handler_takes_is_acked_and_counted_as_ignored(
    nc: Nats, nats_url: str
) -> None:
    queue, stream = unique("ign"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("ignore")

    @app.handler("com.example.order.paid", queue=queue, durable=True)
    async def paid(event: CloudEvent) -> None:
        return None

    async with running(app, nats_url) as (worker,):
        await Client(nc).publish_js(order_event(1, "com.example.order.shipped"), f"work.{queue}")
        await eventually(lambda: worker.stats.ignored == 1, what="the event ignored")
    assert worker.stats.handled == 0
    await eventually(lambda: consumer_settled(nc, stream, queue), what="the event acked")


async def test_returned_event_is_emitted_when_not_a_request(nc: Nats, nats_url: str) -> None:
    queue = unique("emit")
    app = WorkerApp("emit", emit=f"events.{queue}")
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await got.put(msg.data)

    await nc.subscribe(f"events.{queue}", cb=on_msg)
    await full_flush(nc)

    @app.handler("com.example.order.paid", queue=queue)
    async def invoice(event: CloudEvent) -> CloudEvent:
        return order_event(event.get_id(), "com.example.invoice.created")

    async with running(app, nats_url) as (worker,), publisher(nats_url) as client:
        await client.publish(order_event(5), f"work.{queue}")
        emitted = orjson.loads(await asyncio.wait_for(got.get(), 10))
    assert emitted["type"] == "com.example.invoice.created"
    assert emitted["id"] == "o-o-5"
    assert worker.stats.emitted == 1


async def test_durable_queue_without_a_stream_fails_to_start(nats_url: str) -> None:
    queue = unique("nostream")
    app = WorkerApp("nostream", stream_wait=0.2)

    @app.handler("*", queue=queue, durable=True)
    async def never(event: CloudEvent) -> None:
        return None

    nc = await nats.connect(nats_url)
    try:
        with pytest.raises(CerouterError, match=f"no JetStream stream captures 'work.{queue}'"):
            await app.run(nc).start()
    finally:
        await nc.close()


# --------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("durable", [False, True], ids=["core", "durable"])
async def test_concurrency_limit_per_handler(nc: Nats, nats_url: str, durable: bool) -> None:
    queue, stream = unique("conc"), unique("WORK")
    if durable:
        await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("conc")
    gate = asyncio.Event()
    running_now = 0
    peak = 0

    @app.handler("*", queue=queue, durable=durable, concurrency=3)
    async def slow(event: CloudEvent) -> None:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        await gate.wait()
        running_now -= 1

    async with running(app, nats_url) as (worker,), publisher(nats_url) as client:
        if durable:
            await client.publish_js_many([(order_event(n), f"work.{queue}") for n in range(10)])
        else:
            for n in range(10):
                await client.publish(order_event(n), f"work.{queue}")
            await client.flush()
        await eventually(lambda: running_now == 3, what="three handlers running")
        if durable:
            # The pull asked for no more than the limit: the rest wait on the server.
            info = await nc.jetstream().consumer_info(stream, queue)
            assert info.num_ack_pending == 3
        else:
            # The fourth message waits for a slot inside the subscription callback.
            await eventually(lambda: worker.stats.received == 4, what="the fourth message")
        assert running_now == 3
        gate.set()
        await eventually(lambda: worker.stats.handled == 10, what="all ten handled")
    assert peak == 3


# --------------------------------------------------------------------------- long handlers


async def test_long_handler_is_kept_alive_with_in_progress_acks(nc: Nats, nats_url: str) -> None:
    queue, stream = unique("long"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("long")
    attempts: list[int] = []

    @app.handler("*", queue=queue, durable=True, ack_wait=0.6)
    async def long(event: CloudEvent) -> None:
        attempts.append(current_delivery().attempt)
        await asyncio.sleep(1.5)  # the work itself: 2.5 times ack_wait

    async with running(app, nats_url) as (worker,):
        await Client(nc).publish_js(order_event(1), f"work.{queue}")
        await eventually(lambda: worker.stats.handled == 1, what="the long handler to finish")
    assert attempts == [1], "JetStream redelivered an event that was still being worked on"
    info = await nc.jetstream().consumer_info(stream, queue)
    assert info.num_redelivered == 0


# --------------------------------------------------------------------------- shutdown


async def test_durable_shutdown_mid_burst_loses_nothing(nc: Nats, nats_url: str) -> None:
    queue, stream = unique("burst"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("burst", concurrency=5)
    seen: list[str] = []
    attempts: list[int] = []

    @app.handler("*", queue=queue, durable=True, ack_wait=3)
    async def handle(event: CloudEvent) -> None:
        attempts.append(current_delivery().attempt)
        await asyncio.sleep(0.002)  # a little work, so the burst is still going at shutdown
        seen.append(event.get_id())

    expected = {f"o-{n}" for n in range(400)}
    await Client(nc).publish_js_many([(order_event(n), f"work.{queue}") for n in range(400)])
    nc_a = await nats.connect(nats_url)
    worker_a = app.run(nc_a)
    await worker_a.start()
    await eventually(lambda: len(seen) >= 60, what="worker A to get going")
    await worker_a.drain()
    await nc_a.close()
    handled_by_a = len(seen)
    assert handled_by_a < 400, "the burst finished before the shutdown; make it longer"
    async with running(app, nats_url) as (worker_b,):
        await eventually(lambda: set(seen) == expected, timeout=20, what="every event handled")
    assert worker_b.stats.handled == len(seen) - handled_by_a
    # Handed back once at most: NAKed events do not bounce through the draining worker.
    assert max(attempts) <= 2
    await eventually(lambda: consumer_settled(nc, stream, queue), what="every event acked")


async def test_drain_waits_for_running_core_handlers(nc: Nats, nats_url: str) -> None:
    queue = unique("drain")
    app = WorkerApp("drain")
    gate = asyncio.Event()
    finished: list[str] = []

    @app.handler("*", queue=queue)
    async def slow(event: CloudEvent) -> None:
        await gate.wait()
        finished.append(event.get_id())

    nc_w = await nats.connect(nats_url)
    worker = app.run(nc_w)
    await worker.start()
    async with publisher(nats_url) as client:
        for n in range(5):
            await client.publish(order_event(n), f"work.{queue}")
    await eventually(lambda: worker.stats.received == 5, what="five events received")

    async def open_gate_once_draining() -> None:
        await eventually(lambda: worker._stopping, what="drain to begin")
        gate.set()

    opener = asyncio.create_task(open_gate_once_draining())
    await worker.drain()
    await opener
    await nc_w.close()
    assert sorted(finished) == [f"o-{n}" for n in range(5)]


async def test_drain_timeout_hands_unfinished_durable_events_back_at_once(
    nc: Nats, nats_url: str
) -> None:
    queue, stream = unique("stuck"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("stuck")
    never = asyncio.Event()
    attempts: list[int] = []

    @app.handler("*", queue=queue, durable=True, ack_wait=30)
    async def stuck(event: CloudEvent) -> None:
        attempts.append(current_delivery().attempt)
        if len(attempts) == 1:
            await never.wait()

    await Client(nc).publish_js(order_event(1), f"work.{queue}")
    nc_a = await nats.connect(nats_url)
    worker_a = app.run(nc_a)
    await worker_a.start()
    await eventually(lambda: attempts == [1], what="the first attempt to start")
    await worker_a.drain(grace=0.2)
    await nc_a.close()
    assert worker_a.stats.requeued == 1
    async with running(app, nats_url) as (worker_b,):
        # NAKed, not abandoned: back well before the 30 s ack_wait.
        await eventually(lambda: worker_b.stats.handled == 1, timeout=5, what="redelivery")
    assert attempts == [1, 2]


async def test_drain_does_not_hang_on_stuck_core_handlers(nats_url: str) -> None:
    queue = unique("hung")
    app = WorkerApp("hung")
    never = asyncio.Event()

    @app.handler("*", queue=queue, concurrency=1)
    async def stuck(event: CloudEvent) -> None:
        await never.wait()

    nc_w = await nats.connect(nats_url)
    worker = app.run(nc_w)
    await worker.start()
    async with publisher(nats_url) as client:
        for n in range(3):
            await client.publish(order_event(n), f"work.{queue}")
    await eventually(lambda: worker.stats.received == 2, what="one running, one waiting")
    await asyncio.wait_for(worker.drain(grace=0.3), 5)
    await nc_w.close()
    assert worker.stats.handled == 0
    assert worker.stats.received == 3
    assert worker.stats.dropped == 2, "the two waiting messages are given up, not handled"
