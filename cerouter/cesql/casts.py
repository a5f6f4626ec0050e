"""CESQL types, zero values, 32-bit integer rules and the casts of CESQL v1.0.0 section 3.7.

Attribute values reach the engine as Python ``str``/``int``/``bool``; :func:`from_attribute`
maps anything else (and integers outside the 32-bit range, which are not valid CloudEvents
Integers) to its string form, so the rest of the engine only ever sees the three CESQL types.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import TYPE_CHECKING, Final

from cerouter.cesql.result import CesqlErrorKind, EvalFailure, Value

if TYPE_CHECKING:
    from cerouter.cesql.nodes import Node

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1

# Only ASCII digits: Python's int() would also accept "1_000", " 7 " and non-ASCII digits.
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")


class Type(Enum):
    """The three primitive CESQL types."""

    BOOLEAN = "Boolean"
    INTEGER = "Integer"
    STRING = "String"


def zero_value(t: Type | None) -> Value:
    """The zero value of ``t``; ``None`` (type unknown) counts as Boolean per section 3.2."""
    if t is Type.INTEGER:
        return 0
    if t is Type.STRING:
        return ""
    return False


def type_of(value: Value) -> Type:
    """The CESQL type of a runtime value."""
    if isinstance(value, bool):
        return Type.BOOLEAN
    if isinstance(value, int):
        return Type.INTEGER
    return Type.STRING


def in_int32(n: int) -> bool:
    """Whether ``n`` is a valid 32-bit signed integer."""
    return INT32_MIN <= n <= INT32_MAX


def from_attribute(raw: object) -> Value:
    """Map an attribute value of any Python type to a CESQL value of an exact builtin type."""
    if isinstance(raw, bool):
        return raw
    # The engine dispatches on exact classes, so subclasses (StrEnum, IntEnum...) are
    # converted with the base class's own method, whatever they override.
    if isinstance(raw, str):
        return str.__str__(raw)
    if isinstance(raw, int) and in_int32(raw):
        return int.__int__(raw)
    return str(raw)


def format_value(value: Value) -> str:
    """Render a value as CESQL literal text (for messages and ``explain``).

    Best effort for strings: a backslash right before a quote or at the very end cannot be
    written in a CESQL string literal at all (the lexer pairs it with the next character).
    """
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if "'" in value and '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def to_str(value: Value) -> str:
    """Cast to String; never fails (Boolean gives ``"true"``/``"false"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_int(value: Value, origin: Node | None) -> int:
    """Cast to Integer; a String that is not a 32-bit base-10 integer is a CastError."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return value
    if _INTEGER_TEXT.fullmatch(value):
        n = int(value)
        if in_int32(n):
            return n
        message = f"cannot cast {format_value(value)} to Integer: out of the 32-bit range"
    else:
        message = f"cannot cast {format_value(value)} to Integer"
    raise EvalFailure(CesqlErrorKind.CAST, message, None, origin)


def to_bool(value: Value, origin: Node | None) -> bool:
    """Cast to Boolean; only ``"true"``/``"false"`` in any letter case convert from String."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise EvalFailure(
        CesqlErrorKind.CAST, f"cannot cast {format_value(value)} to Boolean", None, origin
    )


def cast(value: Value, target: Type, origin: Node | None) -> Value:
    """Cast ``value`` to ``target``, raising a CastError attributed to ``origin``."""
    if target is Type.STRING:
        return to_str(value)
    if target is Type.INTEGER:
        return to_int(value, origin)
    return to_bool(value, origin)
