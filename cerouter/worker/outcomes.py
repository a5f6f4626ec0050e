"""What becomes of an event a worker took: its result delivered, or its failure settled.

A request (core queues only) always gets an answer: the handler's event, or an error event. A
result otherwise goes to the handler's (or the app's) emit subject. A handler that failed on a
core event has its event dead-lettered (at-most-once: no retry); on a durable one it is retried
with a delay (NAK) until ``max_deliver``, then dead-lettered and terminated. Bytes that are no
CloudEvent are dead-lettered at once: retrying cannot fix them. Every outcome is counted in the
queue's :class:`~cerouter.worker.spec.WorkerStats`.

:class:`Outcomes` does this for a :class:`~cerouter.worker.runtime.Worker`, which keeps the
subscriptions, the handler slots and the event tasks, and hands it its task spawner.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from cloudevents.core.v1.event import CloudEvent
from nats.aio.msg import Msg

from cerouter.binding import DecodedEvent, Mode
from cerouter.errors import BindingError
from cerouter.log import get_logger
from cerouter.types import Reason
from cerouter.worker.outlets import Outlets
from cerouter.worker.spec import (
    AppSettings,
    HandlerSpec,
    QueueSpec,
    WorkerStats,
    describe_error,
    error_event,
)

log = get_logger("cerouter.worker")

Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs a coroutine in a task of the worker's, which drain waits for."""


class Outcomes:
    """Delivers results and settles failures for one worker, through its :class:`Outlets`.

    ``spawn`` is the worker's: a reply sent from a synchronous callback still counts as an event
    task that drain waits for.
    """

    def __init__(self, app: AppSettings, out: Outlets, spawn: Spawn) -> None:
        self._app = app
        self._out = out
        self._spawn = spawn

    async def deliver(
        self,
        spec: HandlerSpec,
        msg: Msg,
        event: DecodedEvent,
        result: CloudEvent | None,
        stats: WorkerStats,
        *,
        flush: bool,
    ) -> None:
        """Answer a request with ``result``, or emit ``result`` (``flush``: before returning)."""
        if msg.reply and not spec.durable:  # a request
            if result is None:
                # A requester waits for a CloudEvent; None would leave it to time out.
                reason = "handler returned no event for a request"
                result = error_event(self._app.source, reason, event.attributes)
            await self.reply(msg, result, event.mode, stats)
            return
        if result is None:
            return
        target = spec.emit if spec.emit is not None else self._app.emit
        if target is None:
            log.warning("handler result dropped: no emit subject", handler=spec.name)
            return
        # Durable: flushed, so the result is out before the input is acked.
        await self._out.emit(target, result, flush=flush)
        stats.emitted += 1

    async def reply(self, msg: Msg, event: CloudEvent, mode: Mode, stats: WorkerStats) -> None:
        """Answer the request ``msg`` with ``event`` (in ``mode`` unless the app fixes one)."""
        await self._out.reply(msg, event, mode)
        stats.replied += 1

    def ignore(self, queue: QueueSpec, msg: Msg, event: DecodedEvent, stats: WorkerStats) -> None:
        """Count an event no handler of ``queue`` takes; a request gets an error event."""
        stats.ignored += 1
        log.debug("no handler for type", queue=queue.name, type=event.attributes.get("type"))
        if msg.reply and not queue.durable:
            reason = f"no handler for type {event.attributes.get('type')!r} in queue {queue.name!r}"
            error = error_event(self._app.source, reason, event.attributes)
            self._spawn(self.reply(msg, error, event.mode, stats))

    async def undecodable(
        self, queue: QueueSpec, msg: Msg, exc: BindingError, stats: WorkerStats
    ) -> None:
        """Settle a message that is no CloudEvent: an error reply, or a dead letter at once."""
        # Retrying cannot turn bytes into a CloudEvent: dead-letter at once.
        stats.undecodable += 1
        reason = f"not a CloudEvent: {describe_error(exc)}"
        if msg.reply and not queue.durable:
            await self.reply(
                msg, error_event(self._app.source, reason, None), Mode.STRUCTURED, stats
            )
            return
        attempt = msg.metadata.num_delivered if queue.durable else 1
        stored = await self.deadletter(queue, msg, Reason.BINDING, reason, attempt, stats)
        if queue.durable:
            await (msg.term() if stored else msg.nak(delay=1.0))

    async def failed_core(
        self, queue: QueueSpec, msg: Msg, event: DecodedEvent, exc: Exception, stats: WorkerStats
    ) -> None:
        """Settle a core event whose handler raised: an error reply, or a dead letter."""
        stats.failed += 1
        reason = describe_error(exc)
        log.warning("handler failed", error=reason)
        if msg.reply:
            error = error_event(self._app.source, reason, event.attributes)
            await self.reply(msg, error, event.mode, stats)
        else:
            await self.deadletter(queue, msg, Reason.HANDLER, reason, 1, stats, event.attributes)

    async def failed_durable(
        self,
        queue: QueueSpec,
        spec: HandlerSpec,
        msg: Msg,
        attempt: int,
        exc: Exception,
        stats: WorkerStats,
    ) -> None:
        """Settle a durable message whose handler raised: retry it later, or dead-letter it."""
        stats.failed += 1
        reason = describe_error(exc)
        if attempt < spec.max_deliver:
            delay = spec.retry_delay(attempt)
            log.warning(
                "handler failed; will retry",
                handler=spec.name,
                attempt=attempt,
                delay=delay,
                error=reason,
            )
            stats.retried += 1
            await msg.nak(delay=delay)
            return
        if await self.deadletter(queue, msg, Reason.HANDLER, reason, attempt, stats):
            await msg.term()
        else:
            # Not stored: keep it in the queue rather than lose it.
            await msg.nak(delay=spec.retry_delay(attempt))

    async def deadletter(
        self,
        queue: QueueSpec,
        msg: Msg,
        reason: Reason,
        detail: str,
        attempt: int,
        stats: WorkerStats,
        attributes: Mapping[str, object] | None = None,
    ) -> bool:
        """Store ``msg`` as a dead letter; ``True`` if it was stored."""
        identity = None
        if queue.durable:  # the same on every redelivery: one dead letter per message
            identity = f"{msg.metadata.stream}:{msg.metadata.sequence.stream}"
        stored = await self._out.deadletter(
            msg, queue=queue.name, reason=reason, detail=detail, attempt=attempt,
            attributes=attributes, identity=identity,
        )  # fmt: skip
        stats.dead_lettered += stored
        return stored
