"""A callback-driven JetStream pull consumer with a bounded number of messages in flight.

nats-py's ``PullSubscription.fetch`` reads its inbox through ``next_msg`` (the queue path that
costs about 4x a callback, DESIGN.md section 3) and, when a fetch is cancelled at shutdown, leaves
delivered messages in a queue nobody reads, so they wait ``ack_wait`` before redelivery. This
class speaks the pull protocol itself instead:

* one inbox subscription with a callback receives messages and status replies;
* pull requests (``$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>``) ask for at most the free
  capacity, so ``in flight + requested <= capacity`` and there is never a local backlog;
* a new request goes out when at least half the capacity is free (fewer, larger requests);
* requests expire after ``expires`` seconds (status 408 says how many were never filled) and
  carry idle heartbeats; when neither messages nor heartbeats arrive for a while although
  requests are open (the server restarted, the connection was replaced), the open requests are
  presumed lost and re-issued.

At shutdown, :meth:`stop` stops requesting; the owner deals with whatever still arrives (a
worker NAKs it so another worker gets it at once, the router delivers it) and then calls
:meth:`close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cerouter.log import get_logger

log = get_logger("cerouter.nats.pull")

_PENDING = "Nats-Pending-Messages"
# Statuses that end a pull request: 404 no messages, 408 expired, 409 refused/interrupted.
_FINAL = frozenset({"404", "408", "409"})
_NO_RESPONDERS = "503"


class PullConsumer:
    """Pull messages of one durable consumer and hand each to ``on_message``.

    ``on_message`` is called on the event loop, one message at a time, and must not block; the
    owner calls :meth:`release` once per message when its work is finished (acked, NAKed or
    terminated). ``recover`` is awaited when the consumer seems to be gone (deleted, or no
    JetStream responder), to re-create it before pulling again.
    """

    def __init__(
        self,
        nc: Client,
        stream: str,
        consumer: str,
        capacity: int,
        on_message: Callable[[Msg], None],
        *,
        recover: Callable[[], Awaitable[None]] | None = None,
        expires: float = 10.0,
        heartbeat: float = 2.0,
        api_prefix: str = "$JS.API",
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._nc = nc
        self._capacity = capacity
        self._threshold = max(1, capacity // 2)
        self._on_message = on_message
        self._recover = recover
        self._expires_ns = int(expires * 1e9)
        heartbeat = min(heartbeat, expires / 2)  # the server refuses heartbeats >= expires
        self._heartbeat = heartbeat
        self._heartbeat_ns = int(heartbeat * 1e9)
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._where = f"{stream}/{consumer}"
        self._inbox = ""
        self._sub: Subscription | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._requested = 0
        self._last_activity = time.monotonic()
        self._needs_recovery = False
        self._stopped = False

    @property
    def in_flight(self) -> int:
        """Messages handed to ``on_message`` and not yet released."""
        return self._in_flight

    async def start(self) -> None:
        """Subscribe the inbox and send the first pull request."""
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_inbox)
        self._pump_task = asyncio.create_task(self._pump(), name=f"pull {self._where}")
        self._wake.set()

    def release(self) -> None:
        """One message is finished: its slot is free again."""
        self._in_flight -= 1
        if self._capacity - self._in_flight - self._requested >= self._threshold:
            self._wake.set()

    async def stop(self) -> None:
        """Stop sending pull requests (messages of open requests may still arrive)."""
        self._stopped = True
        self._wake.set()
        if self._pump_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None

    async def close(self) -> None:
        """Stop, then remove the inbox; the server drops open requests nobody listens to."""
        await self.stop()
        if self._sub is not None and not self._nc.is_closed:
            sub, self._sub = self._sub, None
            with contextlib.suppress(Exception):  # a closing connection is as good as drained
                await sub.drain()  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------ inbox

    async def _on_inbox(self, msg: Msg) -> None:
        self._last_activity = time.monotonic()
        headers = msg.headers
        status = headers.get("Status") if headers else None
        # A stored message carries a reply subject (for its ack); a pull status never does, so
        # a producer's own "Status" header cannot pass for one.
        if status is None or msg.reply:
            if self._requested > 0:
                self._requested -= 1
            self._in_flight += 1
            self._on_message(msg)
            return
        if status in _FINAL or status == _NO_RESPONDERS:
            self._request_ended(status, headers or {})
        # 100: idle heartbeat, the activity timestamp above is all it is for.

    def _request_ended(self, status: str, headers: dict[str, str]) -> None:
        pending = headers.get(_PENDING)
        if pending is not None and pending.isdigit():
            self._requested = max(0, self._requested - int(pending))
        else:
            # No count: forget every open request; at worst a later one over-fills by a little,
            # and the owner's per-handler limits still hold.
            self._requested = 0
        description = str(headers.get("Description", ""))
        if status == _NO_RESPONDERS or "Consumer Deleted" in description:
            self._needs_recovery = True
            log.warning("pull consumer missing", consumer=self._where, status=status)
        elif status == "409" and pending is None:
            log.warning("pull request refused", consumer=self._where, reason=description)
        self._wake.set()

    # ------------------------------------------------------------------ requests

    async def _pump(self) -> None:
        # One task sends every pull request, so the bookkeeping needs no locks.
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._heartbeat)
            self._wake.clear()
            if self._stopped:
                return
            if self._needs_recovery:
                await self._do_recover()
                continue
            if self._requested > 0 and self._stale():
                log.info("pull requests presumed lost; re-issuing", consumer=self._where)
                self._requested = 0
            free = self._capacity - self._in_flight - self._requested
            if free >= self._threshold or (free > 0 and self._requested == 0):
                await self._request(free)

    def _stale(self) -> bool:
        # Heartbeats come every `heartbeat` seconds while a request waits; allow two to go missing.
        return time.monotonic() - self._last_activity > 2 * self._heartbeat + 0.5

    async def _request(self, batch: int) -> None:
        body = orjson.dumps(
            {"batch": batch, "expires": self._expires_ns, "idle_heartbeat": self._heartbeat_ns}
        )
        self._requested += batch
        self._last_activity = time.monotonic()
        try:
            await self._nc.publish(self._next_subject, body, reply=self._inbox)
        except Exception as exc:  # closed or reconnecting connection: retry on the next tick
            self._requested -= batch
            log.warning("pull request failed", consumer=self._where, error=str(exc))

    async def _do_recover(self) -> None:
        self._needs_recovery = False
        self._requested = 0
        if self._recover is not None:
            try:
                await self._recover()
            except Exception as exc:
                log.error("cannot re-create consumer", consumer=self._where, error=str(exc))
        # Pace retries: a consumer that stays missing must not turn into a busy loop.
        await asyncio.sleep(min(1.0, self._heartbeat))
        self._wake.set()
