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

import base64
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

import orjson

from cerouter.delivery.dispatch import CONTROL_HEADERS, MSG_ID_HEADER, forwardable
from cerouter.nats.wire import header_size
from cerouter.pipeline import Rejection
from cerouter.routing.subjects import SubjectTemplate
from cerouter.timestamps import format_timestamp, parse_timestamp
from cerouter.types import Headers, Reason, Stage

PREFIX = "cerouter-"
REASON_HEADER = "cerouter-deadletter"
ENVELOPE_HEADER = "cerouter-envelope"
MAX_HEADER_VALUE = 1024
MAX_KEPT_HEADERS = 16 * 1024
"""Original header blocks larger than this go into the envelope (JetStream refuses blocks over
64 KiB, and the dead letter adds its own)."""
TRUNCATION_MARGIN = 64
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 token, as nats-py checks
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
    origin: str | None = None
    truncated: int | None = None  # the original payload's size, when the stored one is cut


def header_value(text: str) -> str:
    """One printable-ASCII line: whitespace folded, non-ASCII percent-encoded, length capped."""
    folded = " ".join(text.split())
    encoded = quote(folded, safe=_SAFE, errors="backslashreplace")
    return encoded[: MAX_HEADER_VALUE - 3] + "..." if len(encoded) > MAX_HEADER_VALUE else encoded


def deadletter_id(rejection: Rejection, identity: str | None, queue: str | None) -> str:
    """The ``Nats-Msg-Id`` of a dead letter.

    ``identity`` names the incoming message across redeliveries (a JetStream stream and
    sequence), so a redelivered message rejected the same way is stored once. Without one
    (core NATS: every message is a new one) the id is unique: two messages are never collapsed
    into one dead letter, however alike.
    """
    if identity is None:
        return "dl-" + uuid.uuid4().hex
    digest = hashlib.blake2b(digest_size=16)
    where = f"{identity}\x00{rejection.reason}\x00{rejection.route}\x00{rejection.destination}"
    digest.update(f"{where}\x00{queue}".encode("utf-8", "replace"))
    return "dl-" + digest.hexdigest()


def _storable(headers: Headers | None) -> bool:
    """Whether the original headers can be kept as headers of the copy, as they are."""
    if not headers:
        return True
    size = 0
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
            return False
        size += len(name) + len(value) + 4
    return size <= MAX_KEPT_HEADERS


def _kept_headers(headers: Headers | None) -> dict[str, str]:
    out = forwardable(headers)
    for name, value in (headers or {}).items():
        lowered = name.lower()
        if lowered == "nats-msg-id":
            out["cerouter-msg-id"] = header_value(value)
        elif lowered in CONTROL_HEADERS:  # kept, under a name NATS does not read as a status
            out[f"cerouter-original-{lowered}"] = header_value(value)
    return out


def _envelope(headers: Headers | None, payload: bytes) -> bytes:
    return orjson.dumps(
        {"headers": dict(headers or {}), "payload": base64.b64encode(payload).decode()}
    )


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
    identity: str | None = None,
    max_payload: int | None = None,
    now: datetime | None = None,
) -> DeadLetter:
    """The dead letter of one rejection of one incoming message; always storable.

    ``target`` is the dead-letter subject template (``{reason}`` and event attributes);
    ``attributes`` are the event's, when the message could be decoded; ``identity`` names the
    message across redeliveries (see :func:`deadletter_id`). Original headers JetStream would
    refuse (names outside the header-name grammar, line breaks, a block over
    :data:`MAX_KEPT_HEADERS`) are kept by value in an envelope (``cerouter-envelope: headers``:
    the payload is ``{"headers": ..., "payload": base64}``, which :func:`parse_deadletter`
    unwraps). With ``max_payload``, a letter that would exceed it keeps every ``cerouter-*``
    header and stores the payload truncated, saying so in ``cerouter-truncated`` (the original
    size) and ``cerouter-origin`` (where the original is, when known).
    """
    attributes = attributes or {}
    enveloped = not _storable(headers)
    out = {} if enveloped else _kept_headers(headers)
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
    if identity is not None:
        out["cerouter-origin"] = header_value(identity)
    letter_id = deadletter_id(rejection, identity, queue)
    out[MSG_ID_HEADER] = letter_id
    body = payload
    if enveloped:
        out[ENVELOPE_HEADER] = "headers"
        body = _envelope(headers, payload)
    if max_payload is not None:
        room = max_payload - header_size(out) - TRUNCATION_MARGIN
        if len(body) > room:
            out["cerouter-truncated"] = str(len(payload))
            kept = max(room, 0) * 3 // 4 - 256 if enveloped else max(room, 0)
            body = _envelope(headers, payload[: max(kept, 0)]) if enveloped else body[:kept]
    rendered = target.render(attributes, {"reason": str(rejection.reason)})
    return DeadLetter(rendered, out, body, letter_id)


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

    if ours.get(ENVELOPE_HEADER) == "headers":
        original, payload = _unwrap(payload, original)
    for lowered in CONTROL_HEADERS:
        kept = ours.get(f"cerouter-original-{lowered}")
        if kept is not None:
            original[lowered.capitalize()] = unquote(kept)
    attempt_text = ours.get("cerouter-attempt", "1")
    truncated = ours.get("cerouter-truncated", "")
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
        origin=text("origin"),
        truncated=int(truncated) if truncated.isdigit() else None,
    )


def _unwrap(body: bytes, fallback: dict[str, str]) -> tuple[dict[str, str], bytes]:
    try:
        envelope = orjson.loads(body)
        headers = {str(k): str(v) for k, v in envelope["headers"].items()}
        return headers, base64.b64decode(envelope["payload"])
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        return fallback, body  # damaged: hand back what is there
