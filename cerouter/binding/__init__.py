"""The CloudEvents NATS protocol binding: structured and binary content modes (public API).

``from cerouter.binding import from_message, to_binary, to_structured`` for SDK events;
:func:`decode` / :func:`encode` on :class:`DecodedEvent` for the router's fast path.
"""

from cerouter.binding.event import (
    CE_PREFIX,
    STRUCTURED_CONTENT_TYPE,
    DataKind,
    DecodedEvent,
    Mode,
    NatsMessage,
    canonical_string,
    decode,
    decode_header_value,
    encode,
    encode_header_value,
    is_json_content_type,
)
from cerouter.binding.sdk import from_message, from_sdk, to_binary, to_sdk, to_structured

__all__ = [
    "CE_PREFIX",
    "STRUCTURED_CONTENT_TYPE",
    "DataKind",
    "DecodedEvent",
    "Mode",
    "NatsMessage",
    "canonical_string",
    "decode",
    "decode_header_value",
    "encode",
    "encode_header_value",
    "from_message",
    "from_sdk",
    "is_json_content_type",
    "to_binary",
    "to_sdk",
    "to_structured",
]
