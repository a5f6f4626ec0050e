"""An SSE feed's frames and its bounded buffer, whatever the NATS source it reads.

:class:`Feed` holds at most ``buffer`` frames between the NATS side
(:mod:`cerouter.gateway.sse_source`) and the HTTP side (:mod:`cerouter.gateway.sse`), decodes and
filters each message into one Server-Sent Events frame, and ends with an :class:`End`: the
``overflow`` frame of a client that did not keep up, or a reason for the logs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
import orjson
from nats.aio.msg import Msg

from cerouter.binding import DecodedEvent, decode
from cerouter.binding.http import HttpMode, write_event
from cerouter.errors import BindingError
from cerouter.log import get_logger
from cerouter.routing.filters import DataGetter, Filter, no_data
from cerouter.routing.table import LazyData

log = get_logger("cerouter.gateway")


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """What a client asked to read.

    ``start`` is the first stream sequence wanted (``Last-Event-ID`` + 1), ``None`` for events
    from now on; ``contiguous`` says the subject covers the whole stream, so a jump of the stream
    sequence means lost messages.
    """

    subject: str
    stream: str | None
    match: Filter
    start: int | None = None
    contiguous: bool = False
    name: str | None = None  # the named subscription, for logs


class FeedError(Exception):
    """The feed cannot start: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class End:
    """The end of a feed: why (for logs), and the frame to send last, if any."""

    reason: str
    frame: bytes | None = None


def event_frame(event: DecodedEvent, seq: int | None) -> bytes:
    """One SSE frame: ``id:`` (stream feeds), ``event:`` the type, ``data:`` the JSON event.

    The JSON comes from orjson, which never writes a raw line break (a newline inside a string
    is written ``\\n``), so the event is always one ``data:`` line. A ``type`` containing a line
    break would end the ``event:`` field early and smuggle in fields of its own: refused.
    """
    kind = event.attributes.get("type")
    if not isinstance(kind, str) or not kind:
        raise BindingError("the event has no type")
    if "\n" in kind or "\r" in kind:
        raise BindingError("the event's type contains a line break")
    _, body = write_event(event, HttpMode.STRUCTURED)
    head = b"id: %d\n" % seq if seq is not None else b""
    return b"%sevent: %s\ndata: %s\n\n" % (head, kind.encode(), body)


def control_frame(name: str, data: dict[str, Any], seq: int | None = None) -> bytes:
    """A frame of the gateway's own (``gap``, ``overflow``) with JSON data."""
    head = b"id: %d\n" % seq if seq is not None else b""
    return b"%sevent: %s\ndata: %s\n\n" % (head, name.encode(), orjson.dumps(data))


class Feed:
    """One client's source and buffer: :meth:`start`, then :meth:`take` until it returns an
    :class:`End`, and :meth:`close` in any case."""

    # Whether a frame that does not fit ends the feed (else the feed itself keeps to the room
    # left, and a pulled batch may bring a few frames of the gateway's own on top).
    overflows_when_full = True

    def __init__(self, spec: FeedSpec, buffer: int) -> None:
        self.spec = spec
        self.delivered = 0  # event frames handed to the writer
        self.gaps = 0  # gap frames sent, and the sequences they said were lost (metrics)
        self.missed = 0
        self.skipped = 0  # messages that were not a CloudEvent the gateway could write
        self._limit = buffer
        self._frames: deque[bytes] = deque()
        self._end: End | None = None
        self._ready = asyncio.Event()  # a frame or the end is there
        self._taken = asyncio.Event()  # the writer took frames
        self._last_id: int | None = None  # the id of the last frame buffered
        self._test = spec.match.test
        self._needs_data = spec.match.needs_data
        self._closed = False

    async def start(self) -> None:
        """Subscribe; raises :class:`FeedError` when the source cannot be read."""
        try:
            await self._subscribe()
        except nats.js.errors.NotFoundError:
            detail = f"stream '{self.spec.stream}' does not exist on the server"
            raise FeedError(404, detail) from None
        except nats.js.errors.APIError as exc:
            detail = f"stream '{self.spec.stream}' cannot be read: {exc.description}"
            raise FeedError(409, detail) from None
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            detail = f"NATS is not available: {exc or type(exc).__name__}"
            raise FeedError(503, detail) from None

    async def _subscribe(self) -> None:
        raise NotImplementedError

    async def _release(self) -> None:
        """Let go of everything held on the NATS server (idempotent, never raises)."""
        raise NotImplementedError

    async def take(self) -> list[bytes] | End:
        """The frames buffered (at least one, waiting for it), or the end once they are out."""
        while not self._frames and self._end is None:
            self._ready.clear()
            await self._ready.wait()
        if self._frames:
            frames = list(self._frames)
            self._frames.clear()
            self._taken.set()
            return frames
        assert self._end is not None
        return self._end

    @property
    def room(self) -> int:
        """How many frames the buffer can take now."""
        return self._limit - len(self._frames)

    def _push(self, frame: bytes, seq: int | None = None) -> bool:
        """Buffer a frame (``seq``: its id); ``False`` (the feed ends) when the buffer is full."""
        if self._end is not None:
            return False
        if self.room <= 0 and self.overflows_when_full:
            self._overflow()
            return False
        self._frames.append(frame)
        if seq is not None:
            self._last_id = seq
        self._ready.set()
        return True

    def _finish(self, end: End) -> None:
        if self._end is None:
            self._end = end
            self._ready.set()

    def _overflow(self) -> None:
        resumable = self.spec.stream is not None
        detail = (
            "the client did not keep up with the feed; reconnect with Last-Event-ID to resume "
            "after the last event received"
            if resumable
            else "the client did not keep up with the feed; a subject feed cannot be resumed: "
            "events published until the client reconnects are not delivered"
        )
        last = str(self._last_id) if self._last_id is not None else None
        data = {"buffered": len(self._frames), "last_event_id": last, "detail": detail}
        log.warning(
            "sse client too slow: stream ended",
            subscription=self.spec.name,
            subject=self.spec.subject,
            stream=self.spec.stream,
            buffered=len(self._frames),
        )
        self._finish(End("overflow", control_frame("overflow", data)))

    def _offer(self, msg: Msg, seq: int | None) -> None:
        """Filter and frame one message; one that is not a CloudEvent is skipped, counted."""
        try:
            event = decode(msg.headers, msg.data)
            data: DataGetter = LazyData(event) if self._needs_data else no_data
            if not self._test(event.attributes, data):
                return
            frame = event_frame(event, seq)
        except BindingError as exc:
            self._skip(msg, seq, str(exc))
            return
        if self._push(frame, seq):
            self.delivered += 1

    def _skip(self, msg: Msg, seq: int | None, why: str) -> None:
        self.skipped += 1
        where = f"seq {seq}" if seq is not None else f"a message on {msg.subject}"
        log.debug("sse feed skipped a message", subject=msg.subject, seq=seq, error=why)
        # A comment line: EventSource ignores it, a person reading with curl sees why.
        note = f": skipped {where} (not a CloudEvent); {self.skipped} in all\n\n"
        self._push(note.encode())

    async def close(self, reason: str) -> None:
        """Let go of NATS (idempotent); ``reason`` is logged unless the feed ended by itself."""
        if self._closed:
            return
        self._closed = True
        self._finish(End(reason))
        await self._release()
        assert self._end is not None
        log.info(
            "sse stream ended",
            reason=self._end.reason,
            subscription=self.spec.name,
            subject=self.spec.subject,
            stream=self.spec.stream,
            delivered=self.delivered,
            skipped=self.skipped,
        )
