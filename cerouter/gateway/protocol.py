"""uvicorn's httptools protocol with two guards it lacks: a bounded request head, and a deadline.

httptools (llhttp) has no header limit, and uvicorn passes none: a 64 MiB header value is
buffered whole (measured: RSS +64 MiB) and, as httptools appends each read to the partial value
(``bytes +=``), in quadratic time (5.8 s of CPU, with the router's event loop blocked). uvicorn's
``h11`` protocol bounds the head (``h11_max_incomplete_event_size``) but takes about three times
the CPU per request (measured for a small POST: 120-170 µs against 40-50 µs). So the gateway
keeps httptools and bounds it here, for no measurable cost (40-50 µs with the guards; a 64 MiB
header is refused after 8 KiB, RSS and CPU unchanged):

* **size**: while a head is incomplete, reads are fed to the parser in pieces no larger than what
  ``http.limits.max_headers`` still allows, and the bytes counted; one byte over is a 431 and the
  connection closes. The head in memory never exceeds the limit by more than one piece.
* **time**: from the connection's first moment, and from the first byte of each later request,
  the head must arrive within ``http.limits.read_timeout`` (408, then close): a client that
  connects and says nothing, or sends a header a byte at a time (slowloris), does not keep its
  connection. Between requests uvicorn's keep-alive timeout (5 s) applies; the body has its own
  deadline in :func:`cerouter.gateway.ingest.post_events`.
* **answered early** (a 413 before the body is read, a 401 before it is looked at): closing at
  once would make the kernel reset the connection over the unread upload, and the client would
  see the reset, not the answer. So the rest of the body is read and dropped, as nginx's
  lingering close does, but at most :data:`LINGER_BYTES` of it and for at most ``read_timeout``;
  then the connection closes.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, cast

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cerouter.gateway.outcome import PROBLEM_CONTENT_TYPE, problem
from cerouter.log import get_logger

log = get_logger("cerouter.gateway")

_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}

LINGER_BYTES = 1024 * 1024
"""How much of a body answered before it was read is read on (and dropped) before closing."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` refusing heads over :attr:`max_head` bytes or slower than
    :attr:`head_timeout` seconds; :meth:`with_limits` makes one with the gateway's limits."""

    max_head: ClassVar[int] = 32 * 1024
    head_timeout: ClassVar[float] = 30.0

    @classmethod
    def with_limits(cls, max_head: int, head_timeout: float) -> type[GuardedHttpToolsProtocol]:
        """A subclass with these limits (uvicorn instantiates the class it is given)."""
        attrs = {"max_head": max_head, "head_timeout": head_timeout}
        return cast(type[GuardedHttpToolsProtocol], type(cls.__name__, (cls,), attrs))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # reading a request head (or waiting for one)
        self._head_bytes = 0
        self._heads = 0  # heads completed on this connection
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger: int | None = None  # bytes still to drop after an early answer
        self._linger_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection; its first head is due within :attr:`head_timeout`."""
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadlines of a closed connection."""
        self._disarm()
        self._stop_lingering()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, a head in pieces within the size limit."""
        if self._linger is not None:
            self._linger -= len(data)
            if self._linger < 0:
                self.transport.close()
                return
        while data and self._in_head and not self.transport.is_closing():
            self._arm()  # any byte of a head starts its clock (even a bare CRLF)
            room = self.max_head - self._head_bytes + 1
            piece, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
            heads = self._heads
            super().data_received(piece)
            if not self._in_head:
                break
            if self._heads != heads:
                # One head ended and the next began inside this piece (pipelining), where is
                # unknown: count the new one from the end of the piece, one piece short at most.
                self._head_bytes = 0
                continue
            self._head_bytes += len(piece)
            if self._head_bytes > self.max_head:
                self._refuse(431, f"the request head is larger than {self.max_head} bytes")
                return
        if data and not self.transport.is_closing():
            super().data_received(data)

    def on_headers_complete(self) -> None:
        """The head is in: stop its clock and its count."""
        self._in_head = False
        self._heads += 1
        self._head_bytes = 0
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The body is in: what comes next is the head of another request."""
        super().on_message_complete()
        self._in_head = True
        if self.cycle is not None and self.cycle.response_complete:
            # Answered before its body was in: uvicorn's keep-alive timer started (and stopped,
            # at the body's next byte) before now; the connection is idle from here.
            self._stop_lingering()
            self._arm()

    def on_response_complete(self) -> None:
        """Answered; when the body is still coming, read it on for a while (see the module)."""
        super().on_response_complete()
        answered_the_latest = self.cycle is not None and self.cycle.response_complete
        # (Not when the body coming is a pipelined request's, one not answered yet.)
        if not self._in_head and answered_the_latest and not self.transport.is_closing():
            self._linger = LINGER_BYTES
            self._linger_timer = self.loop.call_later(self.head_timeout, self.transport.close)

    def _stop_lingering(self) -> None:
        self._linger = None
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head is slow while the request before it is answered: let that
            # answer finish, then close.
            self.cycle.keep_alive = False
            return
        self._refuse(408, f"the request head did not arrive within {self.head_timeout:g}s")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` with a problem body and close (the rest is not read)."""
        log.debug("request refused before its head was read", status=status, peer=self.client)
        if self.cycle is not None and not self.cycle.response_complete:
            # The previous request's answer is still being written: no room for a second.
            self.transport.close()
            return
        body = orjson.dumps(problem(status, detail).body)
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"content-type: {PROBLEM_CONTENT_TYPE}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()
