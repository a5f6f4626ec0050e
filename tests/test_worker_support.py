"""Helpers shared by the worker and client tests (this module holds no tests).

Waiting is always on a condition with a deadline (:func:`eventually`), never a bare sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import nats
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client
from nats.js import api

from cerouter.client import Client as CeClient
from cerouter.worker import Worker, WorkerApp


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float = 10.0,  # noqa: ASYNC109 - a polling deadline, like tests.helpers.wait_until
    what: str = "condition",
) -> None:
    """Poll ``condition`` (plain or async) until true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def unique(prefix: str) -> str:
    """A name no other test uses (the server is shared by a module's tests)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def order_event(
    n: int | str, type_: str = "com.example.order.paid", data: Any = None, **attrs: Any
) -> CloudEvent:
    """A small CloudEvent whose id is ``o-<n>``."""
    attributes = {"specversion": "1.0", "id": f"o-{n}", "source": "/tests", "type": type_}
    attributes.update(attrs)
    return CloudEvent(attributes, {"n": n} if data is None else data)


async def workqueue(nc: Client, name: str, subject: str) -> None:
    """Declare a workqueue stream capturing ``subject``, as routes.yaml does for a durable queue."""
    await nc.jetstream().add_stream(
        name=name, subjects=[subject], retention=api.RetentionPolicy.WORK_QUEUE
    )


async def consumer_settled(nc: Client, stream: str, consumer: str) -> bool:
    """True when the consumer has nothing pending and nothing awaiting an ack."""
    info = await nc.jetstream().consumer_info(stream, consumer)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


@asynccontextmanager
async def publisher(url: str) -> AsyncIterator[CeClient]:
    """A client on a connection opened *now*, after the workers subscribed.

    A subscription confirmed with a plain ``flush()`` may not be registered yet (nats-py's PING
    overtakes the queued SUB; see :func:`cerouter.nats.connection.full_flush`, which the worker
    now uses); a connection opened afterwards adds round trips on top. Core (at-most-once) tests
    publish through this.
    """
    client = await CeClient.connect(url, name="tests-publisher")
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def running(
    app: WorkerApp, url: str, count: int = 1, **kwargs: Any
) -> AsyncIterator[list[Worker]]:
    """``count`` workers of ``app``, each on its own connection; drained and closed on exit."""
    connections = [await nats.connect(url) for _ in range(count)]
    workers = [app.run(nc, **kwargs) for nc in connections]
    try:
        for worker in workers:
            await worker.start()
        yield workers
    finally:
        for worker in workers:
            await worker.drain(grace=5.0)
        for nc in connections:
            await nc.close()
