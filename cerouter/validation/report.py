"""Validation results: one value type shared by the CLI, the router's dead-letter headers and logs.

A :class:`Report` is a tuple of :class:`Problem` values; an empty one is valid. Every problem says
at which :class:`Stage` it was found, *where* (an attribute name such as ``time``, or a JSON
pointer into the data such as ``data/items/0/price``) and what is wrong, in words::

    >>> price = Problem(Stage.DATA, "data/items/0/price", "is less than the minimum of 0")
    >>> Report((price,)).summary()
    'data/items/0/price: is less than the minimum of 0'

Validation failures are values, not exceptions (see :mod:`cerouter.errors`): they describe the
event, not a fault of the program.

Reports travel in dead-letter headers and logs, so by default a message names the rule and not
the value that broke it (``data/items/0/price: is less than the minimum of 0``); the checks take an
``include_values`` switch for tools where the data is the user's own. A value that is shown is cut
to :data:`VALUE_LIMIT` characters (:func:`shorten`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cerouter.types import Stage as Stage  # Problem.stage; re-exported for readers of reports

VALUE_LIMIT: Final = 64
"""The most characters of a value (or of a name from the event) one message shows."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an event."""

    stage: Stage
    where: str  # attribute name, or JSON pointer into the event such as "data/items/0/price"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_json(self) -> dict[str, str]:
        """The problem as a JSON-ready dict: ``stage``, ``where``, ``message``."""
        return {"stage": str(self.stage), "where": self.where, "message": self.message}


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of checking one event: valid when it holds no problems."""

    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """``True`` when the event passed every check."""
        return not self.problems

    def summary(self) -> str:
        """All problems on one line, joined with ``"; "`` (empty when there are none).

        Line breaks and other control characters inside messages become spaces, so the result is
        safe for a NATS header value or a single log field.
        """
        return one_line("; ".join(str(problem) for problem in self.problems))

    def to_json(self) -> list[dict[str, str]]:
        """The problems as a list of JSON-ready dicts (empty when valid)."""
        return [problem.to_json() for problem in self.problems]


VALID = Report()


def one_line(text: str) -> str:
    """``text`` with line breaks and other non-printable characters turned into spaces."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else " " for ch in text)


def shorten(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` itself, or its first ``limit - 3`` characters and ``...`` when it is longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def report_of(problems: tuple[Problem, ...] | list[Problem]) -> Report:
    """A report of ``problems``, :data:`VALID` itself when there are none."""
    return Report(tuple(problems)) if problems else VALID
