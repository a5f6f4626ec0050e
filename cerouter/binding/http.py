"""The CloudEvents HTTP protocol binding (1.0.2), as the gateway reads requests and writes replies.

Reading does not decode the event: it turns a request into the ``(headers, payload)`` pairs the
NATS binding's :func:`~cerouter.binding.event.decode` reads, so an event posted over HTTP is
decoded, percent-decoding included, by exactly the code that decodes one published to NATS.

* **structured**: ``Content-Type: application/cloudevents+json``; the body is the event.
* **binary**: a ``ce-specversion`` header; ``ce-*`` headers are the attributes and
  ``Content-Type`` is ``datacontenttype`` (HTTP binding, section 3.1.1).
* **batch**: ``Content-Type: application/cloudevents-batch+json``; a JSON array of structured
  events, each handed on as one structured message.

The W3C trace-context headers ``traceparent`` and ``tracestate`` (the transport's, not the
CloudEvents ``ce-traceparent`` extension) are carried on to every message, so the router's span
continues the HTTP client's trace.

Anything else is an :class:`UnsupportedMedia` (415); a request that names a mode but breaks it
(a batch that is not an array, a repeated ``ce-`` header) is a
:class:`~cerouter.errors.BindingError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

import orjson

from cerouter.binding.event import CE_PREFIX, STRUCTURED_CONTENT_TYPE, DecodedEvent, Mode, encode
from cerouter.binding.quoting import quoted
from cerouter.errors import BindingError

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
TRACE_CONTEXT = frozenset({"traceparent", "tracestate"})
"""The W3C trace-context request headers, handed on with each event (lower case)."""


class HttpMode(StrEnum):
    """A content mode of the HTTP binding."""

    STRUCTURED = "structured"
    BINARY = "binary"
    BATCH = "batch"


class UnsupportedMedia(BindingError):
    """The request is not a CloudEvent in any mode the gateway reads (HTTP 415)."""


class TooManyEvents(BindingError):
    """A batch holds more events than ``http.batch.max_events`` allows (HTTP 413)."""


@dataclass(frozen=True, slots=True)
class HttpEvents:
    """A request read as NATS-binding messages: one for structured and binary, N for batch."""

    mode: HttpMode
    messages: tuple[tuple[dict[str, str], bytes], ...]


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower-cased, without parameters."""
    if content_type is None:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def read_request(
    headers: Iterable[tuple[str, str]], body: bytes, *, batch_max: int | None
) -> HttpEvents:
    """Read an HTTP request (``headers`` as received, names in any case) as binding messages.

    ``batch_max`` is the most events a batch may hold; ``None`` refuses batch mode.
    """
    content_type: str | None = None
    ce: dict[str, str] = {}
    trace: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-type":
            content_type = value
        elif lowered in TRACE_CONTEXT:
            trace[lowered] = value
        elif lowered.startswith(CE_PREFIX):
            if lowered in ce:
                raise BindingError(f"header {quoted(name)} appears more than once")
            ce[lowered] = value
    events = _read(content_type, ce, body, batch_max)
    if trace:
        for message, _ in events.messages:
            message.update(trace)
    return events


def _read(
    content_type: str | None, ce: dict[str, str], body: bytes, batch_max: int | None
) -> HttpEvents:
    media = media_type(content_type)
    if media == BATCH_CONTENT_TYPE:
        return _batch(body, batch_max)
    if media.startswith("application/cloudevents"):
        if not media.endswith("+json"):
            raise UnsupportedMedia(
                f"Content-Type {quoted(content_type)}: only the JSON event format is supported"
            )
        assert content_type is not None  # a media type was found in it
        return HttpEvents(HttpMode.STRUCTURED, (({"Content-Type": content_type}, body),))
    if "ce-specversion" in ce:
        message = dict(ce)
        if content_type is not None:
            # HTTP binding 3.1.1: Content-Type *is* datacontenttype (the NATS decoder reads it
            # so when no ce-datacontenttype is present); a ce-datacontenttype header is not part
            # of the HTTP binding and must not override it.
            message.pop("ce-datacontenttype", None)
            message["Content-Type"] = content_type
        return HttpEvents(HttpMode.BINARY, ((message, body),))
    shown = quoted(content_type) if content_type is not None else "none"
    raise UnsupportedMedia(
        f"not a CloudEvent: Content-Type {shown}; send application/cloudevents+json "
        f"(structured), {BATCH_CONTENT_TYPE} (batch) or ce-* headers with ce-specversion "
        "(binary)"
    )


def _batch(body: bytes, batch_max: int | None) -> HttpEvents:
    if batch_max is None:
        raise UnsupportedMedia(
            f"{BATCH_CONTENT_TYPE}: batch mode is not enabled on this gateway (http.batch)"
        )
    try:
        entries = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BindingError(f"batch: the body is not JSON ({exc})") from None
    if not isinstance(entries, list):
        raise BindingError(f"batch: the body must be a JSON array, got {type(entries).__name__}")
    if len(entries) > batch_max:
        raise TooManyEvents(f"batch: {len(entries)} events, over the limit of {batch_max}")
    structured = {"Content-Type": STRUCTURED_CONTENT_TYPE}
    # Each entry goes on as a structured message; a non-object entry fails in the pipeline,
    # like any structured message that is not a JSON object, with its own status.
    return HttpEvents(
        HttpMode.BATCH, tuple((dict(structured), orjson.dumps(entry)) for entry in entries)
    )


def write_event(event: DecodedEvent, mode: HttpMode) -> tuple[dict[str, str], bytes]:
    """An event as an HTTP response in ``mode`` (batch answers in structured mode)."""
    if mode is not HttpMode.BINARY:
        message = encode(event, Mode.STRUCTURED)
        return {"content-type": STRUCTURED_CONTENT_TYPE}, message.payload
    message = encode(event, Mode.BINARY)
    headers = dict(message.headers)
    content_type = headers.pop("ce-datacontenttype", None)
    if content_type is not None:
        # Percent-encoded as a ce- header; Content-Type carries it unencoded.
        headers["content-type"] = unquote(content_type)
    return headers, message.payload
