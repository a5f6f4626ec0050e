"""Where a worker's results go: replies to requests, emitted events, dead-letters.

Each method reports what happened (the runtime counts it); none raises for a delivery failure
except through the connection itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.binding import Mode, NatsMessage, to_binary, to_structured
from cerouter.delivery.deadletter import build_deadletter
from cerouter.delivery.deadletter_store import ensure_capture_stream, store_deadletter
from cerouter.errors import DeliveryError
from cerouter.log import get_logger
from cerouter.pipeline import Rejection
from cerouter.routing.subjects import SubjectTemplate
from cerouter.types import Reason, Stage

log = get_logger("cerouter.worker")


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
        deadletter_subject: SubjectTemplate,
        deadletter_stream: str,
        *,
        reply_mode: Mode | None,
        emit_mode: Mode,
    ) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.deadletter_subject = deadletter_subject
        self.deadletter_stream = deadletter_stream
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
        self,
        msg: Msg,
        *,
        queue: str,
        reason: Reason,
        detail: str,
        attempt: int,
        attributes: Mapping[str, object] | None = None,
        identity: str | None = None,
    ) -> bool:
        """Store ``msg`` in the dead-letter stream; ``True`` once JetStream acknowledged it.

        ``reason`` is :attr:`Reason.HANDLER` (the handler failed) or :attr:`Reason.BINDING`
        (not a CloudEvent).
        """
        stage = Stage.HANDLER if reason is Reason.HANDLER else Stage.BINDING
        letter = build_deadletter(
            self.deadletter_subject,
            Rejection(reason, stage, detail),
            subject=msg.subject,
            headers=msg.headers,
            payload=msg.data,
            attributes=attributes,
            attempt=attempt,
            queue=queue,
            identity=identity,
            max_payload=self.nc.max_payload,
        )

        async def recreate() -> None:
            await ensure_capture_stream(self.js, letter.subject, self.deadletter_stream)

        try:
            await store_deadletter(self.js, letter, recreate=recreate)
        except DeliveryError as exc:
            log.error("dead-letter failed", queue=queue, error=str(exc), reason=str(reason))
            return False
        log.warning(
            "dead-lettered", queue=queue, reason=str(reason), detail=detail, attempt=attempt
        )
        return True
