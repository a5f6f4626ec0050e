"""Dead-letter messages: the original message untouched, plus ``cerouter-*`` headers saying why.

Headers added (values are printable ASCII; anything else is percent-encoded):

============================  ==============================================================
``cerouter-deadletter``       the reason code: binding, envelope, schema, unrouted, loop,
                              delivery, internal (a bug in cerouter; also the ``{reason}``
                              of the dead-letter subject)
``cerouter-stage``            the pipeline stage: binding, envelope, data, routing, delivery
``cerouter-reason``           what is wrong, one line (the validation report's summary)
``cerouter-subject``          the subject the message arrived on
``cerouter-route``            the route concerned, when there is one
``cerouter-destination``      the destination that did not accept the event (delivery only)
``cerouter-attempt``          the delivery attempt (JetStream ingress; 1 for core NATS)
``cerouter-time``             when it was dead-lettered (RFC 3339, UTC)
============================  ==============================================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from cerouter.binding import DecodedEvent
from cerouter.config.model import DeadLetterSettings
from cerouter.delivery.dispatch import forwardable
from cerouter.pipeline import Rejection
from cerouter.timestamps import format_timestamp

MAX_HEADER_VALUE = 1024
# Printable ASCII including space stays readable; '%' is encoded so the value stays decodable.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message ready to publish to the dead-letter stream."""

    subject: str
    headers: dict[str, str]
    payload: bytes
    msg_id: str


def header_value(text: str) -> str:
    """One printable-ASCII line: whitespace folded, non-ASCII percent-encoded, length capped."""
    folded = " ".join(text.split())
    encoded = quote(folded, safe=_SAFE, errors="backslashreplace")
    return encoded[: MAX_HEADER_VALUE - 3] + "..." if len(encoded) > MAX_HEADER_VALUE else encoded


def build_deadletter(
    settings: DeadLetterSettings,
    rejection: Rejection,
    *,
    subject: str,
    headers: Mapping[str, str] | None,
    payload: bytes,
    event: DecodedEvent | None,
    attempt: int = 1,
    now: datetime | None = None,
) -> DeadLetter:
    """The dead-letter message for one rejection of one incoming message."""
    attributes = event.attributes if event is not None else {}
    out = forwardable(headers)
    original_id = next((v for k, v in (headers or {}).items() if k.lower() == "nats-msg-id"), None)
    if original_id is not None:
        out["cerouter-msg-id"] = header_value(original_id)
    out["cerouter-deadletter"] = rejection.reason
    out["cerouter-stage"] = rejection.stage
    out["cerouter-reason"] = header_value(rejection.detail)
    out["cerouter-subject"] = header_value(subject)
    if rejection.route is not None:
        out["cerouter-route"] = header_value(rejection.route)
    if rejection.destination is not None:
        out["cerouter-destination"] = header_value(rejection.destination)
    out["cerouter-attempt"] = str(attempt)
    out["cerouter-time"] = format_timestamp(now or datetime.now(UTC))
    target = settings.subject.render(attributes, {"reason": rejection.reason})
    return DeadLetter(target, out, payload, _msg_id(rejection, attributes, payload))


def _msg_id(rejection: Rejection, attributes: Mapping[str, object], payload: bytes) -> str:
    # A redelivered message must not be dead-lettered twice: the id depends only on the event
    # (source + id, or the bytes when it is not a CloudEvent) and on what was rejected.
    digest = hashlib.blake2b(digest_size=16)
    if "source" in attributes and "id" in attributes:
        digest.update(f"{attributes['source']}\x00{attributes['id']}".encode())
    else:
        digest.update(payload)
    digest.update(
        f"\x00{rejection.reason}\x00{rejection.route}\x00{rejection.destination}".encode()
    )
    return "dl-" + digest.hexdigest()
