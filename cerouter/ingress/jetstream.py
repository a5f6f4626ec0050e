"""JetStream ingress: a durable pull consumer shared by every router, consumed in batches.

Messages arrive by callback (:class:`~cerouter.pull.PullConsumer`) and queue up while the previous
batch is being delivered; the next batch is everything that queued. Batching is what makes
at-least-once cheap: one flush and one wait cover every delivery of the batch.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from cerouter.config.model import JetStreamIngress as IngressSpec
from cerouter.errors import CerouterError
from cerouter.ingress.base import BatchHandler
from cerouter.log import get_logger
from cerouter.nats.pull import PullConsumer
from cerouter.types import Inbound

log = get_logger("cerouter.ingress")


class JetStreamSettler:
    """Settles one JetStream message through its ack subject."""

    __slots__ = ("_msg",)

    def __init__(self, msg: Msg) -> None:
        self._msg = msg

    @property
    def attempt(self) -> int:
        """The server's delivery count (parsed from the ack subject only when asked)."""
        return self._msg.metadata.num_delivered or 1

    @property
    def identity(self) -> str:
        """The stream and sequence of the message: the same on every redelivery."""
        seq = self._msg.metadata.sequence
        return f"{self._msg.metadata.stream}:{seq.stream}"

    async def ack(self) -> None:
        """Acknowledge: the server forgets the message for this consumer."""
        await self._msg.ack()

    async def retry(self, delay: float) -> None:
        """NAK with a delay: the server redelivers it after ``delay`` seconds."""
        await self._msg.nak(delay=delay)

    async def terminate(self) -> None:
        """TERM: the server never redelivers it."""
        await self._msg.term()


def consumer_config(spec: IngressSpec) -> ConsumerConfig:
    """The durable consumer every router of this ingress shares."""
    subjects = list(spec.subjects)
    return ConsumerConfig(
        name=spec.durable,
        durable_name=spec.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=spec.ack_wait,
        # cerouter counts attempts itself and dead-letters at spec.max_deliver; the server must
        # keep redelivering past that when the dead-letter stream itself is down, or the event
        # would be lost.
        max_deliver=-1,
        max_ack_pending=spec.max_ack_pending,
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
    )


class JetStreamIngress:
    """Consume one declared stream through its durable consumer and hand batches to the router."""

    def __init__(
        self, nc: Client, js: JetStreamContext, spec: IngressSpec, handle: BatchHandler
    ) -> None:
        self.name = f"jetstream {spec.stream}"
        self.spec = spec
        self._js = js
        self._handle = handle
        self._queue: list[Msg] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # Never more unacknowledged messages than the consumer allows, and batches of a size
        # that keeps one flush per batch worthwhile without holding messages long.
        capacity = max(1, min(spec.max_ack_pending, 512))
        self._consumer = PullConsumer(
            nc, spec.stream, spec.durable, capacity, self._on_message, recover=self.ensure_consumer
        )

    async def ensure_consumer(self) -> None:
        """Create the durable consumer, or update it to the declared settings."""
        try:
            await self._js.add_consumer(self.spec.stream, consumer_config(self.spec))
        except nats.js.errors.APIError as exc:
            raise CerouterError(
                f"ingress stream {self.spec.stream}: cannot create consumer "
                f"{self.spec.durable!r}: {exc.description or exc}"
            ) from None

    async def start(self) -> None:
        """Make sure the consumer exists, then start pulling."""
        await self.ensure_consumer()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"ingress {self.spec.stream}")

    def _on_message(self, msg: Msg) -> None:
        self._queue.append(msg)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            batch, self._queue = self._queue, []
            limit = self.spec.max_deliver
            inbounds = [
                # The ack subject is not a reply address: a request destination must not see it.
                Inbound(m.subject, m.headers, m.data, None, JetStreamSettler(m), limit)
                for m in batch
            ]
            try:
                await self._handle(inbounds)
            except Exception as exc:
                # Unacked messages come back after ack_wait; the ingress must keep running.
                log.error(
                    "batch failed; its messages will be redelivered",
                    stream=self.spec.stream,
                    error=str(exc) or type(exc).__name__,
                )
            finally:
                for _ in batch:
                    self._consumer.release()

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a shutdown budget
        """Stop pulling, deliver what already arrived (up to ``timeout``), close the inbox."""
        await self._consumer.stop()
        await self._consumer.close()  # drains the inbox: late messages still reach the queue
        self._closing = True
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
