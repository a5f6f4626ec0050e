"""The values every layer shares: message headers, the :class:`Inbound` contract, and the closed
sets that say what happened to an event (:class:`Stage`, :class:`Reason`).

An ingress adapter (core NATS, JetStream, later the HTTP gateway and dead-letter redrive) turns
what arrived into an :class:`Inbound`; the router core processes it and settles it through its
:class:`Settler` without knowing where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import NamedTuple, Protocol

Headers = Mapping[str, str]
"""Message headers as received: names as the producer wrote them, one value each."""


class Stage(StrEnum):
    """The pipeline stage at which an event was rejected (DESIGN.md, section 1)."""

    BINDING = "binding"  # the message is not a CloudEvent in either content mode
    ENVELOPE = "envelope"  # a CloudEvents attribute rule is broken
    DATA = "data"  # the data does not match its JSON Schema (or cannot be read)
    ROUTING = "routing"  # no route matched, or a routing loop
    DELIVERY = "delivery"  # a destination did not accept the event
    ROUTER = "router"  # a bug in cerouter itself
    HANDLER = "handler"  # a worker's handler raised


class Reason(StrEnum):
    """Why an event went to the dead-letter stream: the ``cerouter-deadletter`` header and the
    ``{reason}`` of the dead-letter subject."""

    BINDING = "binding"  # not a CloudEvent
    ENVELOPE = "envelope"  # broken envelope
    SCHEMA = "schema"  # data failed its schema
    UNROUTED = "unrouted"  # no route matched (with ``unrouted: deadletter``)
    LOOP = "loop"  # forwarded too many times
    DELIVERY = "delivery"  # a destination did not accept it
    INTERNAL = "internal"  # a bug in cerouter
    HANDLER = "handler"  # a worker's handler failed on every attempt
    TOO_LARGE = "too-large"  # with cerouter's headers it exceeds the server's max_payload
    CONFLICT = "conflict"  # another event with the same source and id is already stored


class Settler(Protocol):
    """How an at-least-once ingress learns the outcome of one message."""

    @property
    def attempt(self) -> int:
        """Which delivery of the message this is: 1 the first time."""
        ...

    @property
    def identity(self) -> str:
        """What identifies this message across redeliveries (e.g. ``EVENTS:1234``)."""
        ...

    async def ack(self) -> None:
        """Every destination accepted it (or it was dead-lettered for good): done."""

    async def retry(self, delay: float) -> None:
        """Not delivered this time: offer it again after ``delay`` seconds."""

    async def terminate(self) -> None:
        """Never deliver it again (it was dead-lettered after its last attempt)."""


class Inbound(NamedTuple):
    """One message as an ingress adapter hands it to the router (immutable).

    A NamedTuple rather than a frozen dataclass: one is built per message, and building it
    costs 0.36 µs instead of 0.98 µs (measured).

    ``reply`` is where a requester waits for an answer (never a JetStream ack subject).
    ``settler`` is ``None`` for a fire-and-forget ingress (core NATS), which has no way to
    retry; ``max_attempts`` is the delivery at which a failing event stops being retried and is
    dead-lettered.
    """

    subject: str
    headers: Headers | None
    payload: bytes
    reply: str | None = None
    settler: Settler | None = None
    max_attempts: int = 1

    @property
    def attempt(self) -> int:
        """Which delivery of this message this is (1 the first time; always 1 without retries)."""
        return 1 if self.settler is None else self.settler.attempt

    @property
    def identity(self) -> str | None:
        """The message's identity across redeliveries; ``None`` when it has none (core NATS:
        every message is a new one)."""
        return None if self.settler is None else self.settler.identity

    @property
    def retryable(self) -> bool:
        """Whether a failed delivery can still be offered again."""
        return self.settler is not None and self.settler.attempt < self.max_attempts
