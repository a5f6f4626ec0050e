"""The ``io.cerouter.error`` CloudEvent: what a requester gets instead of silence.

The router sends one when a ``request`` destination times out or has no responders; a worker
sends one when its handler raised, returned nothing, or the request was not a CloudEvent. One
format for both: ``data`` is ``{"error": problem, "event": {"id", "source", "type"}}``, the
latter naming the request event when it could be read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from cerouter.binding import DataKind, DecodedEvent, Mode
from cerouter.timestamps import format_timestamp

ERROR_EVENT_TYPE = "io.cerouter.error"
ROUTER_SOURCE = "cerouter"


def error_event(
    problem: str, cause: Mapping[str, object] | None, *, source: str = ROUTER_SOURCE
) -> DecodedEvent:
    """The error event answering a request whose event had attributes ``cause``."""
    attributes: dict[str, object] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": ERROR_EVENT_TYPE,
        "time": format_timestamp(datetime.now(UTC)),
        "datacontenttype": "application/json",
    }
    data: dict[str, object] = {"error": problem}
    if cause:
        data["event"] = {k: cause[k] for k in ("id", "source", "type") if k in cause}
    return DecodedEvent(attributes, Mode.STRUCTURED, data, DataKind.JSON)
