"""Durable-queue worker throughput against a bare nats-py JetStream pull consumer, same run.

    .venv/bin/python bench/bench_worker.py [--events 20000]

One nats-server (the embedded one) and this process, which runs the producer and two consumers
on one event loop, each consumer on its own connection sharing one durable pull consumer of a
workqueue stream, as ``queue: billing, durable: true`` workers do. Handlers do nothing. Rows:

  (a) bare nats-py: ``fetch(batch=100)`` loop per consumer, ``ack()`` each (baseline)
  (b) cerouter ``WorkerApp`` x2, concurrency 100 (pulls up to 100 in flight, like the baseline)
  (c) cerouter ``WorkerApp`` x2, default concurrency (10)

Columns: end to end (consumers running, then N events published pipelined; first publish to
last handled), drain (N events stored first, then consumed; the consumers' rate alone), the
client CPU per event while draining (this process: both consumers), and each drain rate as a
fraction of the baseline's. The router in front of the queue is the lead's to add.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client as NatsClient
from nats.js import api

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cerouter.binding import to_structured
from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig
from cerouter.worker import WorkerApp

DATA = {"order_id": "o-12345", "customer": "c-42", "items": 3, "total": 99.5, "currency": "EUR"}
WINDOW = 2000  # JetStream publishes in flight at once (acks collected per window)

Consumers = Callable[[str, str, str, int, asyncio.Event], Awaitable[Callable[[], Awaitable[None]]]]


def payloads(n: int) -> list[tuple[dict[str, str], bytes]]:
    """N structured-mode events, encoded before timing starts."""
    out = []
    for i in range(n):
        event = CloudEvent(
            {"specversion": "1.0", "id": f"e-{i}", "source": "/bench", "type": "com.bench.order",
             "datacontenttype": "application/json"},
            DATA,
        )  # fmt: skip
        message = to_structured(event)
        out.append((message.headers, message.payload))
    return out


async def publish_all(url: str, subject: str, events: list[tuple[dict[str, str], bytes]]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        for start in range(0, len(events), WINDOW):
            futures = [
                await js.publish_async(subject, payload, headers=dict(headers))
                for headers, payload in events[start : start + WINDOW]
            ]
            await asyncio.gather(*futures)
    finally:
        await nc.close()


async def bare_consumers(
    url: str, stream: str, queue: str, n: int, done: asyncio.Event
) -> Callable[[], Awaitable[None]]:
    """Two plain nats-py pull loops on one durable consumer; returns a stop function."""
    connections = [await nats.connect(url) for _ in range(2)]
    await connections[0].jetstream().add_consumer(
        stream,
        api.ConsumerConfig(durable_name=queue, name=queue, filter_subject=f"work.{queue}",
                           ack_policy=api.AckPolicy.EXPLICIT, max_ack_pending=10_000),
    )  # fmt: skip
    count = 0

    async def loop(nc: NatsClient) -> None:
        nonlocal count
        sub = await nc.jetstream().pull_subscribe_bind(queue, stream=stream)
        while True:
            try:
                msgs = await sub.fetch(batch=100, timeout=1)
            except TimeoutError:
                continue
            for msg in msgs:
                await msg.ack()
            count += len(msgs)
            if count >= n:
                done.set()

    tasks = [asyncio.create_task(loop(nc)) for nc in connections]

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for nc in connections:
            await nc.close()

    return stop


def cerouter_consumers(concurrency: int | None) -> Consumers:
    async def start(
        url: str, stream: str, queue: str, n: int, done: asyncio.Event
    ) -> Callable[[], Awaitable[None]]:
        app = WorkerApp("bench")
        count = 0

        @app.handler("com.bench.order", queue=queue, durable=True)
        async def noop(event: CloudEvent) -> None:
            nonlocal count
            count += 1
            if count >= n:
                done.set()

        connections = [await nats.connect(url) for _ in range(2)]
        workers = [app.run(nc, concurrency=concurrency) for nc in connections]
        for worker in workers:
            await worker.start()

        async def stop() -> None:
            for worker in workers:
                await worker.drain(grace=5)
            for nc in connections:
                await nc.close()

        return stop

    return start


async def run_scenario(
    url: str, start: Consumers, events: list[tuple[dict[str, str], bytes]], preload: bool
) -> tuple[float, float]:
    """One measurement on a fresh workqueue stream; returns (events/s, client CPU us/event)."""
    queue = f"b{uuid.uuid4().hex[:8]}"
    stream, subject = queue.upper(), f"work.{queue}"
    admin = await nats.connect(url)
    await admin.jetstream().add_stream(
        name=stream, subjects=[subject], retention=api.RetentionPolicy.WORK_QUEUE
    )
    done = asyncio.Event()
    n = len(events)
    try:
        if preload:
            await publish_all(url, subject, events)
        cpu0, t0 = time.process_time(), time.perf_counter()
        stop = await start(url, stream, queue, n, done)
        if preload:
            # Start-up (consumer creation) is inside the timing for both kinds alike.
            await asyncio.wait_for(done.wait(), 120)
        else:
            cpu0, t0 = time.process_time(), time.perf_counter()
            await publish_all(url, subject, events)
            await asyncio.wait_for(done.wait(), 120)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        await stop()
        await admin.jetstream().delete_stream(stream)
    finally:
        await admin.close()
    return n / elapsed, cpu / n * 1e6


async def main_async(n: int, repeat: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings only
    events = payloads(n)
    scenarios: list[tuple[str, Consumers]] = [
        ("(a) bare nats-py pull, fetch 100 + ack", bare_consumers),
        ("(b) cerouter worker, concurrency 100", cerouter_consumers(100)),
        ("(c) cerouter worker, concurrency 10 (default)", cerouter_consumers(None)),
    ]
    results: dict[str, tuple[float, float, float]] = {}
    async with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as server:
        await run_scenario(server.url, bare_consumers, events[: n // 10], True)  # warm-up
        for label, start in scenarios:
            e2e = max([(await run_scenario(server.url, start, events, False))[0]
                       for _ in range(repeat)])  # fmt: skip
            drains = [await run_scenario(server.url, start, events, True) for _ in range(repeat)]
            rate, cpu = max(drains)
            results[label] = (e2e, rate, cpu)
    base = results[scenarios[0][0]][1]
    print(f"\n{n} events of ~{len(events[0][1])} bytes, 2 consumers, best of {repeat}; "
          "workqueue stream, file storage, one embedded nats-server")  # fmt: skip
    print(f"{'scenario':46} {'e2e ev/s':>9} {'drain ev/s':>10} {'CPU us/ev':>9} {'vs (a)':>6}")
    for label, (e2e, rate, cpu) in results.items():
        print(f"{label:46} {e2e:9,.0f} {rate:10,.0f} {cpu:9.1f} {rate / base:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main_async(args.events, args.repeat))


if __name__ == "__main__":
    main()
