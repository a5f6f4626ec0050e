"""Queue-group workers: consume routed CloudEvents in a few lines of Python.

::

    from cloudevents.core.v1.event import CloudEvent
    from cerouter.worker import WorkerApp

    app = WorkerApp("billing")

    @app.handler("com.example.order.paid", queue="billing", durable=True)
    async def bill(event: CloudEvent) -> None:
        print("billing", event.get_data())

Run it with ``cerouter worker mymodule:app`` (or ``await app.serve()``, or, inside a program that
has a connection, ``async with app.run(nc) as worker: ...``).

How events reach handlers (the router's ``queue`` and ``request`` destinations):

* ``durable=False`` (default): a core NATS subscription to ``subject`` (default
  ``work.<queue>``) in queue group ``<queue>``. At-most-once, as core NATS is: an event whose
  handler raises is dead-lettered (or, for a request, answered with an ``io.cerouter.error``
  event); one that was in flight when a worker died is gone.
* ``durable=True``: the JetStream durable pull consumer named ``<queue>`` on the workqueue stream
  that captures the subject (created or updated by the worker; the stream itself is the router's).
  At-least-once: ack after the handler returns; NAK with the ``backoff`` delay when it raises;
  after ``max_deliver`` failed attempts the event goes to the dead-letter stream and is
  terminated; long handlers are kept alive with in-progress acks.
* A core message with a reply subject is a request: the handler's returned ``CloudEvent`` is the
  reply (in the request's content mode); an exception, or returning ``None``, replies with an
  ``io.cerouter.error`` event, so a requester never waits in silence. Otherwise a returned event
  is published to the handler's ``emit`` subject (or the app's), and dropped with a warning when
  there is none.

Handlers sharing a queue share its subscription. Each event goes to one handler: the one whose
type filter equals the event type, else the one with the longest matching prefix filter
(:class:`~cerouter.worker_spec.TypeFilter`). An event no handler of its queue takes is acked and
counted as ``ignored`` (logged at debug level), never retried. A message that is not a CloudEvent
is dead-lettered at once (stage ``decode``).

``concurrency`` bounds the events one handler runs at once in one worker; for a durable queue the
sum over its handlers is also the most the worker pulls (no local backlog), so it sizes pull
batches too: fast handlers want a larger value.

Shutdown (SIGINT/SIGTERM under ``serve``, or :meth:`Worker.drain`) is graceful: durable pulls stop
and anything still arriving is NAKed to the other workers; core subscriptions are drained (what
was received is handled); running handlers get ``drain_timeout`` seconds, after which they are
cancelled (durable events NAKed, so retried elsewhere; remaining core messages dropped and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from nats.aio.client import Client

from cerouter.binding import Mode
from cerouter.config.model import NatsSettings
from cerouter.errors import ConfigError
from cerouter.gateway import MetricsServer, start_metrics_server
from cerouter.lifecycle import Lifecycle
from cerouter.log import get_logger
from cerouter.nats.connection import DEFAULT_URL, connect_service
from cerouter.worker.runtime import Worker
from cerouter.worker.spec import (
    DEFAULT_DEADLETTER_STREAM,
    DEFAULT_DEADLETTER_SUBJECT,
    DEFAULT_WORK_PREFIX,
    Handler,
    HandlerSpec,
    QueueSpec,
    TypeFilter,
    WorkerStats,
    build_queues,
    check_name,
    check_subject,
)

DEFAULT_CONCURRENCY = 10

log = get_logger("cerouter.worker")


class WorkerApp:
    """A set of event handlers and how to run them; configuration only (see :class:`Worker`).

    ``concurrency`` is the default per-handler limit of events handled at once in one worker
    process. ``emit`` is the default subject for events handlers return outside a request, in
    ``emit_mode``; replies use ``reply_mode``, or the request's own mode when ``None``.
    Dead-letters go to ``deadletter_subject``; when no stream captures it, the worker creates
    ``deadletter_stream`` (limits retention) capturing ``<first token>.>``. ``drain_timeout``
    bounds how long shutdown waits for running handlers; ``stream_wait`` how long a durable
    queue waits for the router to declare its stream; ``pull_expires`` is the lifetime of one
    JetStream pull request. ``source`` is the ``source`` of the error events the app sends.
    """

    def __init__(
        self,
        name: str = "worker",
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        emit: str | None = None,
        emit_mode: Mode = Mode.STRUCTURED,
        reply_mode: Mode | None = None,
        deadletter_subject: str = DEFAULT_DEADLETTER_SUBJECT,
        deadletter_stream: str = DEFAULT_DEADLETTER_STREAM,
        drain_timeout: float = 30.0,
        stream_wait: float = 30.0,
        pull_expires: float = 10.0,
        source: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
        for option, value, least in (
            ("drain_timeout", drain_timeout, 0.0),
            ("stream_wait", stream_wait, 0.0),
            ("pull_expires", pull_expires, 0.1),
        ):
            if value < least:
                raise ConfigError(f"{option} must be at least {least} seconds, not {value}")
        self.name = name
        self.concurrency = concurrency
        self.emit = None if emit is None else check_subject("emit subject", emit)
        self.emit_mode = emit_mode
        self.reply_mode = reply_mode
        self.deadletter_subject = check_subject("dead-letter subject", deadletter_subject)
        self.deadletter_stream = check_name("dead-letter stream", deadletter_stream)
        self.drain_timeout = drain_timeout
        self.stream_wait = stream_wait
        self.pull_expires = pull_expires
        self.source = source if source is not None else f"/cerouter/worker/{name}"
        self._handlers: list[HandlerSpec] = []

    def __repr__(self) -> str:
        return f"WorkerApp({self.name!r}, handlers={len(self._handlers)})"

    @property
    def handlers(self) -> tuple[HandlerSpec, ...]:
        """The registered handlers, in registration order."""
        return tuple(self._handlers)

    def queues(self) -> tuple[QueueSpec, ...]:
        """The subscriptions the handlers need (raises :class:`ConfigError` on conflicts)."""
        return build_queues(tuple(self._handlers))

    def handler(
        self,
        type_filter: str,
        *,
        queue: str,
        durable: bool = False,
        subject: str | None = None,
        max_deliver: int = 5,
        ack_wait: float = 30.0,
        backoff: Sequence[float] = (1.0, 2.0, 5.0, 10.0),
        concurrency: int | None = None,
        emit: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register ``async def f(event: CloudEvent) -> CloudEvent | None`` for a type filter.

        ``type_filter`` is an exact type or a prefix ending in ``*`` (see :class:`TypeFilter`).
        ``queue`` names the queue group / durable consumer; ``subject`` defaults to
        ``work.<queue>``, the router's default for a ``{queue: ...}`` destination.
        ``max_deliver``, ``ack_wait`` (seconds) and ``backoff`` (NAK delays in seconds, the
        last one repeating) apply to durable queues. The decorated function is returned as is.
        """
        flt = TypeFilter.parse(type_filter)
        check_name("queue", queue)
        subj = check_subject("subject", subject or f"{DEFAULT_WORK_PREFIX}.{queue}")
        if max_deliver < 1:
            raise ConfigError(f"max_deliver must be at least 1, not {max_deliver}")
        if ack_wait <= 0:
            raise ConfigError(f"ack_wait must be positive, not {ack_wait}")
        if any(delay < 0 for delay in backoff):
            raise ConfigError(f"backoff delays cannot be negative: {tuple(backoff)}")
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {concurrency}")
        emit_subject = None if emit is None else check_subject("emit subject", emit)

        def register(func: Handler) -> Handler:
            if not inspect.iscoroutinefunction(func):
                raise ConfigError(
                    f"handler {getattr(func, '__qualname__', func)!r} must be an 'async def'"
                )
            spec = HandlerSpec(
                func,
                flt,
                queue,
                subj,
                durable=durable,
                max_deliver=max_deliver,
                ack_wait=float(ack_wait),
                backoff=tuple(float(d) for d in backoff),
                concurrency=concurrency,
                emit=emit_subject,
            )
            build_queues((*self._handlers, spec))  # conflicts surface at import, not at run
            self._handlers.append(spec)
            return func

        return register

    def run(
        self, nc: Client, *, concurrency: int | None = None, tracer_provider: Any = None
    ) -> Worker:
        """A :class:`Worker` for this app on ``nc`` (not started: ``async with`` or ``start()``).

        ``concurrency`` replaces the app's default for handlers that set none. With an
        OpenTelemetry ``tracer_provider`` every handler call is a span (``cerouter[otel]``).
        """
        self._check_runnable(concurrency)
        return Worker(self, nc, concurrency=concurrency, tracer_provider=tracer_provider)

    async def serve(
        self,
        urls: Sequence[str] = (DEFAULT_URL,),
        *,
        settings: NatsSettings | None = None,
        concurrency: int | None = None,
        stop: asyncio.Event | None = None,
        on_ready: Callable[[Worker], None] | None = None,
        metrics: tuple[str, int] | None = None,
        tracer_provider: Any = None,
    ) -> WorkerStats:
        """Connect, run until SIGINT/SIGTERM (or ``stop`` is set), drain, close; return the stats.

        ``settings`` (credentials, TLS, URLs) replaces ``urls`` when given. Raises
        :class:`~cerouter.errors.ServerError` when no server answers at start-up; once
        connected, the worker reconnects on its own. ``on_ready`` is called once subscribed.
        ``metrics`` is a ``(host, port)`` to serve ``/metrics``, ``/healthz`` and ``/readyz``
        on (port 0: a free one; ``worker.metrics.url`` says where), up until the drain ends.
        With an OpenTelemetry ``tracer_provider`` every handler call is a span.
        """
        self._check_runnable(concurrency)
        lifecycle = Lifecycle()
        if stop is not None:
            lifecycle.stop = stop
        lifecycle.install_signals()  # before connecting: a SIGTERM during start-up still drains
        try:
            settings = settings or NatsSettings(
                urls=tuple(urls), name=f"cerouter-worker-{self.name}"
            )
            nc = await connect_service(settings, on_event=_log_connection)
            try:
                worker = Worker(self, nc, concurrency=concurrency, tracer_provider=tracer_provider)
                server: MetricsServer | None = None
                try:
                    async with worker:
                        if metrics is not None:
                            server = await start_metrics_server(
                                worker.metrics.registry,
                                *metrics,
                                ready=lambda: nc.is_connected and not lifecycle.stop.is_set(),
                            )
                            worker.metrics.url = server.url + "/metrics"
                        if on_ready is not None:
                            on_ready(worker)
                        await lifecycle.stop.wait()
                finally:
                    if server is not None:  # after the drain: its counts can still be read
                        await server.stop()
                return worker.stats
            finally:
                # The server may be gone by now (that is why we are stopping): closing must
                # not turn a clean stop into a traceback.
                with contextlib.suppress(Exception):
                    await nc.close()
        finally:
            lifecycle.remove_signals()

    def _check_runnable(self, concurrency: int | None) -> None:
        if not self._handlers:
            raise ConfigError(f"app {self.name!r} has no handlers")
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, not {concurrency}")


async def connect_worker(
    urls: Sequence[str], *, name: str, connect_timeout: float = 2.0, token: str | None = None
) -> Client:
    """Connect for a long-running worker: fail fast at start-up, then reconnect forever."""
    settings = NatsSettings(
        urls=tuple(urls), name=name, connect_timeout=connect_timeout, token=token
    )
    return await connect_service(settings, on_event=_log_connection)


def _log_connection(state: str, detail: str) -> None:
    if state == "reconnected":
        log.info("nats reconnected", url=detail)
    elif state == "error":
        log.warning("nats error", error=detail)
    elif state == "closed":
        log.info("nats connection closed")
    else:
        log.warning(f"nats {state}")
