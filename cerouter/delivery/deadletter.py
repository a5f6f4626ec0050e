"""Dead letters, the one format: the original message untouched, plus ``cerouter-*`` headers.

The router and the workers both build their dead letters here and tools read them back with
:func:`parse_deadletter`. Headers added (values are printable ASCII; anything else is
percent-encoded, see :func:`header_value`):

============================  ==============================================================
``cerouter-deadletter``       the reason code (:class:`~cerouter.types.Reason`), also the
                              ``{reason}`` of the dead-letter subject
``cerouter-stage``            the stage that rejected it (:class:`~cerouter.types.Stage`)
``cerouter-reason``           what is wrong, one line (the validation report's summary, the
                              handler's exception, the destination's error)
``cerouter-subject``          the subject the message arrived on
``cerouter-route``            the route concerned, when there is one (router)
``cerouter-destination``      the destination that did not accept the event (delivery)
``cerouter-queue``            the worker queue whose handler failed (worker)
``cerouter-attempt``          the delivery attempt that gave up (1 for core NATS)
``cerouter-time``             when it was dead-lettered (RFC 3339, UTC)
``cerouter-msg-id``           the original ``Nats-Msg-Id``, when it had one
============================  ==============================================================

The original's ``Nats-*`` headers are instructions to JetStream (expected sequence, rollup, TTL,
message id) and are not copied: applied to the copy they would make the dead-letter stream drop
or refuse it. Each dead letter gets its own ``Nats-Msg-Id`` (see :func:`deadletter_id`), so a
redelivered message is not dead-lettered twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from cerouter.delivery.dispatch import MSG_ID_HEADER, forwardable
from cerouter.pipeline import Rejection
from cerouter.routing.subjects import SubjectTemplate
from cerouter.timestamps import format_timestamp, parse_timestamp
from cerouter.types import Headers, Reason, Stage

PREFIX = "cerouter-"
REASON_HEADER = "cerouter-deadletter"
MAX_HEADER_VALUE = 1024
# Printable ASCII including space stays readable; '%' is encoded so the value stays decodable.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message ready to publish to the dead-letter stream (``Nats-Msg-Id`` already set)."""

    subject: str
    headers: dict[str, str]
    payload: bytes
    msg_id: str


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """A dead letter read back: why it is there, and the original message.

    ``headers`` are the original message's headers (without the ``cerouter-*`` ones);
    ``detail`` and the other texts are decoded from their header encoding. ``reason`` and
    ``stage`` are ``None`` for a message that is not a cerouter dead letter.
    """

    reason: Reason | None
    stage: Stage | None
    detail: str
    subject: str | None
    headers: dict[str, str]
    payload: bytes
    route: str | None = None
    destination: str | None = None
    queue: str | None = None
    attempt: int = 1
    time: datetime | None = None
    original_msg_id: str | None = None


def header_value(text: str) -> str:
    """One printable-ASCII line: whitespace folded, non-ASCII percent-encoded, length capped."""
    folded = " ".join(text.split())
    encoded = quote(folded, safe=_SAFE, errors="backslashreplace")
    return encoded[: MAX_HEADER_VALUE - 3] + "..." if len(encoded) > MAX_HEADER_VALUE else encoded


def deadletter_id(
    rejection: Rejection, attributes: Mapping[str, object], payload: bytes, queue: str | None
) -> str:
    """The ``Nats-Msg-Id`` of a dead letter: the same event rejected the same way gets the same
    id, so a redelivery within the stream's duplicate window is stored once."""
    digest = hashlib.blake2b(digest_size=16)
    if "source" in attributes and "id" in attributes:
        digest.update(f"{attributes['source']}\x00{attributes['id']}".encode("utf-8", "replace"))
    else:
        digest.update(payload)
    where = f"\x00{rejection.reason}\x00{rejection.route}\x00{rejection.destination}\x00{queue}"
    digest.update(where.encode("utf-8", "replace"))
    return "dl-" + digest.hexdigest()


def build_deadletter(
    target: SubjectTemplate,
    rejection: Rejection,
    *,
    subject: str,
    headers: Headers | None,
    payload: bytes,
    attributes: Mapping[str, object] | None = None,
    attempt: int = 1,
    queue: str | None = None,
    now: datetime | None = None,
) -> DeadLetter:
    """The dead letter of one rejection of one incoming message.

    ``target`` is the dead-letter subject template (``{reason}`` and event attributes);
    ``attributes`` are the event's, when the message could be decoded.
    """
    attributes = attributes or {}
    out = forwardable(headers)
    original_id = next((v for k, v in (headers or {}).items() if k.lower() == "nats-msg-id"), None)
    if original_id is not None:
        out["cerouter-msg-id"] = header_value(original_id)
    out[REASON_HEADER] = str(rejection.reason)
    out["cerouter-stage"] = str(rejection.stage)
    out["cerouter-reason"] = header_value(rejection.detail)
    out["cerouter-subject"] = header_value(subject)
    if rejection.route is not None:
        out["cerouter-route"] = header_value(rejection.route)
    if rejection.destination is not None:
        out["cerouter-destination"] = header_value(rejection.destination)
    if queue is not None:
        out["cerouter-queue"] = header_value(queue)
    out["cerouter-attempt"] = str(attempt)
    out["cerouter-time"] = format_timestamp(now or datetime.now(UTC))
    letter_id = deadletter_id(rejection, attributes, payload, queue)
    out[MSG_ID_HEADER] = letter_id
    rendered = target.render(attributes, {"reason": str(rejection.reason)})
    return DeadLetter(rendered, out, payload, letter_id)


_REASONS = {str(r): r for r in Reason}
_STAGES = {str(s): s for s in Stage}


def parse_deadletter(
    headers: Mapping[str, str] | None, payload: bytes, *, subject: str | None = None
) -> DeadLetterRecord:
    """Read a dead letter back (from the router or a worker); never raises.

    ``subject`` is the dead letter's own subject, used only when ``cerouter-subject`` is absent.
    """
    ours: dict[str, str] = {}
    original: dict[str, str] = {}
    for key, value in (headers or {}).items():
        name = str(key)  # nats-py keys status headers with an enum
        if name.lower().startswith(PREFIX):
            ours[name.lower()] = value
        elif name.lower() != MSG_ID_HEADER.lower():
            original[name] = value

    def text(name: str) -> str | None:
        raw = ours.get(f"{PREFIX}{name}")
        return None if raw is None else unquote(raw)

    attempt_text = ours.get("cerouter-attempt", "1")
    time_text = ours.get("cerouter-time")
    try:
        when = parse_timestamp(time_text) if time_text else None
    except ValueError:
        when = None
    return DeadLetterRecord(
        reason=_REASONS.get(ours.get(REASON_HEADER, "")),
        stage=_STAGES.get(ours.get("cerouter-stage", "")),
        detail=text("reason") or "",
        subject=text("subject") or subject,
        headers=original,
        payload=payload,
        route=text("route"),
        destination=text("destination"),
        queue=text("queue"),
        attempt=int(attempt_text) if attempt_text.isdigit() else 1,
        time=when,
        original_msg_id=text("msg-id"),
    )
