"""Compile a LIKE pattern (CESQL v1.0.0 section 3.4) into a matcher, once, at compile time.

``%`` matches any run of characters (including none), ``_`` exactly one character, and
``\\%`` / ``\\_`` a literal ``%`` / ``_``.  A backslash before any other character is an
ordinary character, as in sdk-go.  Matching is case-sensitive and covers the whole value.

Matching never backtracks, so its cost is bounded by the sizes of the value and the pattern,
whatever either holds (a regex such as ``.*a.*b.*`` would take time exponential in the number
of ``%``).  The pattern is split on ``%`` into *segments* of fixed length (literal characters
and ``_``).  The first segment must sit at the start of the value and the last at its end
(unless the pattern starts or ends with ``%``); each segment in between is found left to
right at its leftmost place after the previous one.  Taking the leftmost place is always
right: a later segment has at least as much room after it as after any other place.  Finding
a segment is a ``str.find`` for plain text and a quantifier-free regex search when it holds
``_``, so one value costs at most O(length of value x length of pattern) character steps,
done in C.  Common shapes (exact, prefix, suffix, contains) are one string operation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

LikeMatcher = Callable[[str], bool]
"""Tells whether a string matches a LIKE pattern."""

_ONE = None  # the ``_`` wildcard in a segment; any other item is a literal character


@dataclass(frozen=True, slots=True)
class _Segment:
    """A run of the pattern between two ``%``: a fixed number of characters and ``_``."""

    size: int
    text: str  # the segment's literal characters (all of it when ``regex`` is None)
    regex: re.Pattern[str] | None  # with ``_``: one ``.`` per ``_``, no quantifiers

    @classmethod
    def of(cls, items: list[str | None]) -> _Segment:
        text = "".join(c for c in items if c is not None)
        if _ONE not in items:
            return cls(len(items), text, None)
        source = "".join("." if c is None else re.escape(c) for c in items)
        return cls(len(items), text, re.compile(source, re.DOTALL))

    def at(self, value: str, pos: int) -> bool:
        """Whether the segment matches ``value`` starting exactly at ``pos``."""
        if self.regex is None:
            return value.startswith(self.text, pos)
        return self.regex.match(value, pos) is not None

    def find(self, value: str, pos: int, end: int) -> int:
        """The leftmost place in ``value[pos:end]`` where the whole segment fits, else -1."""
        if self.regex is None:
            return value.find(self.text, pos, end)
        found = self.regex.search(value, pos, end)
        return -1 if found is None else found.start()


def _split(pattern: str) -> list[list[str | None]]:
    """The segments of ``pattern`` between unescaped ``%`` (so one more than there are ``%``)."""
    segments: list[list[str | None]] = [[]]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and pattern[i + 1 : i + 2] in ("%", "_"):
            segments[-1].append(pattern[i + 1])
            i += 2
            continue
        if c == "%":
            segments.append([])
        else:
            segments[-1].append(_ONE if c == "_" else c)
        i += 1
    return segments


def compile_like(pattern: str) -> LikeMatcher:
    """Return a function telling whether a string matches the LIKE ``pattern``."""
    parts = _split(pattern)
    if len(parts) == 1:
        return _exact(_Segment.of(parts[0]))
    first = _Segment.of(parts[0])
    last = _Segment.of(parts[-1])
    # Empty middle segments (from "%%") match anywhere: dropping them changes nothing.
    middle = tuple(_Segment.of(p) for p in parts[1:-1] if p)
    if not middle and first.regex is None and last.regex is None:
        head, tail = first.text, last.text
        if not head and not tail:
            return lambda value: True
        if not tail:
            return lambda value: value.startswith(head)
        if not head:
            return lambda value: value.endswith(tail)
        size = len(head) + len(tail)
        return lambda value: len(value) >= size and value.startswith(head) and value.endswith(tail)
    if len(middle) == 1 and first.size == last.size == 0 and middle[0].regex is None:
        text = middle[0].text
        return lambda value: text in value
    return _Matcher(first, middle, last)


def _exact(segment: _Segment) -> LikeMatcher:
    if segment.regex is None:
        text = segment.text
        return lambda value: value == text
    size = segment.size
    return lambda value: len(value) == size and segment.at(value, 0)


@dataclass(frozen=True, slots=True)
class _Matcher:
    """A pattern with at least one ``%``: anchored first and last segments, free middle ones."""

    first: _Segment
    middle: tuple[_Segment, ...]
    last: _Segment

    def __call__(self, value: str) -> bool:
        first, last = self.first, self.last
        end = len(value) - last.size  # where the last segment must start
        if end < first.size or not first.at(value, 0) or not last.at(value, end):
            return False
        pos = first.size
        for segment in self.middle:
            found = segment.find(value, pos, end)
            if found < 0:
                return False
            pos = found + segment.size
        return True
