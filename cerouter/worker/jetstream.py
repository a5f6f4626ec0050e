"""JetStream plumbing of durable queues: find the stream, declare the consumer, keep events alive.

The router declares the workqueue stream (routes.yaml ``streams``); workers only look it up and
declare the shared durable consumer on it, named after the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from cerouter.errors import CerouterError
from cerouter.log import get_logger
from cerouter.worker.spec import QueueSpec

log = get_logger("cerouter.worker")


async def find_stream(js: JetStreamContext, queue: QueueSpec, wait: float) -> str:
    """The stream capturing the queue's subject, waiting up to ``wait`` seconds for it to appear.

    A worker started before the router would otherwise fail for nothing; after ``wait`` it fails
    with a :class:`CerouterError` that says what to declare.
    """
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            return await js.find_stream_name_by_subject(queue.subject)
        except nats.js.errors.NotFoundError:
            if time.monotonic() >= deadline:
                raise CerouterError(
                    f"queue {queue.name!r}: no JetStream stream captures {queue.subject!r}; "
                    "declare one in routes.yaml (retention: workqueue) and start the router"
                ) from None
            if not said:
                log.info("waiting for a stream", queue=queue.name, subject=queue.subject)
                said = True
            await asyncio.sleep(0.5)


async def ensure_consumer(
    js: JetStreamContext, stream: str, queue: QueueSpec, *, max_ack_pending: int
) -> None:
    """Create or update the durable pull consumer ``queue.name`` on ``stream``.

    Create-or-update (nats-server >= 2.10) makes the app's declaration win, so every worker of
    the queue agrees on ``ack_wait`` and ``max_deliver``. The server is told ``max_deliver + 1``:
    when the last attempt outruns ``ack_wait`` or kills its worker, that one extra delivery still
    reaches a handler, whose failure dead-letters the event instead of stranding it in the stream.
    """
    config = api.ConsumerConfig(
        name=queue.name,
        durable_name=queue.name,
        filter_subject=queue.subject,
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_wait=queue.ack_wait,
        max_deliver=queue.max_deliver + 1,
        max_ack_pending=max_ack_pending,
    )
    try:
        await js.add_consumer(stream, config)
    except nats.js.errors.APIError as exc:
        raise CerouterError(
            f"queue {queue.name!r}: cannot create consumer {queue.name!r} on stream "
            f"{stream!r}: {exc.description or exc}"
        ) from None


class KeepAlive:
    """In-progress acks for events held longer than a fraction of their ``ack_wait``.

    One sweeper task serves every event of a worker (a timer per event would cost more on the
    hot path than a dict insert and delete). An event is registered when it arrives, so time
    spent waiting for a handler slot counts too; each gets ``+WPI`` every ``ack_wait / 4``.
    """

    def __init__(self, tick: float) -> None:
        self._tick = tick
        # id(msg) -> (msg, when the next in-progress ack is due, interval)
        self._held: dict[int, tuple[Msg, float, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, msg: Msg, ack_wait: float) -> None:
        """Start keeping ``msg`` alive."""
        interval = ack_wait / 4
        self._held[id(msg)] = (msg, time.monotonic() + interval, interval)

    def release(self, msg: Msg) -> None:
        """Stop keeping ``msg`` alive (it was acked, NAKed or terminated)."""
        self._held.pop(id(msg), None)

    def start(self) -> None:
        """Start the sweeper task."""
        self._task = asyncio.create_task(self._sweep(), name="cerouter in-progress acks")

    async def stop(self) -> None:
        """Stop the sweeper task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            for key, (msg, due, interval) in list(self._held.items()):
                if now >= due:
                    self._held[key] = (msg, now + interval, interval)
                    with contextlib.suppress(nats.errors.Error):
                        await msg.in_progress()
