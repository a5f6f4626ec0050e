"""Dead-lettering from workers: poison events go to a JetStream stream with the reason.

The copy keeps the original payload bytes and headers, and adds::

    cerouter-stage:   handler (the handler raised) or decode (not a CloudEvent)
    cerouter-reason:  one line: ExceptionType: message
    cerouter-subject: the subject the event arrived on
    cerouter-attempt: the delivery attempt that gave up (1 for core messages)
    cerouter-time:    RFC 3339, when it was dead-lettered
    cerouter-queue:   the worker queue

JetStream publish-control headers of the original (``Nats-Msg-Id``, ``Nats-Expected-*``,
``Nats-TTL``, ``Nats-Rollup``) are not copied: they would make the dead-letter stream drop the copy
as a duplicate or reject it. The original message id is kept as ``cerouter-msg-id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext, api

from cerouter.errors import DeliveryError
from cerouter.timestamps import format_timestamp

log = structlog.get_logger("cerouter.worker")

_CONTROL_PREFIXES = ("nats-expected-",)
_CONTROL = frozenset({"nats-msg-id", "nats-ttl", "nats-rollup"})


@dataclass(frozen=True, slots=True)
class DeadLetterTarget:
    """Where a worker dead-letters: a subject and the stream expected to capture it."""

    subject: str
    stream: str

    @property
    def capture(self) -> str:
        """The subjects a stream created by the worker captures: ``<first token>.>``."""
        head, dot, _ = self.subject.partition(".")
        return f"{head}.>" if dot else self.subject


def deadletter_headers(
    original: Mapping[str, str] | None,
    *,
    stage: str,
    reason: str,
    subject: str,
    attempt: int,
    queue: str,
) -> dict[str, str]:
    """The headers of a dead-letter copy: the original's (less JetStream controls) + cerouter's."""
    headers: dict[str, str] = {}
    for key, value in (original or {}).items():
        name = str(key)  # nats-py keys status headers with an enum; plain messages have str
        lowered = name.lower()
        if lowered == "nats-msg-id":
            headers["cerouter-msg-id"] = value
        elif lowered in _CONTROL or lowered.startswith(_CONTROL_PREFIXES):
            continue
        else:
            headers[name] = value
    headers.update(
        {
            "cerouter-stage": stage,
            "cerouter-reason": reason,
            "cerouter-subject": subject,
            "cerouter-attempt": str(attempt),
            "cerouter-time": format_timestamp(datetime.now(UTC)),
            "cerouter-queue": queue,
        }
    )
    return headers


async def ensure_stream(js: JetStreamContext, target: DeadLetterTarget) -> str:
    """Return the stream capturing the dead-letter subject, creating ``target.stream`` if none.

    The created stream uses limits retention and captures ``target.capture``. Another process
    creating it at the same moment is fine: the lookup is repeated after a failed create.
    """
    try:
        return await js.find_stream_name_by_subject(target.subject)
    except nats.js.errors.NotFoundError:
        pass
    config = api.StreamConfig(
        name=target.stream,
        subjects=[target.capture],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
    )
    try:
        await js.add_stream(config)
        log.info("dead-letter stream created", stream=target.stream, subjects=target.capture)
        return target.stream
    except nats.js.errors.APIError as exc:
        try:
            return await js.find_stream_name_by_subject(target.subject)
        except nats.js.errors.NotFoundError:
            raise DeliveryError(
                f"cannot create dead-letter stream {target.stream!r} for "
                f"{target.subject!r}: {exc.description or exc}"
            ) from None


async def publish_deadletter(
    js: JetStreamContext,
    target: DeadLetterTarget,
    payload: bytes,
    headers: dict[str, str],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - handed to nats-py's JetStream publish
) -> None:
    """Store one dead-letter copy; raise :class:`DeliveryError` unless JetStream acknowledged it.

    A missing stream is created once and the publish retried, so the first poison event of a
    fresh server is not lost.
    """
    for first_try in (True, False):
        try:
            await js.publish(target.subject, payload, timeout=timeout, headers=headers)
            return
        except nats.js.errors.NoStreamResponseError:
            if not first_try:
                break
            await ensure_stream(js, target)
        except nats.errors.Error as exc:  # timeout, API error, connection closed
            detail = str(exc) or type(exc).__name__
            raise DeliveryError(
                f"dead-letter publish to {target.subject!r} failed: {detail}"
            ) from None
    raise DeliveryError(f"no JetStream stream captures dead-letter subject {target.subject!r}")
