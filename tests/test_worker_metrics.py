"""Worker metrics: exact counters and handler durations after handled, failed and retried events."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client as Nats

from cerouter import __version__
from cerouter.client import Client
from cerouter.worker import Worker, WorkerApp, current_delivery
from tests.metricskit import label_values, of_registry, scrape, value
from tests.test_worker_support import (
    eventually,
    order_event,
    publisher,
    running,
    unique,
    workqueue,
)

pytestmark = pytest.mark.nats


async def test_serve_with_metrics_counts_handled_and_failed_events(nats_url: str) -> None:
    queue = unique("metered")
    app = WorkerApp("metered", deadletter_subject=f"deadletter.{queue}")

    @app.handler("com.example.order.paid", queue=queue)
    async def pay(event: CloudEvent) -> None:
        data = event.get_data()
        assert isinstance(data, dict)
        if data["n"] < 0:
            raise ValueError("a negative amount")

    stop = asyncio.Event()
    started: asyncio.Queue[Worker] = asyncio.Queue()
    serving = asyncio.create_task(
        app.serve([nats_url], stop=stop, on_ready=started.put_nowait, metrics=("127.0.0.1", 0))
    )
    try:
        worker = await asyncio.wait_for(started.get(), 15)
        url = worker.metrics.url
        assert url is not None
        async with publisher(nats_url) as client:
            for n in (1, 2, -1):
                await client.publish(order_event(n), f"work.{queue}")
            await client.flush()

        async def counted() -> bool:
            samples, _ = await scrape(url)
            return value(samples, "cerouter_worker_deadlettered_total", queue=queue) == 1

        await eventually(counted, timeout=15, what="the failed event dead-lettered")
        samples, text = await scrape(url)
        async with httpx.AsyncClient(base_url=url.removesuffix("/metrics"), timeout=10) as http:
            assert (await http.get("/readyz")).status_code == 200
            assert (await http.get("/healthz")).status_code == 200
    finally:
        stop.set()
        await asyncio.wait_for(serving, 15)
    handler = {"queue": queue, "handler": pay.__qualname__}
    assert value(samples, "cerouter_worker_received_total", queue=queue) == 3
    assert value(samples, "cerouter_worker_handled_total", queue=queue) == 2
    assert value(samples, "cerouter_worker_failed_total", queue=queue) == 1
    assert value(samples, "cerouter_worker_retried_total", queue=queue) == 0
    assert value(samples, "cerouter_worker_handler_duration_seconds_count", **handler) == 3
    assert value(samples, "cerouter_worker_handler_duration_seconds_sum", **handler) > 0
    assert value(samples, "cerouter_build_info", version=__version__) == 1
    assert "o-1" not in text  # event ids never become labels
    assert label_values(samples) >= {queue, pay.__qualname__}


async def test_durable_retries_are_counted_per_queue(nc: Nats, nats_url: str) -> None:
    queue, stream = unique("metered"), unique("WORK")
    await workqueue(nc, stream, f"work.{queue}")
    app = WorkerApp("metered")

    @app.handler("com.example.order.paid", queue=queue, durable=True, backoff=(0.05,))
    async def flaky(event: CloudEvent) -> None:
        if current_delivery().attempt < 3:
            raise ConnectionError("downstream unavailable")

    async with running(app, nats_url) as (worker,):
        await Client(nc).publish_js(order_event(1), f"work.{queue}")
        await eventually(lambda: worker.stats.handled == 1, what="the third attempt to succeed")
        samples = of_registry(worker.metrics.registry)
    assert value(samples, "cerouter_worker_handled_total", queue=queue) == 1
    assert value(samples, "cerouter_worker_failed_total", queue=queue) == 2
    assert value(samples, "cerouter_worker_retried_total", queue=queue) == 2
    assert value(samples, "cerouter_worker_deadlettered_total", queue=queue) == 0
    labels = {"queue": queue, "handler": flaky.__qualname__}
    assert value(samples, "cerouter_worker_handler_duration_seconds_count", **labels) == 3
