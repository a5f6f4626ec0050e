"""Compiled CloudEvents Subscriptions API filters: the nodes, how they evaluate and explain.

The nodes are frozen values built once, by :func:`cerouter.routing.filter_spec.compile_filter`
from a routes.yaml ``match:`` spec (the dialects are described there), each holding a plain
callable for the hot path.

Semantics follow the digest of the Subscriptions API (section D): attribute names and values are
case-sensitive, extensions are addressed like any attribute, values are compared with the
attribute's canonical string (``true``, ``42``), and a missing attribute makes its
``exact``/``prefix``/``suffix`` condition false (so ``not`` of it is true, unlike CESQL's ``NOT``).
A data condition (cerouter extension, :class:`DataCompare`) is false when the field is missing,
``null``, an object or an array, or when the data is not JSON.

Every node has ``test(attributes, data)``: ``attributes`` is the event's attribute mapping and
``data`` a zero-argument callable returning ``(is_json, value)``, called only by data conditions.
``explain(attributes, data)`` returns a :class:`Verdict` naming the condition that decided.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from cerouter.binding import canonical_string
from cerouter.cesql import Expression

Attributes = Mapping[str, Any]
DataGetter = Callable[[], tuple[bool, Any]]
Test = Callable[[Attributes, DataGetter], bool]
Comparison = Literal["exact", "prefix", "suffix"]
PathPart = str | int

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a filter on one event and the condition that decided it, in words."""

    matched: bool
    reason: str


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def no_data() -> tuple[bool, Any]:
    """A data getter for events without data (or callers that have none)."""
    return False, None


# --------------------------------------------------------------------------- nodes


class Filter:
    """Base of the compiled filter nodes (frozen dataclasses below)."""

    __slots__ = ()

    test: Test

    @property
    def needs_data(self) -> bool:
        """``True`` when evaluating this filter may read the event's data."""
        return False

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        """Evaluate and say which condition decided."""
        raise NotImplementedError


def _set_test(node: Filter, test: Test) -> None:
    object.__setattr__(node, "test", test)


@dataclass(frozen=True, slots=True)
class MatchAll(Filter):
    """The empty filter: matches every event."""

    test: Test = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _set_test(self, lambda attributes, data: True)

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        return Verdict(True, "no conditions (matches every event)")

    def __str__(self) -> str:
        return "{}"


def _attribute_string(attributes: Attributes, name: str) -> str | None:
    value = attributes.get(name)
    if value is None or value.__class__ is str:
        return value
    return canonical_string(value)


def _compare(dialect: Comparison, want: str, got: str) -> bool:
    if dialect == "exact":
        return got == want
    if dialect == "prefix":
        return got.startswith(want)
    return got.endswith(want)


def _describe_comparison(dialect: Comparison, key: str, want: str, got: str, ok: bool) -> str:
    if not ok:
        return f"{dialect} {key}: {_q(want)} ≠ {_q(got)}"
    if dialect == "exact":
        return f"exact {key}: {_q(want)} = {_q(got)}"
    return f"{dialect} {key}: {_q(want)} is a {dialect} of {_q(got)}"


@dataclass(frozen=True, slots=True)
class Compare(Filter):
    """``exact``/``prefix``/``suffix`` on one context attribute."""

    dialect: Comparison
    attribute: str
    value: str
    test: Test = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        name, want = self.attribute, self.value
        if self.dialect == "exact":

            def test(attributes: Attributes, data: DataGetter) -> bool:
                got = attributes.get(name)
                if got.__class__ is str:
                    return got == want
                return got is not None and canonical_string(got) == want

        elif self.dialect == "prefix":

            def test(attributes: Attributes, data: DataGetter) -> bool:
                got = attributes.get(name)
                if got.__class__ is str:
                    return got.startswith(want)
                return got is not None and canonical_string(got).startswith(want)

        else:

            def test(attributes: Attributes, data: DataGetter) -> bool:
                got = attributes.get(name)
                if got.__class__ is str:
                    return got.endswith(want)
                return got is not None and canonical_string(got).endswith(want)

        _set_test(self, test)

    @property
    def key(self) -> str:
        """The filter key: the attribute name."""
        return self.attribute

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        got = _attribute_string(attributes, self.attribute)
        if got is None:
            return Verdict(
                False, f"{self.dialect} {self.attribute}: attribute missing (want {_q(self.value)})"
            )
        ok = _compare(self.dialect, self.value, got)
        return Verdict(ok, _describe_comparison(self.dialect, self.attribute, self.value, got, ok))

    def __str__(self) -> str:
        return f"{self.dialect} {self.attribute}={_q(self.value)}"


def lookup_data(value: Any, path: Sequence[PathPart]) -> Any:
    """Follow ``path`` into a JSON value; return ``_MISSING`` when it leads nowhere."""
    for part in path:
        if isinstance(value, dict):
            if not isinstance(part, str) or part not in value:
                # An all-digit part may still be an object key.
                key = str(part)
                if key not in value:
                    return _MISSING
                value = value[key]
            else:
                value = value[part]
        elif isinstance(value, list) and isinstance(part, int):
            if part >= len(value):
                return _MISSING
            value = value[part]
        else:
            return _MISSING
    return value


def data_string(value: Any) -> str | None:
    """The comparison string of a JSON scalar (``None`` for null, objects, arrays, missing)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return orjson.dumps(value).decode()
    return None


@dataclass(frozen=True, slots=True)
class DataCompare(Filter):
    """cerouter extension: ``exact``/``prefix``/``suffix`` on a field of JSON ``data``."""

    dialect: Comparison
    path: tuple[PathPart, ...]
    value: str
    test: Test = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        dialect, path, want = self.dialect, self.path, self.value

        def test(attributes: Attributes, data: DataGetter) -> bool:
            is_json, doc = data()
            if not is_json:
                return False
            got = data_string(lookup_data(doc, path))
            return got is not None and _compare(dialect, want, got)

        _set_test(self, test)

    @property
    def needs_data(self) -> bool:
        return True

    @property
    def key(self) -> str:
        """The filter key as written: ``data.customer.tier``."""
        return "data." + ".".join(str(p) for p in self.path)

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        head = f"{self.dialect} {self.key}"
        is_json, doc = data()
        if not is_json:
            return Verdict(False, f"{head}: data is not JSON (want {_q(self.value)})")
        found = lookup_data(doc, self.path)
        if found is _MISSING:
            return Verdict(False, f"{head}: no such field in data (want {_q(self.value)})")
        got = data_string(found)
        if got is None:
            kind = (
                "null" if found is None else "an object" if isinstance(found, dict) else "an array"
            )
            return Verdict(False, f"{head}: field is {kind}, not a value (want {_q(self.value)})")
        ok = _compare(self.dialect, self.value, got)
        return Verdict(ok, _describe_comparison(self.dialect, self.key, self.value, got, ok))

    def __str__(self) -> str:
        return f"{self.dialect} {self.key}={_q(self.value)}"


@dataclass(frozen=True, slots=True)
class AllOf(Filter):
    """``all``: every nested filter is true (also the AND of a mapping's keys)."""

    filters: tuple[Filter, ...]
    test: Test = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        tests = tuple(f.test for f in self.filters)
        if len(tests) == 2:
            first, second = tests

            def test(attributes: Attributes, data: DataGetter) -> bool:
                return first(attributes, data) and second(attributes, data)

        else:

            def test(attributes: Attributes, data: DataGetter) -> bool:
                for t in tests:  # noqa: SIM110 (a loop is faster than all() here)
                    if not t(attributes, data):
                        return False
                return True

        _set_test(self, test)

    @property
    def needs_data(self) -> bool:
        return any(f.needs_data for f in self.filters)

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        reasons = []
        for f in self.filters:
            verdict = f.explain(attributes, data)
            if not verdict.matched:
                return verdict
            reasons.append(verdict.reason)
        return Verdict(True, " and ".join(reasons))

    def __str__(self) -> str:
        return "all(" + ", ".join(str(f) for f in self.filters) + ")"


@dataclass(frozen=True, slots=True)
class AnyOf(Filter):
    """``any``: at least one nested filter is true (also a shorthand list of values)."""

    filters: tuple[Filter, ...]
    test: Test = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        tests = tuple(f.test for f in self.filters)

        def test(attributes: Attributes, data: DataGetter) -> bool:
            for t in tests:  # noqa: SIM110 (a loop is faster than any() here)
                if t(attributes, data):
                    return True
            return False

        _set_test(self, test)

    @property
    def needs_data(self) -> bool:
        return any(f.needs_data for f in self.filters)

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        reasons = []
        for f in self.filters:
            verdict = f.explain(attributes, data)
            if verdict.matched:
                return verdict
            reasons.append(verdict.reason)
        return Verdict(False, "none of: " + "; ".join(reasons))

    def __str__(self) -> str:
        return "any(" + ", ".join(str(f) for f in self.filters) + ")"


@dataclass(frozen=True, slots=True)
class Not(Filter):
    """``not``: the nested filter is false (plain boolean inversion)."""

    filter: Filter
    test: Test = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        inner = self.filter.test

        def test(attributes: Attributes, data: DataGetter) -> bool:
            return not inner(attributes, data)

        _set_test(self, test)

    @property
    def needs_data(self) -> bool:
        return self.filter.needs_data

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        verdict = self.filter.explain(attributes, data)
        return Verdict(not verdict.matched, f"not ({verdict.reason})")

    def __str__(self) -> str:
        return f"not({self.filter})"


@dataclass(frozen=True, slots=True)
class Sql(Filter):
    """``sql``: a CESQL expression; true only when it evaluates to TRUE without errors."""

    source: str
    expression: Expression = field(compare=False, repr=False)
    test: Test = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        matches = self.expression.matches

        def test(attributes: Attributes, data: DataGetter) -> bool:
            return matches(attributes)

        _set_test(self, test)

    def explain(self, attributes: Attributes, data: DataGetter) -> Verdict:
        if self.expression.matches(attributes):
            return Verdict(True, f"sql {_q(self.source)} is TRUE")
        return Verdict(False, f"sql: {self.expression.explain(attributes)}")

    def __str__(self) -> str:
        return f"sql {_q(self.source)}"


def conjuncts(node: Filter) -> tuple[Filter, ...]:
    """The top-level AND terms of a filter (empty for :class:`MatchAll`)."""
    if isinstance(node, MatchAll):
        return ()
    if isinstance(node, AllOf):
        return tuple(c for f in node.filters for c in conjuncts(f))
    return (node,)


def conjunction(parts: Sequence[Filter]) -> Filter:
    """AND of ``parts``: the single part itself, :class:`MatchAll` for none."""
    flat = [c for p in parts for c in conjuncts(p)]
    if not flat:
        return MatchAll()
    if len(flat) == 1:
        return flat[0]
    return AllOf(tuple(flat))
