"""The NATS side of an SSE feed: what fills its buffer (:mod:`cerouter.gateway.sse_feed`).

Two kinds of :class:`~cerouter.gateway.sse_feed.Feed`:

* :class:`StreamFeed` reads a JetStream stream through an ephemeral pull consumer that starts at
  an explicit sequence; each frame's ``id`` is the stream sequence, so a client can resume. It
  fetches only as many messages as the buffer has room for: a client catching up on a backlog
  is fed as fast as it reads, and what it has not read yet stays in the stream, not in memory.
  A client that leaves the buffer full for a whole ``patience`` period (the keep-alive period)
  is too slow: the feed ends with ``overflow`` (it resumes with ``Last-Event-ID``).
* :class:`SubjectFeed` reads a core NATS subject: live only, no ids. Nothing can wait
  anywhere but in the buffer, so a message that does not fit ends the feed with ``overflow``.

Lost events are said, not hidden. A stream feed knows the sequence it expects next; when the
messages from there on are gone (purged, or dropped by ``max_msgs``/``max_age``/``max_bytes``),
it sends a ``gap`` frame saying how many sequences were lost before it goes on from the first
one still there. On resume this is checked against the stream's first sequence at once; while
running, a jump of the stream sequence is a gap when the feed's subject covers every subject of
the stream (sequences are then contiguous). A feed narrowed to some of the stream's subjects
sees jumps all the time (the other subjects' messages), so there only the resume is checked.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from cerouter.gateway.sse_feed import End, Feed, FeedSpec, control_frame
from cerouter.nats.connection import full_flush

FETCH_WAIT = 5.0
"""How long one pull waits for new messages (it returns as soon as there is one)."""
FETCH_HEARTBEAT = 1.0
"""The server's sign of life during a pull, so a lost consumer is told from an idle stream."""
INACTIVE_THRESHOLD = 60.0
"""When the server drops a consumer nobody pulls from (a gateway that died without cleanup)."""
RETRY_DELAY = 0.5
"""The pause before pulling again after NATS failed a pull (reconnecting, say)."""
CLEANUP_TIMEOUT = 2.0
"""How long deleting a consumer may take (the server drops it anyway once unused)."""

# The consumer is not there any more (deleted, or dropped for inactivity): make a new one.
_CONSUMER_GONE = (
    nats.js.errors.NotFoundError,
    nats.js.errors.ServiceUnavailableError,
    nats.errors.NoRespondersError,
)


class SubjectFeed(Feed):
    """Live events of a core NATS subject (no ids, no resume)."""

    def __init__(self, nc: Client, spec: FeedSpec, buffer: int) -> None:
        super().__init__(spec, buffer)
        self._nc = nc
        self._sub: Subscription | None = None
        self._releasing: asyncio.Task[None] | None = None

    async def _subscribe(self) -> None:
        self._sub = await self._nc.subscribe(self.spec.subject, cb=self._on_msg)
        await full_flush(self._nc)  # registered before the response says the feed is open

    async def _on_msg(self, msg: Msg) -> None:
        if self._end is not None:
            return
        self._offer(msg, None)
        if self._end is not None:  # it overflowed: let go of the subscription now
            # From a task: unsubscribing cancels the subscription's task, which runs this.
            self._releasing = asyncio.create_task(self._release())
        elif len(self._frames) * 2 >= self._limit:
            # A burst arrives in one read, callback after callback: let the writer have a
            # turn before the buffer is full, so only a client that is slow overflows.
            await asyncio.sleep(0)

    async def _release(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # a closed connection has nothing to undo
                await sub.unsubscribe()
        if self._releasing is not None and self._releasing is not asyncio.current_task():
            await self._releasing


class StreamFeed(Feed):
    """A stream from an explicit sequence, pulled as the buffer has room (resumable by id).

    A pull of ``room`` messages can bring a ``gap`` or a skip note with each, so the buffer holds
    at most twice ``buffer`` frames.
    """

    overflows_when_full = False

    def __init__(
        self, js: JetStreamContext, spec: FeedSpec, buffer: int, *, patience: float
    ) -> None:
        assert spec.stream is not None
        super().__init__(spec, buffer)
        self._js = js
        self._stream = spec.stream
        self._patience = patience
        self._next = 1  # the stream sequence expected next
        self._consumer: str | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._puller: asyncio.Task[None] | None = None

    async def _subscribe(self) -> None:
        state = (await self._js.stream_info(self._stream)).state
        first, last = int(state.first_seq), int(state.last_seq)
        wanted = self.spec.start
        self._next = last + 1 if wanted is None else wanted
        if wanted is not None and first > wanted:
            self._push(self._gap(wanted, first), first - 1)
            self._next = first
        await self._bind()
        self._puller = asyncio.create_task(self._pull())

    def _gap(self, requested: int, first: int) -> bytes:
        # The id is the last sequence lost: a client that reconnects before the next event
        # resumes after the gap instead of being told about it again.
        data = {"stream": self._stream, "requested": requested, "first_available": first}
        self.gaps += 1
        self.missed += first - requested
        return control_frame("gap", {**data, "lost": first - requested}, seq=first - 1)

    async def _bind(self) -> None:
        """A new consumer from the sequence expected next, and a pull subscription of it."""
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._next,
            ack_policy=AckPolicy.NONE,
            filter_subject=self.spec.subject,
            inactive_threshold=INACTIVE_THRESHOLD,
            mem_storage=True,
            num_replicas=1,
        )
        info = await self._js.add_consumer(self._stream, config)
        self._consumer = info.name
        self._sub = await self._js.pull_subscribe_bind(consumer=info.name, stream=self._stream)

    async def _pull(self) -> None:
        while self._end is None:
            room = self.room
            if room <= 0:
                if not await self._made_room():
                    self._overflow()
                    await self._release()
                    return
                continue
            if self._sub is None:  # making a new consumer failed: try again
                await self._rebind()
                continue
            try:
                msgs = await self._sub.fetch(room, timeout=FETCH_WAIT, heartbeat=FETCH_HEARTBEAT)
            except nats.errors.TimeoutError:
                continue  # nothing new
            except nats.errors.ConnectionClosedError:
                self._finish(
                    End("nats closed", b": the gateway lost NATS; reconnect to resume\n\n")
                )
                return
            except _CONSUMER_GONE:
                await self._rebind()
                continue
            except (nats.errors.Error, OSError):
                await asyncio.sleep(RETRY_DELAY)  # reconnecting: pull again when it is back
                continue
            for msg in msgs:
                self._on_message(msg)

    async def _made_room(self) -> bool:
        """Whether the writer takes frames within ``patience``."""
        self._taken.clear()
        try:
            async with asyncio.timeout(self._patience):
                await self._taken.wait()
        except TimeoutError:
            return False
        return True

    async def _rebind(self) -> None:
        await self._unbind()
        try:
            await self._bind()
        except nats.js.errors.NotFoundError:
            note = f": stream {self._stream} was deleted\n\n".encode()
            self._finish(End("stream deleted", note))
        except (nats.errors.Error, TimeoutError, OSError):
            await asyncio.sleep(RETRY_DELAY)  # and the next pull finds no subscription

    def _on_message(self, msg: Msg) -> None:
        seq = int(msg.metadata.sequence.stream)
        expected = self._next
        if seq < expected:
            return  # already delivered: never twice
        if seq > expected and self.spec.contiguous:
            self._push(self._gap(expected, seq), seq - 1)
        self._next = seq + 1
        self._offer(msg, seq)

    async def _unbind(self) -> None:
        sub, consumer = self._sub, self._consumer
        self._sub = self._consumer = None
        if sub is not None:
            with contextlib.suppress(Exception):  # a closed connection has nothing to undo
                await sub.unsubscribe()
        if consumer is not None:
            # Else the server keeps it until its inactivity threshold.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLEANUP_TIMEOUT):
                    await self._js.delete_consumer(self._stream, consumer)

    async def _release(self) -> None:
        puller, self._puller = self._puller, None
        if puller is not None and puller is not asyncio.current_task():
            puller.cancel()
            await asyncio.gather(puller, return_exceptions=True)
        await self._unbind()


def open_feed(
    nc: Client, js: JetStreamContext, spec: FeedSpec, *, buffer: int, patience: float
) -> Feed:
    """The feed ``spec`` describes (not started)."""
    if spec.stream is None:
        return SubjectFeed(nc, spec, buffer)
    return StreamFeed(js, spec, buffer, patience=patience)
