"""The built-in functions CESQL v1.0.0 requires, plus the casting functions.

``INT``, ``BOOL`` and ``STRING`` are required by the TCK and referenced by section 3.7 but
missing from the spec's function tables; they are declared here with one parameter of the
target type, so the ordinary argument cast *is* the function (a failed cast is a CastError
returning the zero value, e.g. ``INT('ABC')`` gives ``0``).

Arguments reach an implementation already cast to the declared parameter types.  An
implementation reports an error by raising :class:`FunctionFailure` with the value the
function returns alongside it (``LEFT('abc', -2)`` gives ``'abc'``, ``ABS(-2147483648)``
gives ``2147483647``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from cerouter.cesql.result import CesqlErrorKind
from cerouter.cesql.values import INT32_MAX, INT32_MIN, Type, Value

# The Unicode White_Space property; str.strip() would also remove U+001C..U+001F.
_WHITESPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


class FunctionFailure(Exception):
    """Raised by a function implementation: the error and the value returned with it."""

    def __init__(self, kind: CesqlErrorKind, message: str, value: Value) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.value = value


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One overload: fixed parameter types, an optional variadic type, the return type."""

    name: str
    params: tuple[Type, ...]
    returns: Type
    impl: Callable[..., Value]
    variadic: Type | None = None

    def param_type(self, index: int) -> Type:
        """The type argument ``index`` is cast to."""
        if index < len(self.params):
            return self.params[index]
        assert self.variadic is not None
        return self.variadic

    def accepts(self, arity: int) -> bool:
        """Whether this overload takes ``arity`` arguments."""
        if self.variadic is None:
            return arity == len(self.params)
        return arity >= len(self.params)


def _identity(value: Value) -> Value:
    return value


def _abs(x: int) -> int:
    if x == INT32_MIN:
        raise FunctionFailure(
            CesqlErrorKind.MATH, "ABS(-2147483648) overflows the 32-bit range", INT32_MAX
        )
    return abs(x)


def _left(x: str, y: int) -> str:
    if y < 0:
        raise FunctionFailure(
            CesqlErrorKind.FUNCTION_EVALUATION, f"LEFT: length {y} is negative", x
        )
    return x[:y]


def _right(x: str, y: int) -> str:
    if y < 0:
        raise FunctionFailure(
            CesqlErrorKind.FUNCTION_EVALUATION, f"RIGHT: length {y} is negative", x
        )
    return x[max(len(x) - y, 0) :]


def _substring_start(x: str, pos: int) -> int:
    """0-based start for a 1-based (or, if negative, from-the-end) ``pos`` other than 0."""
    if pos > len(x) or pos < -len(x):
        raise FunctionFailure(
            CesqlErrorKind.FUNCTION_EVALUATION,
            f"SUBSTRING: position {pos} is outside a string of length {len(x)}",
            "",
        )
    return pos - 1 if pos > 0 else len(x) + pos


def _substring(x: str, pos: int) -> str:
    if pos == 0:
        return ""
    return x[_substring_start(x, pos) :]


def _substring_len(x: str, pos: int, length: int) -> str:
    if length < 0:
        raise FunctionFailure(
            CesqlErrorKind.FUNCTION_EVALUATION, f"SUBSTRING: length {length} is negative", ""
        )
    if pos == 0:
        return ""
    start = _substring_start(x, pos)
    return x[start : start + length]


def _concat(*parts: str) -> str:
    return "".join(parts)


def _concat_ws(delimiter: str, *parts: str) -> str:
    return delimiter.join(parts)


_S, _I, _B = Type.STRING, Type.INTEGER, Type.BOOLEAN

_SPECS: Final = (
    FunctionSpec("LENGTH", (_S,), _I, len),
    FunctionSpec("CONCAT", (), _S, _concat, variadic=_S),
    FunctionSpec("CONCAT_WS", (_S,), _S, _concat_ws, variadic=_S),
    FunctionSpec("LOWER", (_S,), _S, str.lower),
    FunctionSpec("UPPER", (_S,), _S, str.upper),
    FunctionSpec("TRIM", (_S,), _S, lambda x: x.strip(_WHITESPACE)),
    FunctionSpec("LEFT", (_S, _I), _S, _left),
    FunctionSpec("RIGHT", (_S, _I), _S, _right),
    FunctionSpec("SUBSTRING", (_S, _I), _S, _substring),
    FunctionSpec("SUBSTRING", (_S, _I, _I), _S, _substring_len),
    FunctionSpec("ABS", (_I,), _I, _abs),
    FunctionSpec("INT", (_I,), _I, _identity),
    FunctionSpec("BOOL", (_B,), _B, _identity),
    FunctionSpec("STRING", (_S,), _S, _identity),
)


def _by_name() -> Mapping[str, tuple[FunctionSpec, ...]]:
    table: dict[str, tuple[FunctionSpec, ...]] = {}
    for spec in _SPECS:
        table[spec.name] = (*table.get(spec.name, ()), spec)
    return MappingProxyType(table)


BUILTINS: Final = _by_name()
"""Read-only table of the built-in overloads by upper-case function name."""


def resolve(name: str, arity: int) -> FunctionSpec | None:
    """The overload of ``name`` taking ``arity`` arguments, preferring a fixed arity."""
    overloads = BUILTINS.get(name.upper(), ())
    fixed = [spec for spec in overloads if spec.variadic is None and spec.accepts(arity)]
    if fixed:
        return fixed[0]
    return next((spec for spec in overloads if spec.accepts(arity)), None)


def is_identity(spec: FunctionSpec) -> bool:
    """Whether the function only casts its single argument (INT, BOOL, STRING)."""
    return spec.impl is _identity
