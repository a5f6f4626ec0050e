"""What an evaluation produces: a value, and the errors met on the way.

CESQL evaluation never raises to the caller (CESQL v1.0.0 section 3.3: "every operator and
function is total"); errors are values in :class:`Result`.  Inside the engine an error
travels as :class:`EvalFailure` because exceptions cost nothing on the (common) success path.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from cerouter.cesql.nodes import Node
from cerouter.cesql.values import Value


class CesqlErrorKind(StrEnum):
    """The error types of CESQL v1.0.0 section 3.3; values are the TCK error codes."""

    PARSE = "parse"
    MATH = "math"
    CAST = "cast"
    MISSING_ATTRIBUTE = "missingAttribute"
    MISSING_FUNCTION = "missingFunction"
    FUNCTION_EVALUATION = "functionEvaluation"
    GENERIC = "generic"


@dataclass(frozen=True, slots=True)
class EvalError:
    """One evaluation error: its ``kind`` and a one-line human ``message``."""

    kind: CesqlErrorKind
    message: str


class Result(NamedTuple):
    """The outcome of :meth:`Expression.evaluate`.

    ``value`` is always set, even with errors: it is the value the spec's error
    propagation rule assigns (the erroring node's own value if it is the whole
    expression, else the zero value of the expression's type).
    """

    value: Value
    errors: tuple[EvalError, ...] = ()


class EvalFailure(Exception):
    """Internal: an error raised by the node ``origin``, unwinding to the expression root.

    ``value`` is the value ``origin`` itself returns with the error, or ``None`` for the
    zero value of its type.  Only the root's own value survives: every ancestor of the
    erroring node returns its zero value (digest E.5), so the root decides.
    """

    __slots__ = ("kind", "message", "origin", "value")

    def __init__(
        self, kind: CesqlErrorKind, message: str, value: Value | None, origin: Node | None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.value = value
        self.origin = origin
