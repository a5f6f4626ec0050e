"""The casts of CESQL v1.0.0 section 3.7: String, Integer and Boolean conversions.

A failed cast raises :class:`~cerouter.cesql.result.EvalFailure` (a CastError) attributed to the
node that asked for it; the values and types themselves are in :mod:`cerouter.cesql.values`.
"""

from __future__ import annotations

import re
from typing import Final

from cerouter.cesql.nodes import Node
from cerouter.cesql.result import CesqlErrorKind, EvalFailure
from cerouter.cesql.values import Type, Value, format_value, in_int32

# Only ASCII digits: Python's int() would also accept "1_000", " 7 " and non-ASCII digits.
_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")


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
