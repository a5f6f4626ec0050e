"""The plain values behind the worker SDK: type filters, handler specs, queues and counters.

Nothing here does I/O. :class:`~cerouter.worker.WorkerApp` builds these values when handlers are
registered; :class:`~cerouter.worker_runtime.Worker` reads them at run time.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from cloudevents.core.v1.event import CloudEvent

from cerouter.binding import Mode, to_sdk
from cerouter.delivery.error_event import error_event as build_error_event
from cerouter.errors import ConfigError

# Mirrors of cerouter.config's defaults (a test keeps them equal); importing the config module
# here would pull the schema registry into every worker process for two strings.
DEFAULT_WORK_PREFIX = "work"
DEFAULT_DEADLETTER_STREAM = "DEADLETTER"
DEFAULT_DEADLETTER_SUBJECT = "deadletter.{reason}"


Handler = Callable[[CloudEvent], Awaitable[CloudEvent | None]]
"""What ``@app.handler`` decorates: ``async def f(event: CloudEvent) -> CloudEvent | None``."""


class AppSettings(Protocol):
    """What a running worker reads of its :class:`~cerouter.worker.WorkerApp`."""

    name: str
    concurrency: int
    emit: str | None
    emit_mode: Mode
    reply_mode: Mode | None
    deadletter_subject: str
    deadletter_stream: str
    drain_timeout: float
    stream_wait: float
    pull_expires: float
    source: str

    def queues(self) -> tuple[QueueSpec, ...]:
        """The subscriptions the handlers need."""
        ...


# A queue name becomes a consumer name and a subject token: no dots, wildcards or spaces.
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SUBJECT = re.compile(r"[^\s.*>]+(\.[^\s.*>]+)*")


@dataclass(frozen=True, slots=True)
class TypeFilter:
    """Which event types a handler takes.

    The rule: a filter ending in ``*`` is a prefix (``com.example.order.*`` takes
    ``com.example.order.created`` and ``com.example.order.paid.v2``; ``*`` alone takes every
    type); any other filter must equal the type exactly. ``*`` anywhere else is an error, and so
    is a filter ending in ``.`` (write ``prefix.*``), so that there is one way to say "prefix".
    """

    pattern: str
    prefix: bool

    @classmethod
    def parse(cls, text: str) -> TypeFilter:
        """Read a filter; raise :class:`ConfigError` for an empty or ambiguous one."""
        if not text:
            raise ConfigError("a type filter cannot be empty (use '*' for every type)")
        head, star, _ = text.partition("*")
        if star and text != head + "*":
            raise ConfigError(f"type filter {text!r}: '*' is only allowed at the end")
        if not star and text.endswith("."):
            raise ConfigError(f"type filter {text!r} ends with '.': write {text + '*'!r}")
        return cls(head, bool(star))

    def matches(self, event_type: str) -> bool:
        """Tell whether an event type passes this filter."""
        return event_type.startswith(self.pattern) if self.prefix else event_type == self.pattern

    def __str__(self) -> str:
        return self.pattern + "*" if self.prefix else self.pattern


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """One registered handler and how its queue delivers to it.

    ``concurrency`` ``None`` takes the app's default (or ``cerouter worker --concurrency``).
    ``backoff`` gives the NAK delay in seconds after attempt 1, 2, ...; the last value repeats.
    """

    func: Handler
    type_filter: TypeFilter
    queue: str
    subject: str
    durable: bool = False
    max_deliver: int = 5
    ack_wait: float = 30.0
    backoff: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
    concurrency: int | None = None
    emit: str | None = None

    @property
    def name(self) -> str:
        """The handler function's qualified name, for logs."""
        return getattr(self.func, "__qualname__", repr(self.func))

    def retry_delay(self, attempt: int) -> float:
        """The NAK delay after failed delivery ``attempt`` (1-based)."""
        if not self.backoff:
            return 0.0
        return self.backoff[min(max(attempt, 1), len(self.backoff)) - 1]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One subscription of a worker: a queue group (core) or a durable consumer (JetStream).

    Handlers sharing a queue share its subscription; each event goes to one handler (see
    :meth:`match`).
    """

    name: str
    subject: str
    durable: bool
    max_deliver: int
    ack_wait: float
    handlers: tuple[HandlerSpec, ...]

    def match(self, event_type: str) -> HandlerSpec | None:
        """The handler for a type: the exact filter if any, else the longest matching prefix."""
        best: HandlerSpec | None = None
        for spec in self.handlers:
            flt = spec.type_filter
            if not flt.matches(event_type):
                continue
            if not flt.prefix:
                return spec
            if best is None or len(flt.pattern) > len(best.type_filter.pattern):
                best = spec
        return best


def check_name(what: str, value: str) -> str:
    """Check a queue name (it becomes a consumer name and a subject token)."""
    if not _NAME.fullmatch(value):
        raise ConfigError(f"{what} {value!r}: use letters, digits, '-' and '_' only")
    return value


def check_subject(what: str, value: str) -> str:
    """Check a literal NATS subject (no wildcards, no empty tokens)."""
    if not _SUBJECT.fullmatch(value):
        raise ConfigError(f"{what} {value!r} is not a literal NATS subject")
    return value


def build_queues(handlers: tuple[HandlerSpec, ...]) -> tuple[QueueSpec, ...]:
    """Group handlers by queue, checking that they agree on how the queue is consumed."""
    grouped: dict[str, list[HandlerSpec]] = {}
    for spec in handlers:
        grouped.setdefault(spec.queue, []).append(spec)
    queues: list[QueueSpec] = []
    for name, specs in grouped.items():
        first = specs[0]
        for other in specs[1:]:
            for attr in ("subject", "durable", "max_deliver", "ack_wait"):
                if getattr(other, attr) != getattr(first, attr):
                    raise ConfigError(
                        f"queue {name!r}: handlers {first.name} and {other.name} disagree on "
                        f"{attr} ({getattr(first, attr)!r} vs {getattr(other, attr)!r}); one queue "
                        "is one subscription"
                    )
            if str(other.type_filter) in {str(s.type_filter) for s in specs if s is not other}:
                raise ConfigError(
                    f"queue {name!r}: type filter {str(other.type_filter)!r} is registered twice"
                )
        queues.append(
            QueueSpec(
                name, first.subject, first.durable, first.max_deliver, first.ack_wait, tuple(specs)
            )
        )
    return tuple(queues)


@dataclass(slots=True)
class WorkerStats:
    """Counters of one queue (or, summed, of a worker). Every outcome is counted here.

    ``failed`` counts handler exceptions (each attempt), ``retried`` the NAKs that followed,
    ``requeued`` the durable messages handed back unprocessed at shutdown, ``dropped`` the core
    messages given up at shutdown because handlers hung past the grace period, ``ignored`` events
    no handler of the queue takes, ``undecodable`` messages that are not CloudEvents.
    """

    received: int = 0
    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    ignored: int = 0
    undecodable: int = 0
    replied: int = 0
    emitted: int = 0
    requeued: int = 0
    dropped: int = 0

    def __add__(self, other: WorkerStats) -> WorkerStats:
        return WorkerStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True, slots=True)
class Delivery:
    """How the event a handler is running for arrived; see :func:`current_delivery`.

    ``attempt`` is 1 for core messages and JetStream's delivery count for durable ones.
    """

    subject: str
    queue: str
    durable: bool
    attempt: int
    mode: Mode
    is_request: bool
    headers: Mapping[str, str] = field(default_factory=dict)


_DELIVERY: ContextVar[Delivery] = ContextVar("cerouter_delivery")


def current_delivery() -> Delivery:
    """The :class:`Delivery` of the event the calling handler runs for.

    Raises ``LookupError`` outside a handler.
    """
    return _DELIVERY.get()


def set_delivery(value: Delivery) -> None:
    """Set the current delivery (the runtime calls this inside each handler's own task)."""
    _DELIVERY.set(value)


def error_event(source: str, reason: str, original: Mapping[str, Any] | None) -> CloudEvent:
    """The ``io.cerouter.error`` CloudEvent a requester gets instead of silence (the format is
    :func:`cerouter.delivery.error_event.error_event`'s)."""
    return to_sdk(build_error_event(reason, original, source=source))


def one_line(text: str, limit: int = 500) -> str:
    """Squeeze text into one printable ASCII line of at most ``limit`` characters (for headers)."""
    flat = " ".join(text.split()).encode("ascii", "backslashreplace").decode("ascii")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    """``ExceptionType: message`` on one line."""
    message = str(exc)
    return one_line(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
