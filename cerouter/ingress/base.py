"""The ingress contract: what every adapter is to the router, and what the router is to it.

An adapter subscribes to its source, turns each message into an :class:`~cerouter.types.Inbound`
and hands it to the router: one at a time (:data:`InboundHandler`) when it cannot retry, or in
batches (:data:`BatchHandler`) when one flush and one wait should cover many. The router settles
each :class:`~cerouter.types.Inbound` through its ``settler``; the adapter never sees a decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cerouter.pipeline import Decision, Rejection
from cerouter.types import Inbound


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the router did with one settled message: the pipeline's decision and the deliveries
    that failed (none: every destination accepted it). For an ingress that answers its producer
    (the HTTP gateway); the settler has already been told the outcome."""

    decision: Decision
    failures: tuple[Rejection, ...] = ()


InboundHandler = Callable[[Inbound], Awaitable[None]]
BatchHandler = Callable[[Sequence[Inbound]], Awaitable[object]]
SubmitHandler = Callable[[Sequence[Inbound]], Awaitable[list[Verdict]]]


class Ingress(Protocol):
    """A running source of events for the router."""

    name: str

    async def start(self) -> None:
        """Begin taking messages."""
        ...

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a shutdown budget
        """Stop taking messages; hand what already arrived to the router within ``timeout``."""
        ...
