"""The HTTP gateway's side of the ingress contract: a settler that remembers, and a reply inbox.

An HTTP request is an :class:`~cerouter.types.Inbound` like any NATS message, with two
differences the router core never sees:

* its producer is waiting for the outcome, so the :class:`HttpSettler` only *records* how the
  router settled it (ack, retry after a delay, terminate); the gateway turns that and the
  :class:`~cerouter.ingress.base.Verdict` into a status code. "Retry" becomes a 503 with
  ``Retry-After``: the producer is the one who retries.
* a ``request:`` route's answer must come back to the HTTP client, so every request carries a
  reply subject of the gateway's own :class:`ReplyInbox` (one wildcard subscription for all).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from enum import Enum

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

HTTP_SUBJECT = "http:/events"
"""The ``subject`` of an event that came over HTTP, as dead letters and logs show it."""


class Settled(Enum):
    """How the router settled one HTTP-borne event."""

    PENDING = "pending"  # not settled (the router gave up before settling: treat as retry)
    ACKED = "acked"
    RETRY = "retry"
    TERMINATED = "terminated"


class HttpSettler:
    """Records the router's settlement of one request; the producer's retry is attempt 2."""

    __slots__ = ("_peer", "delay", "settled")

    def __init__(self, peer: str) -> None:
        self._peer = peer
        self.settled = Settled.PENDING
        self.delay = 0.0

    @property
    def attempt(self) -> int:
        """Always the first: a retried POST is a new request."""
        return 1

    @property
    def identity(self) -> str:
        """Where the request came from (dead letters record it as their origin)."""
        return f"http {self._peer}"

    async def ack(self) -> None:
        """Every destination accepted it (or it was dead-lettered as it should be)."""
        self.settled = Settled.ACKED

    async def retry(self, delay: float) -> None:
        """Not delivered now: the producer should try again after ``delay`` seconds."""
        self.settled = Settled.RETRY
        self.delay = delay

    async def terminate(self) -> None:
        """Dead-lettered for good: the producer is told why, and must not retry."""
        self.settled = Settled.TERMINATED


MAX_ATTEMPTS = 2
"""An HTTP event is ``retryable`` (attempt 1 of 2): a failed delivery becomes a 503 with
``Retry-After`` for the producer to retry, not a dead letter."""


class ReplyInbox:
    """One subscription that collects the answers of ``request:`` routes for waiting requests."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = f"_INBOX.cerouter-http-{secrets.token_hex(8)}."
        self._counter = itertools.count()
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._sub: Subscription | None = None

    async def start(self) -> None:
        """Subscribe to the inbox."""
        self._sub = await self._nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def stop(self) -> None:
        """Unsubscribe; requests still waiting get no answer."""
        if self._sub is not None:
            with contextlib.suppress(Exception):  # a closed connection has nothing to undo
                await self._sub.unsubscribe()
        for future in self._waiting.values():
            future.cancel()
        self._waiting.clear()

    def reserve(self) -> tuple[str, asyncio.Future[Msg]]:
        """A fresh reply subject and the future its first answer completes."""
        token = str(next(self._counter))
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._waiting[token] = future
        return self._prefix + token, future

    def release(self, subject: str) -> None:
        """Forget ``subject`` (answered, or the request is over)."""
        future = self._waiting.pop(subject.removeprefix(self._prefix), None)
        if future is not None and not future.done():
            future.cancel()

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.get(msg.subject.removeprefix(self._prefix))
        if future is not None and not future.done():
            future.set_result(msg)
