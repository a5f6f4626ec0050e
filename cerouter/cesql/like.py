"""Compile a LIKE pattern (CESQL v1.0.0 section 3.4) into a matcher, once, at compile time.

``%`` matches any run of characters (including none), ``_`` exactly one character, and
``\\%`` / ``\\_`` a literal ``%`` / ``_``.  A backslash before any other character is an
ordinary character, as in sdk-go.  Matching is case-sensitive and covers the whole value.
Common shapes (exact, prefix, suffix, contains) skip the regex engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable

LikeMatcher = Callable[[str], bool]
"""Tells whether a string matches a LIKE pattern."""

_ANY = object()
_ONE = object()


def _segments(pattern: str) -> list[str | object]:
    """Split ``pattern`` into literal text runs and the ``_ANY`` / ``_ONE`` wildcards."""
    parts: list[str | object] = []
    text: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and pattern[i + 1 : i + 2] in ("%", "_"):
            text.append(pattern[i + 1])
            i += 2
            continue
        if c in "%_":
            if text:
                parts.append("".join(text))
                text = []
            wildcard = _ANY if c == "%" else _ONE
            # Consecutive '%' mean the same as one; dropping them keeps the shapes simple.
            if not (wildcard is _ANY and parts and parts[-1] is _ANY):
                parts.append(wildcard)
        else:
            text.append(c)
        i += 1
    if text:
        parts.append("".join(text))
    return parts


def compile_like(pattern: str) -> LikeMatcher:
    """Return a function telling whether a string matches the LIKE ``pattern``."""
    parts = _segments(pattern)
    if not parts:
        return lambda value: value == ""
    if _ONE not in parts:
        literals = [part for part in parts if isinstance(part, str)]
        starts_any = parts[0] is _ANY
        ends_any = parts[-1] is _ANY
        if len(literals) == 0:
            return lambda value: True
        if len(literals) == 1:
            text = literals[0]
            if starts_any and ends_any:
                return lambda value: text in value
            if starts_any:
                return lambda value: value.endswith(text)
            if ends_any:
                return lambda value: value.startswith(text)
            return lambda value: value == text
    regex = "".join(
        ".*" if part is _ANY else "." if part is _ONE else re.escape(str(part)) for part in parts
    )
    fullmatch = re.compile(regex, re.DOTALL).fullmatch
    return lambda value: fullmatch(value) is not None
