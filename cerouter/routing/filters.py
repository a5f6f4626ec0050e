"""CloudEvents Subscriptions API filter dialects, compiled once into plain callables.

A filter expression is a mapping whose keys are dialects (ANDed when there are several)::

    exact:  {type: com.example.order.created, source: /shop}   every key equal (case-sensitive)
    prefix: {type: com.example.order.}                          every key starts with the value
    suffix: {subject: .pdf}                                     every key ends with the value
    all:    [<filter>, ...]                                     every nested filter true (>= 1)
    any:    [<filter>, ...]                                     one nested filter true at least
    not:    <filter>                                            the nested filter is false
    sql:    "source LIKE '%shop%'"                              a CESQL v1 expression is TRUE

Semantics follow the digest of the Subscriptions API (section D): attribute names and values are
case-sensitive, extensions are addressed like any attribute, values are compared with the
attribute's canonical string (``true``, ``42``), and a missing attribute makes its
``exact``/``prefix``/``suffix`` condition false (so ``not`` of it is true, unlike CESQL's ``NOT``).

Shorthand: any other key is an attribute matched exactly, so ``{type: X}`` means
``{exact: {type: X}}``; a list value means "one of" (``{type: [A, B]}``). An extension named like
a dialect (say ``prefix``) must then be written in the long form: ``{exact: {prefix: ...}}``.
A list of filters is their conjunction (the Subscriptions API ``filters`` array); an empty
filter matches everything.

**cerouter extension (not in the standard):** in ``exact``/``prefix``/``suffix`` and the shorthand,
a key ``data.<field>[.<field>...]`` compares a field of JSON ``data`` (``data.customer.tier``;
an all-digit field indexes a list: ``data.items.0.sku``). Strings compare as they are, booleans
as ``true``/``false``, numbers as their JSON text; ``null``, objects, arrays, a missing field or
data that is not JSON make the condition false. Field names containing ``.`` cannot be addressed.

Every node has ``test(attributes, data)``: ``attributes`` is the event's attribute mapping and
``data`` a zero-argument callable returning ``(is_json, value)``, called only by data conditions.
``explain(attributes, data)`` returns a :class:`Verdict` naming the condition that decided.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson

from cerouter.binding import canonical_string
from cerouter.cesql import Expression, compile_expression
from cerouter.errors import CesqlParseError

Attributes = Mapping[str, Any]
DataGetter = Callable[[], tuple[bool, Any]]
Test = Callable[[Attributes, DataGetter], bool]
Comparison = Literal["exact", "prefix", "suffix"]
PathPart = str | int

DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "sql")
DATA_PREFIX = "data."

_ATTRIBUTE = re.compile(r"[a-z0-9]+")
_MISSING: Any = object()
_COMMON_ATTRIBUTES = ("type", "source", "subject", "id", "time", "datacontenttype", "dataschema")


class FilterError(ValueError):
    """A filter is malformed; ``path`` locates the culprit inside the filter spec."""

    def __init__(self, message: str, path: tuple[PathPart, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


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


# --------------------------------------------------------------------------- compiling


def compile_filter(spec: object, path: tuple[PathPart, ...] = ()) -> Filter:
    """Compile a filter spec (plain mappings, lists and scalars) once.

    Raises :class:`FilterError` whose ``path`` (relative to ``spec``) locates the problem.
    """
    if isinstance(spec, list):
        return conjunction([compile_filter(item, (*path, i)) for i, item in enumerate(spec)])
    if spec is None:
        return MatchAll()
    if not isinstance(spec, Mapping):
        raise FilterError(
            f"a filter must be a mapping of dialects ({', '.join(DIALECTS)}) or attributes, "
            f"got {_kind(spec)}",
            path,
        )
    parts: list[Filter] = []
    for key, value in spec.items():
        here = (*path, key)
        if key in ("exact", "prefix", "suffix"):
            parts.extend(_comparisons(key, value, here))
        elif key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise FilterError(f"'{key}' needs a non-empty list of filters", here)
            nested = tuple(compile_filter(item, (*here, i)) for i, item in enumerate(value))
            parts.append(AllOf(nested) if key == "all" else AnyOf(nested))
        elif key == "not":
            if not isinstance(value, Mapping | list):
                raise FilterError("'not' needs one nested filter (a mapping)", here)
            parts.append(Not(compile_filter(value, here)))
        elif key == "sql":
            parts.append(compile_sql(value, here))
        else:
            parts.append(_shorthand(str(key), value, here))
    return conjunction(parts)


@lru_cache(maxsize=4096)
def _shared_expression(source: str) -> Expression:
    # Expressions are immutable and stateless, so routes with the same condition share one
    # compiled expression (less memory, and the one copy stays hot in the CPU cache).
    return compile_expression(source)


def compile_sql(value: object, path: tuple[PathPart, ...] = ()) -> Sql:
    """Compile the ``sql`` dialect's CESQL expression."""
    if not isinstance(value, str) or not value.strip():
        raise FilterError("'sql' needs a CESQL expression string", path)
    try:
        expression = _shared_expression(value)
    except CesqlParseError as exc:
        raise FilterError(
            f"CESQL syntax error at column {exc.column}: {exc.message}", path
        ) from None
    return Sql(value, expression)


def _comparisons(dialect: str, value: object, path: tuple[PathPart, ...]) -> list[Filter]:
    if not isinstance(value, Mapping) or not value:
        raise FilterError(
            f"'{dialect}' needs a mapping of attribute names to values, e.g. "
            f"{{{dialect}: {{type: com.example.x}}}}",
            path,
        )
    return [
        _comparison(dialect, str(key), item, (*path, key))  # type: ignore[arg-type]
        for key, item in value.items()
    ]


def _comparison(dialect: Comparison, key: str, value: object, path: tuple[PathPart, ...]) -> Filter:
    want = _filter_value(value, path)
    if key.startswith(DATA_PREFIX):
        return DataCompare(dialect, parse_data_path(key, path), want)
    _check_attribute_name(key, path)
    return Compare(dialect, key, want)


def _shorthand(key: str, value: object, path: tuple[PathPart, ...]) -> Filter:
    if not key.startswith(DATA_PREFIX) and not _ATTRIBUTE.fullmatch(key):
        _check_attribute_name(key, path)
    if isinstance(value, Mapping):
        close = difflib.get_close_matches(key, DIALECTS, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise FilterError(
            f"unknown filter dialect '{key}'{hint}; a plain key is an attribute matched exactly "
            "and takes a string (or a list of strings)",
            path,
        )
    if isinstance(value, list):
        if not value:
            raise FilterError(f"'{key}' needs at least one value", path)
        options = tuple(_comparison("exact", key, v, (*path, i)) for i, v in enumerate(value))
        return options[0] if len(options) == 1 else AnyOf(options)
    return _comparison("exact", key, value, path)


def _filter_value(value: object, path: tuple[PathPart, ...]) -> str:
    if isinstance(value, str | bool | int) and not isinstance(value, float):
        text = canonical_string(value)
        if not text:
            raise FilterError("filter values must not be empty strings", path)
        return text
    raise FilterError(f"a filter value must be a string, got {_kind(value)}", path)


def _check_attribute_name(key: str, path: tuple[PathPart, ...]) -> None:
    if _ATTRIBUTE.fullmatch(key):
        return
    hint = ""
    close = difflib.get_close_matches(key.lower(), (*DIALECTS, *_COMMON_ATTRIBUTES), n=1)
    if close:
        hint = f" (did you mean '{close[0]}'?)"
    raise FilterError(
        f"'{key}' is not an attribute name (lowercase letters and digits) or 'data.<field>'{hint}",
        path,
    )


def parse_data_path(key: str, path: tuple[PathPart, ...] = ()) -> tuple[PathPart, ...]:
    """``data.items.0.sku`` → ``("items", 0, "sku")``; all-digit parts index lists."""
    parts = key[len(DATA_PREFIX) :].split(".")
    if not all(parts):
        raise FilterError(f"'{key}': empty field name in a data path", path)
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__
