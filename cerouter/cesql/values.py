"""CESQL values and their types: the three primitive types, zero values, 32-bit integers.

The bottom of the engine: it imports no other part of it. Attribute values reach the engine as
Python ``str``/``int``/``bool``; :func:`from_attribute` maps anything else (and integers outside
the 32-bit range, which are not valid CloudEvents Integers) to its string form, so the rest of
the engine only ever sees the three CESQL types. :func:`format_value` writes a value as CESQL
literal text.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

Value = bool | int | str
"""A CESQL value: Boolean, 32-bit Integer or String."""

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1


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
