"""Filter specs, as routes.yaml's ``match:`` writes them, compiled into :mod:`.filters` nodes.

A filter expression is a mapping whose keys are dialects (ANDed when there are several)::

    exact:  {type: com.example.order.created, source: /shop}   every key equal (case-sensitive)
    prefix: {type: com.example.order.}                          every key starts with the value
    suffix: {subject: .pdf}                                     every key ends with the value
    all:    [<filter>, ...]                                     every nested filter true (>= 1)
    any:    [<filter>, ...]                                     one nested filter true at least
    not:    <filter>                                            the nested filter is false
    sql:    "source LIKE '%shop%'"                              a CESQL v1 expression is TRUE

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

How the compiled filters evaluate is :mod:`cerouter.routing.filters`'s part. A malformed spec
raises :class:`FilterError`, whose ``path`` locates the culprit inside the spec.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import lru_cache

from cerouter.binding import canonical_string
from cerouter.cesql import Expression, compile_expression
from cerouter.errors import CesqlParseError
from cerouter.routing.filters import (
    AllOf,
    AnyOf,
    Compare,
    Comparison,
    DataCompare,
    Filter,
    MatchAll,
    Not,
    PathPart,
    Sql,
    conjunction,
)

DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "sql")
DATA_PREFIX = "data."

_ATTRIBUTE = re.compile(r"[a-z0-9]+")
_COMMON_ATTRIBUTES = ("type", "source", "subject", "id", "time", "datacontenttype", "dataschema")


class FilterError(ValueError):
    """A filter is malformed; ``path`` locates the culprit inside the filter spec."""

    def __init__(self, message: str, path: tuple[PathPart, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


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
    # compiled expression (less memory, and the one copy stays hot in the CPU cache). Keys are
    # CESQL sources from routes.yaml, never event values, so counting entries bounds it.
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
