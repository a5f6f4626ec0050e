"""Where a worker's results go: replies to requests, emitted events, dead-letters.

Each method reports what happened (the runtime counts it); none raises for a delivery failure
except through the connection itself.
"""

from __future__ import annotations

import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.binding import Mode, NatsMessage, to_binary, to_structured
from cerouter.delivery.worker_deadletter import (
    DeadLetterTarget,
    deadletter_headers,
    publish_deadletter,
)
from cerouter.errors import DeliveryError

log = structlog.get_logger("cerouter.worker")


def encode_event(event: CloudEvent, mode: Mode) -> NatsMessage:
    """An SDK event as a NATS message in ``mode``."""
    return to_binary(event) if mode is Mode.BINARY else to_structured(event)


class Outlets:
    """The publishing side of a worker, on its connection.

    ``reply_mode`` ``None`` answers in the request's own mode; ``emit_mode`` is the mode of
    emitted events.
    """

    def __init__(
        self,
        nc: Client,
        deadletter: DeadLetterTarget,
        *,
        reply_mode: Mode | None,
        emit_mode: Mode,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.deadletter_target = deadletter
        self.reply_mode = reply_mode
        self.emit_mode = emit_mode

    async def reply(self, msg: Msg, event: CloudEvent, request_mode: Mode) -> None:
        """Answer the request ``msg`` with ``event``."""
        message = encode_event(event, self.reply_mode or request_mode)
        await self.nc.publish(msg.reply, message.payload, headers=message.headers or None)

    async def emit(self, subject: str, event: CloudEvent, *, flush: bool) -> None:
        """Publish a handler's result on core NATS; ``flush`` waits until the server has it."""
        message = encode_event(event, self.emit_mode)
        await self.nc.publish(subject, message.payload, headers=message.headers or None)
        if flush:
            await self.nc.flush()

    async def deadletter(
        self, msg: Msg, *, queue: str, stage: str, reason: str, attempt: int
    ) -> bool:
        """Store ``msg`` in the dead-letter stream; ``True`` once JetStream acknowledged it."""
        headers = deadletter_headers(
            msg.headers, stage=stage, reason=reason, subject=msg.subject, attempt=attempt,
            queue=queue,
        )  # fmt: skip
        try:
            await publish_deadletter(self.js, self.deadletter_target, msg.data, headers)
        except DeliveryError as exc:
            log.error("dead-letter failed", queue=queue, error=str(exc), reason=reason)
            return False
        log.error("dead-lettered", queue=queue, stage=stage, attempt=attempt, reason=reason)
        return True
