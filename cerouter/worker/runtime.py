"""The worker runner: subscriptions, handler slots and tasks, acks and draining.

A :class:`Worker` is what :meth:`WorkerApp.run <cerouter.worker.WorkerApp.run>` returns: all
run-time state lives here, the app stays plain configuration. Per queue it holds either a core
subscription in the queue group (at-most-once) or a :class:`~cerouter.pull.PullConsumer`
on the shared durable consumer (at-least-once). What becomes of each event once its handler
ran, or could not (replies, emitted results, retries, dead-letters), is
:class:`~cerouter.worker.outcomes.Outcomes`' job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine, Mapping
from time import perf_counter
from types import TracebackType
from typing import Any

import nats.errors
import structlog
from cloudevents.core.v1.event import CloudEvent
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cerouter.binding import DecodedEvent, decode, to_sdk
from cerouter.delivery.deadletter_store import ensure_capture_stream
from cerouter.errors import BindingError, CerouterError
from cerouter.log import event_fields, get_logger
from cerouter.nats.connection import full_flush
from cerouter.nats.pull import PullConsumer
from cerouter.routing.subjects import SubjectTemplate
from cerouter.tracing import Tracing
from cerouter.types import Reason
from cerouter.worker.jetstream import KeepAlive, ensure_consumer, find_stream
from cerouter.worker.metrics import WorkerMetrics
from cerouter.worker.outcomes import Outcomes
from cerouter.worker.outlets import Outlets
from cerouter.worker.spec import (
    AppSettings,
    Delivery,
    HandlerSpec,
    QueueSpec,
    WorkerStats,
    describe_error,
    set_delivery,
)

log = get_logger("cerouter.worker")


class Worker:
    """A running :class:`~cerouter.worker.WorkerApp` on one NATS connection.

    Use ``async with app.run(nc) as worker:`` (start, then drain on exit), or call
    :meth:`start` and :meth:`drain` yourself. The connection stays the caller's: the worker never
    closes it.
    """

    def __init__(
        self,
        app: AppSettings,
        nc: Client,
        *,
        concurrency: int | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.app = app
        # With a TracerProvider, every handler call is a span (cerouter.tracing).
        self._tracing = None if tracer_provider is None else Tracing(tracer_provider)
        self.nc = nc
        self.js = nc.jetstream()
        self.default_concurrency = concurrency if concurrency is not None else app.concurrency
        self.queues = app.queues()
        self.stats_by_queue = {q.name: WorkerStats() for q in self.queues}
        self.deadletter_subject = SubjectTemplate.parse(app.deadletter_subject)
        outlets = Outlets(
            nc,
            self.deadletter_subject,
            app.deadletter_stream,
            reply_mode=app.reply_mode,
            emit_mode=app.emit_mode,
        )
        self._outcomes = Outcomes(app, outlets, self._spawn)
        self._limits = {
            spec: asyncio.Semaphore(self.concurrency_of(spec))
            for q in self.queues
            for spec in q.handlers
        }
        self.metrics = WorkerMetrics(self.queues, self.stats_by_queue, lambda: len(self._tasks))
        """This worker's Prometheus registry and handler durations (``--metrics`` serves them)."""
        self._core_subs: list[Subscription] = []
        self._pulls: list[PullConsumer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        durable_waits = [q.ack_wait for q in self.queues if q.durable]
        self._keep_alive = KeepAlive(min(durable_waits, default=30.0) / 4)
        self._started = False
        self._stopping = False
        self._abandoned = False  # drain's grace period is over: drop core messages left

    # ------------------------------------------------------------------ public

    @property
    def stats(self) -> WorkerStats:
        """Counters summed over every queue."""
        total = WorkerStats()
        for stats in self.stats_by_queue.values():
            total = total + stats
        return total

    def concurrency_of(self, spec: HandlerSpec) -> int:
        """How many events ``spec``'s handler may run at once in this worker."""
        return spec.concurrency if spec.concurrency is not None else self.default_concurrency

    async def start(self) -> None:
        """Subscribe every queue; raise :class:`CerouterError` if a durable queue has no stream."""
        if self._started:
            raise CerouterError("the worker is already started")
        self._started = True
        with contextlib.suppress(CerouterError, nats.errors.Error):
            # Best effort up front; a dead-letter publish creates the stream later if needed.
            subject = self.deadletter_subject.render({}, {"reason": str(Reason.HANDLER)})
            await ensure_capture_stream(self.js, subject, self.app.deadletter_stream)
        try:
            for queue in self.queues:
                if queue.durable:
                    await self._start_durable(queue)
                else:
                    await self._start_core(queue)
            await full_flush(self.nc)  # subscribed for real before on_ready says so
        except BaseException:
            await self.drain(grace=1.0)
            raise
        if self._pulls:
            self._keep_alive.start()
        log.info("worker started", app=self.app.name, queues=[q.name for q in self.queues])

    async def drain(self, grace: float | None = None) -> None:
        """Stop taking events, finish the ones in hand, hand back the rest. Idempotent.

        Core subscriptions are drained (messages already received are handled); durable pulls
        stop and whatever still arrives is NAKed for another worker. Handlers get ``grace``
        seconds (default: the app's ``drain_timeout``) to finish; after that they are cancelled
        and their durable messages NAKed, so nothing is lost, only retried.
        """
        if self._stopping:
            return
        self._stopping = True
        limit = self.app.drain_timeout if grace is None else grace
        for pull in self._pulls:
            # Close the pull inbox first: the server then drops our open pull requests, so the
            # events NAKed below go to other workers instead of bouncing back here (each bounce
            # would count as a delivery attempt).
            await pull.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        # Core: the subscriptions' pending messages are still handled, within the grace period.
        drains = {asyncio.ensure_future(self._drain_core(sub)) for sub in self._core_subs}
        if drains:
            await asyncio.wait(drains, timeout=limit)
        if self._tasks:
            remaining = max(0.0, deadline - loop.time())
            _, pending = await asyncio.wait(set(self._tasks), timeout=remaining)
            if pending:
                log.warning("handlers cancelled at shutdown", count=len(pending))
                self._abandoned = True
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
        if any(not d.done() for d in drains):
            # Handlers hung past the grace period: the callbacks now drop what is left (core
            # delivery is at-most-once) instead of starting new handlers.
            self._abandoned = True
            await asyncio.wait(drains, timeout=5.0)
        if self._tasks:
            # NAKs of late arrivals and replies spawned while draining: quick, but let them out.
            await asyncio.wait(set(self._tasks), timeout=5.0)
        await self._keep_alive.stop()
        if not self.nc.is_closed:
            with contextlib.suppress(nats.errors.Error):
                await self.nc.flush()  # acks and NAKs out before the owner closes
        log.info("worker drained", app=self.app.name, handled=self.stats.handled)

    @staticmethod
    async def _drain_core(sub: Subscription) -> None:
        with contextlib.suppress(nats.errors.Error):  # a closing connection has nothing left
            await sub.drain()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.drain()

    # ------------------------------------------------------------------ core queues

    async def _start_core(self, queue: QueueSpec) -> None:
        stats = self.stats_by_queue[queue.name]

        async def on_message(msg: Msg) -> None:
            # nats-py awaits this callback message by message; waiting for a handler slot here
            # is the backpressure (the rest wait in the subscription's pending queue).
            stats.received += 1
            try:
                event = decode(msg.headers, msg.data)
            except BindingError as exc:
                self._spawn(self._outcomes.undecodable(queue, msg, exc, stats))
                return
            spec = queue.match(str(event.attributes.get("type", "")))
            if spec is None:
                self._outcomes.ignore(queue, msg, event, stats)
                return
            await self._limits[spec].acquire()
            if self._abandoned:
                self._limits[spec].release()
                stats.dropped += 1
                return
            self._spawn(self._run_core(queue, spec, msg, event, stats))

        sub = await self.nc.subscribe(queue.subject, queue=queue.name, cb=on_message)
        self._core_subs.append(sub)

    async def _run_core(
        self, queue: QueueSpec, spec: HandlerSpec, msg: Msg, event: DecodedEvent, stats: WorkerStats
    ) -> None:
        # Each event runs in a task of its own: these fields are on its log lines only.
        structlog.contextvars.bind_contextvars(queue=queue.name, **event_fields(event.attributes))
        try:
            try:
                cloud_event = to_sdk(event)
            except BindingError as exc:
                await self._outcomes.undecodable(queue, msg, exc, stats)
                return
            request = bool(msg.reply)
            headers = msg.headers or {}
            set_delivery(Delivery(msg.subject, queue.name, False, 1, event.mode, request, headers))
            try:
                result = await self._call(spec, cloud_event, queue, headers, event)
            except Exception as exc:
                await self._outcomes.failed_core(queue, msg, event, exc, stats)
                return
            stats.handled += 1
            await self._outcomes.deliver(spec, msg, event, result, stats, flush=False)
        finally:
            self._limits[spec].release()

    # ------------------------------------------------------------------ durable queues

    async def _start_durable(self, queue: QueueSpec) -> None:
        stream = await find_stream(self.js, queue, self.app.stream_wait)
        capacity = sum(self.concurrency_of(spec) for spec in queue.handlers)
        # Room for several workers' pulls without the server's default cap getting in the way.
        max_ack_pending = max(1000, 4 * capacity)
        await ensure_consumer(self.js, stream, queue, max_ack_pending=max_ack_pending)
        stats = self.stats_by_queue[queue.name]
        pull: PullConsumer

        def on_message(msg: Msg) -> None:
            stats.received += 1
            if self._stopping:
                # Arrived after shutdown began: give it straight back to the other workers.
                stats.requeued += 1
                self._spawn(self._settle(pull, msg.nak()))
                return
            self._spawn(self._run_durable(queue, pull, msg, stats))

        async def recover() -> None:
            await ensure_consumer(self.js, stream, queue, max_ack_pending=max_ack_pending)

        expires = self.app.pull_expires
        pull = PullConsumer(self.nc, stream, queue.name, capacity, on_message, recover=recover,
                            expires=expires)  # fmt: skip
        await pull.start()
        self._pulls.append(pull)

    async def _run_durable(
        self, queue: QueueSpec, pull: PullConsumer, msg: Msg, stats: WorkerStats
    ) -> None:
        # Kept alive from arrival on: waiting for a handler slot must not outrun ack_wait.
        self._keep_alive.hold(msg, queue.ack_wait)
        try:
            try:
                event = decode(msg.headers, msg.data)
            except BindingError as exc:
                await self._outcomes.undecodable(queue, msg, exc, stats)
                return
            structlog.contextvars.bind_contextvars(
                queue=queue.name, **event_fields(event.attributes)
            )
            spec = queue.match(str(event.attributes.get("type", "")))
            if spec is None:
                self._outcomes.ignore(queue, msg, event, stats)
                await msg.ack()
                return
            try:
                cloud_event = to_sdk(event)
            except BindingError as exc:
                await self._outcomes.undecodable(queue, msg, exc, stats)
                return
            async with self._limits[spec]:
                await self._handle_durable(queue, spec, msg, event, cloud_event, stats)
        finally:
            self._keep_alive.release(msg)
            pull.release()

    async def _handle_durable(
        self,
        queue: QueueSpec,
        spec: HandlerSpec,
        msg: Msg,
        event: DecodedEvent,
        cloud_event: CloudEvent,
        stats: WorkerStats,
    ) -> None:
        attempt = msg.metadata.num_delivered
        set_delivery(
            Delivery(msg.subject, queue.name, True, attempt, event.mode, False, msg.headers or {})
        )
        try:
            result = await self._call(spec, cloud_event, queue, msg.headers, event)
        except asyncio.CancelledError:
            stats.requeued += 1
            await msg.nak()  # drain gave up on it: another worker takes it now
            raise
        except Exception as exc:
            await self._outcomes.failed_durable(queue, spec, msg, attempt, exc, stats)
            return
        stats.handled += 1
        await self._outcomes.deliver(spec, msg, event, result, stats, flush=True)
        await msg.ack()

    # ------------------------------------------------------------------ shared steps

    async def _call(
        self,
        spec: HandlerSpec,
        event: CloudEvent,
        queue: QueueSpec,
        headers: Mapping[str, str] | None,
        decoded: DecodedEvent,
    ) -> CloudEvent | None:
        if self._tracing is not None:
            return await self._traced_call(self._tracing, spec, event, queue, headers, decoded)
        started = perf_counter()
        try:
            result = await spec.func(event)
        finally:
            self.metrics.durations[spec].observe(perf_counter() - started)
        return _checked(result)

    async def _traced_call(
        self,
        tracing: Tracing,
        spec: HandlerSpec,
        event: CloudEvent,
        queue: QueueSpec,
        headers: Mapping[str, str] | None,
        decoded: DecodedEvent,
    ) -> CloudEvent | None:
        name = getattr(spec.func, "__qualname__", type(spec.func).__name__)
        span = tracing.handler_span(
            headers, decoded.attributes, subject=queue.subject, queue=queue.name, handler=name
        )
        with tracing.current(span):  # the handler's own log lines carry the span's ids
            started = perf_counter()
            try:
                result = await spec.func(event)
            except BaseException as exc:
                tracing.failed(span, [str(Reason.HANDLER)], exc)
                raise
            finally:
                self.metrics.durations[spec].observe(perf_counter() - started)
            return _checked(result)

    @staticmethod
    async def _settle(pull: PullConsumer, ack: Awaitable[None]) -> None:
        try:
            await ack
        finally:
            pull.release()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Acks, replies and dead-letters that failed (connection lost): JetStream redelivers.
            log.error("event task failed", error=describe_error(exc))


def _checked(result: object) -> CloudEvent | None:
    if result is not None and not isinstance(result, CloudEvent):
        raise TypeError(f"handler returned {type(result).__name__}; return a CloudEvent or None")
    return result
