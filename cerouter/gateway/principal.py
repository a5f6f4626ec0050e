"""A caller of the gateway and what it may do: publish some types and sources, read some feeds.

Patterns (``publish.types``, ``publish.sources`` of the tokens file) are globs in which only
``*`` is special: it matches any run of characters, dots and slashes included, so
``com.example.order.*`` matches ``com.example.order.created`` and ``/shop/*`` matches
``/shop/eu/1``. Everything else is literal and case-sensitive (``?`` and ``[`` too: a source
such as ``https://[::1]/x`` means itself). Matching is linear in the length of the value, whatever
the pattern.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ALL_SUBSCRIPTIONS = "*"
"""In ``subscribe``: every named subscription, and ad-hoc ``?filter=`` feeds too."""


@dataclass(frozen=True, slots=True)
class Glob:
    """One ``*``-only glob, split at its stars."""

    pattern: str
    parts: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.pattern.split("*")))

    def matches(self, text: str) -> bool:
        """Whether ``text`` matches the whole pattern."""
        if len(self.parts) == 1:
            return text == self.pattern
        first, *middle, last = self.parts
        if len(text) < len(first) + len(last):
            return False
        if not text.startswith(first) or not text.endswith(last):
            return False
        # With '*' the only wildcard, taking each middle part at its leftmost place is enough:
        # a later match could only leave less room for the parts after it.
        at, end = len(first), len(text) - len(last)
        for part in middle:
            found = text.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True


@dataclass(frozen=True, slots=True)
class Patterns:
    """Several globs: a value is allowed when any of them matches (none: nothing is)."""

    globs: tuple[Glob, ...]

    @classmethod
    def of(cls, *patterns: str) -> Patterns:
        """Patterns from their text."""
        return cls(tuple(Glob(p) for p in patterns))

    def allow(self, value: object) -> bool:
        """Whether ``value`` (an attribute, maybe missing or not a string) is allowed."""
        return isinstance(value, str) and any(g.matches(value) for g in self.globs)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller (a token's name) and what it may publish and read.

    ``None`` means unrestricted: ``types``/``sources`` restrict what it publishes (an event must
    match both), ``reads`` names the subscriptions it may read (``*``: all, ad-hoc feeds too).
    """

    name: str
    types: Patterns | None = None
    sources: Patterns | None = None
    reads: frozenset[str] | None = None

    @property
    def restricted(self) -> bool:
        """Whether publishing is limited to some types or sources (the event must be read
        before it is routed, to check)."""
        return self.types is not None or self.sources is not None

    def may_publish(self, attributes: Mapping[str, object]) -> bool:
        """Whether this caller may publish an event with these attributes."""
        if self.types is not None and not self.types.allow(attributes.get("type")):
            return False
        return self.sources is None or self.sources.allow(attributes.get("source"))

    def may_read(self, subscription: str | None) -> bool:
        """Whether this caller may read an SSE feed (``None``: an ad-hoc ``?filter=`` feed)."""
        if self.reads is None or ALL_SUBSCRIPTIONS in self.reads:
            return True
        return subscription is not None and subscription in self.reads


ANONYMOUS = Principal("anonymous")
"""The caller when no tokens are configured: allowed everything."""
