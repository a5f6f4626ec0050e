"""The CloudEvents NATS protocol binding, as the router uses it: structured and binary modes.

:func:`decode` turns a NATS message into a :class:`DecodedEvent` (plain attribute dict + data, no
SDK objects) and :func:`encode` writes one back in either mode, as a :class:`NatsMessage`;
``ce-`` header values are percent-encoded and decoded here too. The SDK's ``CloudEvent``, for
workers, the client and the CLI, is :mod:`cerouter.binding.sdk`'s.

Decisions on the binding's open questions (spec digest, section H) are listed in the README's
"NATS binding" section; the code below cites them where they apply.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any
from urllib.parse import quote, unquote

import orjson

from cerouter.binding.quoting import quoted
from cerouter.errors import BindingError
from cerouter.timestamps import format_timestamp

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
CE_PREFIX = "ce-"

# Everything printable in US-ASCII except space, double quote and percent stays as it is.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')
_NEEDS_ENCODING = re.compile(r'[^\x21-\x7e]|["%]')
_QUOTED_PAIR = re.compile(r"\\(.)")
_SCALARS = frozenset({str, int, bool})
# The order headers are written in: required attributes first, for people reading the wire.
_HEADER_ORDER = ("specversion", "id", "source", "type")


class Mode(StrEnum):
    """A content mode of the binding."""

    STRUCTURED = "structured"
    BINARY = "binary"


class DataKind(Enum):
    """What ``DecodedEvent.data`` holds."""

    ABSENT = "absent"  # the event has no data
    JSON = "json"  # a parsed JSON value (``None`` is an explicit JSON null)
    TEXT = "text"  # a string of non-JSON content (structured mode ``data`` member)
    BYTES = "bytes"  # raw bytes: a binary-mode body or a decoded ``data_base64``


@dataclass(frozen=True, slots=True)
class NatsMessage:
    """A NATS message as the binding produces or reads it: headers and payload bytes."""

    headers: dict[str, str]
    payload: bytes


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """A CloudEvent as the router handles it: attributes as the wire carried them, plus data.

    ``attributes`` maps attribute names to ``str``, ``int`` or ``bool``; in binary mode every value
    is the canonical string from its header, in structured mode the JSON value. ``null`` attributes
    are absent. ``mode`` is the content mode the event arrived in.
    """

    attributes: dict[str, Any]
    mode: Mode
    data: Any = None
    data_kind: DataKind = DataKind.ABSENT

    @property
    def datacontenttype(self) -> str | None:
        """The ``datacontenttype`` attribute, or ``None``."""
        value = self.attributes.get("datacontenttype")
        return None if value is None else str(value)

    def json_data(self, *, assume_json: bool = True) -> tuple[bool, Any]:
        """Return ``(True, value)`` when the data is JSON, else ``(False, None)``.

        Binary-mode bodies are parsed here, lazily, only when the content type declares JSON (or,
        with ``assume_json``, when it is absent, as the JSON format treats a missing type).
        Raises :class:`BindingError` when declared-JSON bytes do not parse.
        """
        if self.data_kind is DataKind.JSON:
            return True, self.data
        if self.data_kind is not DataKind.BYTES:
            return False, None
        ctype = self.datacontenttype
        if not (is_json_content_type(ctype) if ctype is not None else assume_json):
            return False, None
        try:
            return True, orjson.loads(self.data)
        except orjson.JSONDecodeError as exc:
            raise BindingError(
                f"data is not valid JSON ({exc}) but content type is {quoted(ctype)}"
            ) from None


def is_json_content_type(ctype: str | None) -> bool:
    """Tell whether a media type is JSON: ``*/json`` or ``*/*+json``, parameters and case ignored.

    ``None`` counts as JSON, as the JSON event format says of a missing ``datacontenttype``.
    """
    if ctype is None:
        return True
    media = ctype.split(";", 1)[0].strip().lower()
    return media.endswith("/json") or media.endswith("+json")


def is_text_content_type(ctype: str) -> bool:
    """Tell whether a media type is text: ``text/*``, ``*/xml`` or ``*/*+xml``."""
    media = ctype.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media.endswith("/xml") or media.endswith("+xml")


# --------------------------------------------------------------------------- header values


def canonical_string(value: Any) -> str:
    """The canonical string encoding of an attribute value (CloudEvents type system)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise BindingError(f"value {quoted(value)} has no CloudEvents type (string, integer, boolean)")


def encode_header_value(value: str) -> str:
    """Percent-encode a header value: space, ``"``, ``%`` and anything outside printable ASCII."""
    if _NEEDS_ENCODING.search(value) is None:
        return value
    try:
        return quote(value, safe=_SAFE, errors="strict")
    except UnicodeEncodeError:
        raise BindingError(f"value {quoted(value)} contains an unpaired surrogate") from None


def decode_header_value(header: str, raw: str) -> str:
    """Decode a ``ce-`` header value: trim, unquote an RFC 7230 quoted-string, percent-decode once.

    Percent-encoded bytes that are not valid UTF-8 (such as the overlong ``%C0%A0``) are rejected;
    a ``%`` not followed by two hex digits is kept as it is (the spec is silent; this is lenient
    in what it accepts and never produces such a value).
    """
    if "%" not in raw and '"' not in raw:  # the common case: nothing to decode
        return raw.strip(" \t")
    value = raw.strip(" \t")
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise BindingError(
            f"header {quoted(header)}: percent-encoded bytes are not valid UTF-8: {quoted(raw)}"
        ) from None


# --------------------------------------------------------------------------- decode


def decode(headers: Mapping[str, str] | None, payload: bytes) -> DecodedEvent:
    """Read a NATS message as a CloudEvent, detecting the content mode.

    ``Content-Type`` starting with ``application/cloudevents`` (any case) means structured;
    otherwise a ``ce-specversion`` header means binary; otherwise the payload is read as a
    structured JSON event, which is what senders that set no headers (sdk-go, sdk-rust) produce.
    """
    content_type: str | None = None
    ce_headers: list[tuple[str, str]] = []
    if headers:
        for key, value in headers.items():
            lowered = key.lower()
            if lowered == "content-type":
                content_type = value
            elif lowered.startswith(CE_PREFIX):
                ce_headers.append((key, value))
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media.startswith("application/cloudevents-batch"):
            raise BindingError(
                f"Content-Type {quoted(content_type)}: the NATS binding has no batch mode; "
                "publish one event per message"
            )
        if media.startswith("application/cloudevents"):
            if not media.endswith("+json"):
                raise BindingError(
                    f"Content-Type {quoted(content_type)}: only the JSON event format is supported"
                )
            return _decode_structured(payload)
    if any(key.lower() == "ce-specversion" for key, _ in ce_headers):
        return _decode_binary(ce_headers, content_type, payload)
    return _decode_structured(payload)


def _decode_structured(payload: bytes) -> DecodedEvent:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BindingError(
            f"structured mode: payload is not a JSON event ({exc}); a binary-mode message "
            "needs a ce-specversion header"
        ) from None
    if not isinstance(obj, dict):
        raise BindingError(
            f"structured mode: payload must be a JSON object, got {type(obj).__name__}"
        )
    has_data = "data" in obj
    data = obj.pop("data", None)
    b64 = obj.pop("data_base64", None)
    # The parsed object becomes the attribute dict itself: no copy on the hot path.
    attributes: dict[str, Any] = obj
    nulls: list[str] = []
    for name, value in obj.items():
        if value.__class__ not in _SCALARS:
            if value is None:  # JSON format: null is the same as absent
                nulls.append(name)
                continue
            raise BindingError(
                f"attribute {quoted(name)}: {quoted(value)} is not a CloudEvents type "
                "(string, integer or boolean)"
            )
    for name in nulls:
        del attributes[name]
    if b64 is not None:
        if has_data:
            raise BindingError("structured mode: 'data' and 'data_base64' are mutually exclusive")
        if not isinstance(b64, str):
            raise BindingError("structured mode: 'data_base64' must be a base64 string")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise BindingError("structured mode: 'data_base64' is not valid base64") from None
        return DecodedEvent(attributes, Mode.STRUCTURED, raw, DataKind.BYTES)
    if not has_data:
        return DecodedEvent(attributes, Mode.STRUCTURED)
    ctype = attributes.get("datacontenttype")
    if ctype is None or is_json_content_type(str(ctype)):
        return DecodedEvent(attributes, Mode.STRUCTURED, data, DataKind.JSON)
    if not isinstance(data, str):
        raise BindingError(
            "structured mode: 'data' must be a string for non-JSON datacontenttype "
            f"{quoted(ctype)} "
            "(or use 'data_base64')"
        )
    return DecodedEvent(attributes, Mode.STRUCTURED, data, DataKind.TEXT)


def _decode_binary(
    ce_headers: list[tuple[str, str]], content_type: str | None, payload: bytes
) -> DecodedEvent:
    attributes: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, raw in ce_headers:
        name = key[len(CE_PREFIX) :].lower()
        if name in seen:
            raise BindingError(
                f"attribute {quoted(name)} appears twice (headers {quoted(seen[name])} and "
                f"{quoted(key)})"
            )
        seen[name] = key
        attributes[name] = decode_header_value(key, raw)
    if "datacontenttype" not in attributes and content_type is not None:
        # sdk-go reads a plain Content-Type as datacontenttype in binary mode; accept it too.
        attributes["datacontenttype"] = content_type
    if not payload:
        return DecodedEvent(attributes, Mode.BINARY)
    return DecodedEvent(attributes, Mode.BINARY, payload, DataKind.BYTES)


# --------------------------------------------------------------------------- encode


def encode(event: DecodedEvent, mode: Mode) -> NatsMessage:
    """Write a decoded event as a NATS message in the given content mode."""
    return _encode_structured(event) if mode is Mode.STRUCTURED else _encode_binary(event)


def _encode_structured(event: DecodedEvent) -> NatsMessage:
    body: dict[str, Any] = dict(event.attributes)
    kind = event.data_kind
    if kind is DataKind.JSON or kind is DataKind.TEXT:
        body["data"] = event.data
    elif kind is DataKind.BYTES:
        ctype = event.datacontenttype
        if ctype is not None and is_json_content_type(ctype):
            body["data"] = event.json_data()[1]
        elif ctype is not None and is_text_content_type(ctype) and is_utf8(event.data):
            body["data"] = event.data.decode("utf-8")
        else:
            # No content type means no assumptions about the bytes (JSON format, section 3.1).
            body["data_base64"] = base64.b64encode(event.data).decode("ascii")
    try:
        payload = orjson.dumps(body)
    except TypeError as exc:
        raise BindingError(f"event cannot be written as JSON: {exc}") from None
    return NatsMessage({"Content-Type": STRUCTURED_CONTENT_TYPE}, payload)


def is_utf8(raw: bytes) -> bool:
    """Tell whether ``raw`` is valid UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _encode_binary(event: DecodedEvent) -> NatsMessage:
    attrs = event.attributes
    headers: dict[str, str] = {}
    for name in (*_HEADER_ORDER, *(n for n in attrs if n not in _HEADER_ORDER)):
        if name in attrs:
            headers[CE_PREFIX + name] = encode_header_value(canonical_string(attrs[name]))
    kind = event.data_kind
    payload = b""
    if kind is DataKind.JSON:
        try:
            payload = orjson.dumps(event.data)
        except TypeError as exc:  # such as data nested deeper than orjson writes (254 levels)
            raise BindingError(f"event data cannot be written as JSON: {exc}") from None
        if "datacontenttype" not in attrs:
            # The JSON format implies application/json; a binding SHOULD then say so explicitly.
            headers["ce-datacontenttype"] = "application/json"
    elif kind is DataKind.TEXT:
        payload = event.data.encode("utf-8")
    elif kind is DataKind.BYTES:
        payload = event.data
    return NatsMessage(headers, payload)
