"""The SDK edge of the binding: the cloudevents SDK's ``CloudEvent`` to and from NATS messages.

For workers, the client and the CLI (the router itself stays on :class:`DecodedEvent`):
:func:`from_message` reads a NATS message in either content mode, :func:`to_structured` and
:func:`to_binary` write one; :func:`to_sdk` and :func:`from_sdk` convert a decoded event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent

from cerouter.binding.event import (
    DataKind,
    DecodedEvent,
    Mode,
    NatsMessage,
    canonical_string,
    decode,
    encode,
    is_json_content_type,
    is_text_content_type,
    is_utf8,
)
from cerouter.binding.quoting import clipped
from cerouter.errors import BindingError
from cerouter.timestamps import parse_timestamp


def to_sdk(event: DecodedEvent) -> CloudEvent:
    """Build the SDK's ``CloudEvent`` from a decoded event, with data decoded per its type.

    JSON data becomes Python values, text becomes ``str``, other bytes stay ``bytes``.
    """
    attributes = dict(event.attributes)
    had_time = "time" in attributes
    if had_time:
        try:
            attributes["time"] = parse_timestamp(str(attributes["time"]))
        except ValueError as exc:
            raise BindingError(f"attribute 'time': {clipped(str(exc))}") from None
    data: Any
    is_json, value = event.json_data(assume_json=False)
    if is_json:
        data = value
    elif event.data_kind is DataKind.TEXT:
        data = event.data
    elif event.data_kind is DataKind.BYTES:
        ctype = event.datacontenttype
        text_ok = ctype is not None and is_text_content_type(ctype) and is_utf8(event.data)
        data = event.data.decode("utf-8") if text_ok else event.data
    else:
        data = None
    try:
        result = CloudEvent(attributes, data)
    except BaseCloudEventException as exc:
        raise BindingError(clipped(str(exc))) from None
    if not had_time:
        # The SDK stamps a missing `time` with now(); a router must not invent attributes.
        result.get_attributes().pop("time", None)
    return result


def from_sdk(event: CloudEvent) -> DecodedEvent:
    """Turn an SDK ``CloudEvent`` into a decoded event (for encoding with :func:`encode`)."""
    attributes = {
        name: value if isinstance(value, str | bool | int) else canonical_string(value)
        for name, value in event.get_attributes().items()
        if value is not None
    }
    data = event.get_data()
    if data is None:
        return DecodedEvent(attributes, Mode.STRUCTURED)
    if isinstance(data, bytes | bytearray):
        return DecodedEvent(attributes, Mode.STRUCTURED, bytes(data), DataKind.BYTES)
    ctype = attributes.get("datacontenttype")
    if isinstance(data, str) and ctype is not None and not is_json_content_type(str(ctype)):
        return DecodedEvent(attributes, Mode.STRUCTURED, data, DataKind.TEXT)
    return DecodedEvent(attributes, Mode.STRUCTURED, data, DataKind.JSON)


def from_message(headers: Mapping[str, str] | None, payload: bytes) -> CloudEvent:
    """Read a NATS message (either content mode) as the SDK's ``CloudEvent``."""
    return to_sdk(decode(headers, payload))


def to_structured(event: CloudEvent) -> NatsMessage:
    """Write an SDK ``CloudEvent`` in structured mode (JSON event format payload)."""
    return encode(from_sdk(event), Mode.STRUCTURED)


def to_binary(event: CloudEvent) -> NatsMessage:
    """Write an SDK ``CloudEvent`` in binary mode (``ce-`` headers, data as payload)."""
    return encode(from_sdk(event), Mode.BINARY)
