"""Counting outcomes: every event's fate is counted here, so metrics are a thin layer later."""

from __future__ import annotations

from collections import Counter


class Outcome:
    """What happened to one event (or one delivery attempt).

    Plain string constants rather than an enum: an enum member's hash is a Python-level call,
    and these are counted for every event.
    """

    RECEIVED = "received"
    ROUTED = "routed"  # every destination of every matched route accepted it
    DEADLETTERED = "deadlettered"
    DROPPED = "dropped"  # unrouted with `unrouted: drop`
    RETRIED = "retried"  # JetStream ingress: NAKed for redelivery
    DELIVERY_FAILED = "delivery_failed"  # one destination did not accept it
    DEADLETTER_FAILED = "deadletter_failed"  # even the dead-letter stream did not accept it
    ABANDONED = "abandoned"  # terminated after the dead-letter stream refused it every time


class Stats:
    """Counters of outcomes and of dead-letter reasons; cheap enough for the hot path."""

    __slots__ = ("outcomes", "reasons")

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def count(self, outcome: str, n: int = 1) -> None:
        """Add ``n`` to an outcome's counter."""
        self.outcomes[outcome] += n

    def deadlettered(self, reason: str) -> None:
        """Count one dead-lettered event and its reason."""
        self.outcomes[Outcome.DEADLETTERED] += 1
        self.reasons[reason] += 1

    def snapshot(self) -> dict[str, int]:
        """All counters as a flat dict (``deadletter.<reason>`` for reasons)."""
        out = dict(self.outcomes)
        out.update({f"deadletter.{k}": v for k, v in self.reasons.items()})
        return out
