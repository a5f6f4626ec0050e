"""The compiled route table: from an event to the routes it matches, pure and synchronous.

It takes :class:`~cerouter.routing.model.Route` values (built once from routes.yaml by
:mod:`cerouter.config`) and gives :class:`~cerouter.routing.model.Match` values.

:class:`RouteTable` evaluates routes in order: every matching route fires (fan-out) until a matched
route is ``final``. The cost does not grow with the number of routes in the common case: routes
whose filter requires an exact ``type`` (or one of several) are indexed by it, routes requiring a
``type`` prefix are indexed by prefix, and only routes without a type condition are scanned. The
candidate list for an event type is computed once and kept (at most ``cache_size`` types, then
the memo starts over), so a steady stream costs one dict lookup plus the routes' remaining
conditions. No I/O, no logging, nothing compiled per event; data is parsed only when a candidate
route has a data condition.

Memory is bounded whatever producers send (see :mod:`cerouter.bounded`): event values of more
than :data:`~cerouter.bounded.MEMO_KEY_CHARS` (256) characters are never memo keys (such an
event is matched and rendered afresh), the rendered Matches are bounded in bytes
(:data:`MATCH_MEMO_BYTES`) as well as in number, and the per-type plans in number, each holding
its type (at most 256 characters) and one small tuple per candidate route.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

from cerouter.binding import DecodedEvent, canonical_string
from cerouter.bounded import MEMO_KEY_CHARS
from cerouter.errors import BindingError
from cerouter.routing.filters import (
    AnyOf,
    Attributes,
    Compare,
    DataGetter,
    Filter,
    Test,
    conjunction,
    conjuncts,
    no_data,
)
from cerouter.routing.model import Match, RenderedDestination, Route


class LazyData:
    """The data getter of one event: ``json_data()`` once, on first use, errors as not-JSON.

    Filters call it only when they look at data, so an event routed by its attributes is never
    parsed.
    """

    __slots__ = ("event", "value")

    def __init__(self, event: DecodedEvent) -> None:
        self.event = event
        self.value: tuple[bool, Any] | None = None

    def __call__(self) -> tuple[bool, Any]:
        value = self.value
        if value is None:
            try:
                value = self.event.json_data()
            except BindingError:
                value = (False, None)
            self.value = value
        return value


class _Entry:
    """A route compiled for the table: its position, residual test and Match builder.

    ``type_only``: every destination subject depends on nothing but the event type, so for a
    given type the Match is known in advance (see :meth:`RouteTable._entries`).
    """

    __slots__ = ("build", "final", "order", "route", "test", "type_only")

    def __init__(self, order: int, route: Route, residual: Filter | None, memos: _Memo) -> None:
        self.order = order
        self.route = route
        self.final = route.final
        self.test: Test | None = None if residual is None else residual.test
        self.build = _builder(route, memos)
        self.type_only = all(d.subject_template.names <= {"type"} for d in route.to)


# One candidate for one event type: (residual test, the Match if known in advance, builder, final).
_Candidate = tuple[Test | None, "Match | None", Callable[[Attributes], "Match"], bool]


class _Plan:
    """What the table keeps for an event type when some candidate still has a condition to test.

    ``settled``: the leading Matches known from the type alone (routes with no other condition
    and subjects depending on the type only); ``candidates``: the rest, in order. A type whose
    candidates are all settled is kept as a bare tuple of Matches instead (less to read per event).
    """

    __slots__ = ("candidates", "settled")

    def __init__(self, settled: tuple[Match, ...], candidates: tuple[_Candidate, ...]) -> None:
        self.settled = settled
        self.candidates = candidates


MATCH_MEMO_SIZE = 65536
"""How many rendered :class:`Match` values one table keeps for reuse, all routes together."""

MATCH_MEMO_BYTES = 16 * 2**20
"""How many bytes (as :func:`sys.getsizeof` counts them) those Matches and their keys may take."""

# What one memo entry costs besides its strings: the Match, its tuple of destinations and the
# dict's share (measured on CPython 3.11: 48 + 48 bytes, and ~100 for the dict slot and slack);
# and each RenderedDestination with its place in the tuple (and in a tuple key).
_ENTRY_BYTES: Final = 200
_DESTINATION_BYTES: Final = 64


class _Memo:
    """The table's memo of rendered Matches: one dict per route, one pair of limits for all.

    Matches are immutable, so equal ones can be shared. When either limit is reached, entries
    (``limit``) or their size in bytes (``byte_limit``, the strings counted exactly and the rest
    as measured), every dict is emptied: event values chosen by producers must not grow memory
    without bound. Keys are at most :data:`~cerouter.bounded.MEMO_KEY_CHARS` characters (a raw
    attribute value) or rendered subjects, whose tokens are at most 100 characters.
    """

    __slots__ = ("byte_limit", "bytes", "dicts", "limit", "used")

    def __init__(self, limit: int, byte_limit: int = MATCH_MEMO_BYTES) -> None:
        self.dicts: list[dict[Any, Match]] = []
        self.limit = limit
        self.byte_limit = byte_limit
        self.used = 0
        self.bytes = 0

    def new(self) -> dict[Any, Match]:
        """A dict for one route."""
        memo: dict[Any, Match] = {}
        self.dicts.append(memo)
        return memo

    def spend(self, cost: int) -> None:
        """Account for one entry of ``cost`` bytes about to be added; start over at a limit."""
        self.used += 1
        self.bytes += cost
        if self.used > self.limit or self.bytes > self.byte_limit:
            for memo in self.dicts:
                memo.clear()
            self.used = 1
            self.bytes = cost


def _builder(route: Route, memos: _Memo) -> Callable[[Attributes], Match]:
    """The function making a route's :class:`Match` for an event.

    A route whose subjects are all constant has one Match. Otherwise Matches are memoised (see
    :class:`_Memo`): subjects repeat, since types and sources have few values, so a match
    usually costs a dict lookup instead of rendering and building objects.
    """
    if all(d.subject_template.is_constant for d in route.to):
        static = Match(route, tuple(d.render({}) for d in route.to))
        return lambda attributes: static
    memo = memos.new()
    spend = memos.spend
    sizeof = sys.getsizeof
    if len(route.to) == 1 and len(route.to[0].subject_template.names) == 1:
        # One destination, one placeholder ("audit.{source}"): memoise by the attribute's raw
        # string value, so a repeat costs two dict lookups. Non-strings and long strings take
        # the slow path (True == 1 as dict keys, but they render differently).
        only = route.to[0]
        render = only.subject_template.renderer
        (name,) = only.subject_template.names
        one_bytes = _ENTRY_BYTES + _DESTINATION_BYTES
        longest = MEMO_KEY_CHARS

        def build_one(attributes: Attributes) -> Match:
            value = attributes.get(name)
            if value.__class__ is str:
                found = memo.get(value)
                if found is None:
                    subject = render(attributes, None)
                    found = Match(route, (RenderedDestination(only, subject),))
                    if len(value) <= longest:
                        spend(one_bytes + sizeof(value) + sizeof(subject))
                        memo[value] = found
                return found
            return Match(route, (RenderedDestination(only, render(attributes, None)),))

        return build_one
    renderers = tuple(d.subject_template.renderer for d in route.to)
    # The tuple key: its header, then a pointer per subject, on top of the destinations.
    fixed_bytes = _ENTRY_BYTES + sizeof(()) + len(route.to) * (_DESTINATION_BYTES + 8)

    def build(attributes: Attributes) -> Match:
        subjects = tuple([render(attributes, None) for render in renderers])
        found = memo.get(subjects)
        if found is None:
            spend(fixed_bytes + sum([sizeof(subject) for subject in subjects]))
            rendered = tuple(
                RenderedDestination(d, s) for d, s in zip(route.to, subjects, strict=True)
            )
            found = memo[subjects] = Match(route, rendered)
        return found

    return build


IndexKind = Literal["exact", "prefix", "scan"]


def index_of(match: Filter) -> tuple[IndexKind, tuple[str, ...], Filter | None]:
    """How a filter is indexed: ``(kind, type keys, residual filter or None)``.

    ``exact``: the filter requires ``type`` to equal one of the keys; ``prefix``: to start with
    the key; ``scan``: no type condition to index by. The residual is what remains to test once
    the index has selected the route.
    """
    parts = conjuncts(match)
    for i, part in enumerate(parts):
        keys = _exact_type_keys(part)
        if keys:
            return "exact", keys, _rest(parts, i)
    for i, part in enumerate(parts):
        if isinstance(part, Compare) and part.attribute == "type" and part.dialect == "prefix":
            return "prefix", (part.value,), _rest(parts, i)
    return "scan", (), None if not parts else match


def _exact_type_keys(part: Filter) -> tuple[str, ...]:
    if isinstance(part, Compare) and part.attribute == "type" and part.dialect == "exact":
        return (part.value,)
    if isinstance(part, AnyOf) and all(
        isinstance(c, Compare) and c.attribute == "type" and c.dialect == "exact"
        for c in part.filters
    ):
        return tuple(dict.fromkeys(c.value for c in part.filters if isinstance(c, Compare)))
    return ()


def _rest(parts: tuple[Filter, ...], skip: int) -> Filter | None:
    rest = parts[:skip] + parts[skip + 1 :]
    return conjunction(rest) if rest else None


class RouteTable:
    """Routes compiled for matching; build once, call :meth:`match` per event.

    Memory stays bounded whatever producers send: at most ``cache_size`` event types (of at
    most 256 characters) keep their candidate list, and at most ``memo_size`` rendered Matches,
    taking at most ``memo_bytes``, are kept for reuse (module docstring).
    """

    __slots__ = (
        "_cache", "_cache_size", "_exact", "_memos", "_needs_data", "_prefix", "_scan", "routes",
    )  # fmt: skip

    def __init__(
        self,
        routes: Iterable[Route],
        *,
        cache_size: int = 8192,
        memo_size: int = MATCH_MEMO_SIZE,
        memo_bytes: int = MATCH_MEMO_BYTES,
    ) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        memos = self._memos = _Memo(memo_size, memo_bytes)
        seen: set[str] = set()
        exact: dict[str, list[_Entry]] = {}
        prefix: dict[int, dict[str, list[_Entry]]] = {}
        scan: list[_Entry] = []
        for order, route in enumerate(self.routes):
            if route.name in seen:
                raise ValueError(f"duplicate route name {route.name!r}")
            seen.add(route.name)
            kind, keys, residual = index_of(route.match)
            entry = _Entry(order, route, residual, memos)
            if kind == "exact":
                for key in keys:
                    exact.setdefault(key, []).append(entry)
            elif kind == "prefix":
                prefix.setdefault(len(keys[0]), {}).setdefault(keys[0], []).append(entry)
            else:
                scan.append(entry)
        self._exact = {k: tuple(v) for k, v in exact.items()}
        self._prefix = tuple(
            (length, {k: tuple(v) for k, v in buckets.items()})
            for length, buckets in sorted(prefix.items())
        )
        self._scan = tuple(scan)
        self._needs_data = any(route.match.needs_data for route in self.routes)
        self._cache: dict[str, tuple[Match, ...] | _Plan] = {}
        self._cache_size = cache_size

    def __len__(self) -> int:
        return len(self.routes)

    def match(self, event: DecodedEvent) -> list[Match]:
        """The routes ``event`` matches, in order, stopping after a matched final route."""
        attributes = event.attributes
        per_type = self._cache.get(attributes.get("type"))  # type: ignore[arg-type]
        if per_type is None:
            per_type = self._per_type(attributes.get("type"))
        if isinstance(per_type, tuple):
            return list(per_type)
        out = list(per_type.settled)
        data: DataGetter = LazyData(event) if self._needs_data else no_data
        for test, known, build, final in per_type.candidates:
            if test is None or test(attributes, data):
                out.append(known if known is not None else build(attributes))
                if final:
                    break
        return out

    def match_attributes(
        self, attributes: Mapping[str, Any], data: DataGetter = no_data
    ) -> list[Match]:
        """Like :meth:`match` for a bare attribute mapping and an optional data getter."""
        per_type = self._cache.get(attributes.get("type"))  # type: ignore[arg-type]
        if per_type is None:
            per_type = self._per_type(attributes.get("type"))
        if isinstance(per_type, tuple):
            return list(per_type)
        out = list(per_type.settled)
        for test, known, build, final in per_type.candidates:
            if test is None or test(attributes, data):
                out.append(known if known is not None else build(attributes))
                if final:
                    break
        return out

    def candidates(self, event_type: Any) -> tuple[Route, ...]:
        """The routes an event of this type is tested against, in order (for tests and tools)."""
        return tuple(entry.route for entry in self._lookup(event_type))

    def _lookup(self, event_type: Any) -> list[_Entry]:
        if event_type is None:
            return list(self._scan)
        key = event_type if event_type.__class__ is str else canonical_string(event_type)
        found: list[_Entry] = list(self._exact.get(key, ()))
        size = len(key)
        for length, buckets in self._prefix:
            if length > size:
                break
            found.extend(buckets.get(key[:length], ()))
        found.extend(self._scan)
        found.sort(key=lambda e: e.order)
        return found

    def _per_type(self, event_type: Any) -> tuple[Match, ...] | _Plan:
        """What a type needs, computed once per type and memoised (bounded).

        Leading candidates with no condition left and type-only subjects are settled now: their
        Matches are the same for every event of the type. The rest keep their test.
        """
        typed = {"type": event_type} if event_type is not None else None
        entries = self._lookup(event_type)
        settled: list[Match] = []
        rest: tuple[_Candidate, ...] = ()
        for i, e in enumerate(entries):
            if typed is None or e.test is not None or not e.type_only:
                rest = tuple(
                    (x.test, x.build(typed) if typed is not None and x.type_only else None,
                     x.build, x.final)
                    for x in entries[i:]
                )  # fmt: skip
                break
            settled.append(e.build(typed))
            if e.final:
                break
        per_type = _Plan(tuple(settled), rest) if rest else tuple(settled)
        if event_type.__class__ is str and len(event_type) <= MEMO_KEY_CHARS:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[event_type] = per_type
        return per_type
