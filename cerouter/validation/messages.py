"""One line per JSON Schema error that names the rule the data broke, not the data.

jsonschema-rs writes the failing value into its messages (``"hunter2" does not match
"^[a-z]+$"``). Reports end up in dead-letter headers and logs, so :func:`rule_message` writes
its own message from the error's ``kind`` (the keyword and its schema-side arguments: a limit,
a pattern, a format, the allowed values): ``does not match "^[a-z]+$"``, ``is less than the
minimum of 0``. With ``include_values`` the failing value comes first, as JSON, when it is a
scalar (``-3 is less than the minimum of 0``); objects and arrays are never shown. Member names
(``additionalProperties``), which the JSON pointers show anyway, are named. Everything quoted is
cut to :data:`~cerouter.validation.report.VALUE_LIMIT` characters, at most a few names or allowed
values are listed, and a rule is at most :data:`RULE_LIMIT` characters: a message is short
whatever the schema or the event hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import jsonschema_rs
import orjson

from cerouter.validation.report import shorten

__all__ = ["RULE_LIMIT", "rule_message", "show_json"]

RULE_LIMIT: Final = 200
"""The most characters of a rule's wording (a value shown in front of it comes on top)."""

_Kind = jsonschema_rs.ValidationErrorKind
_MAX_NAMES: Final = 5  # names or allowed values listed in one message
_SCALARS: Final = (str, int, float, bool, type(None))

# Keywords whose false subschema rejects a member, not the instance itself.
_PROPERTY_KEYWORDS: Final = frozenset(
    {"additionalProperties", "unevaluatedProperties", "patternProperties", "properties"}
)
_ITEM_KEYWORDS: Final = frozenset({"items", "additionalItems", "prefixItems", "unevaluatedItems"})


def show_json(value: Any) -> str:
    """``value`` as JSON, cut to the value limit (``str()`` for what JSON cannot hold)."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:  # a Decimal limit, say
        text = str(value)
    return shorten(text)


def rule_message(error: jsonschema_rs.ValidationError, *, include_values: bool = False) -> str:
    """What ``error`` says is wrong, without the failing value unless ``include_values``."""
    kind = error.kind
    rule = shorten(_RULES.get(kind.__class__, _unknown)(kind, error, include_values), RULE_LIMIT)
    if include_values:
        instance = error.instance
        if isinstance(instance, _SCALARS):
            return f"{show_json(instance)} {rule}"
    return rule


def _names(names: list[Any]) -> str:
    shown = ", ".join(show_json(name) for name in names[:_MAX_NAMES])
    more = len(names) - _MAX_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _false_schema(kind: Any, error: jsonschema_rs.ValidationError, values: bool) -> str:
    path = error.schema_path
    keyword = path[-1] if path else None
    if keyword in _PROPERTY_KEYWORDS:
        return f"has a property that is not allowed ({keyword} is false)"
    if keyword in _ITEM_KEYWORDS:
        return f"has an item that is not allowed ({keyword} is false)"
    return "is not allowed here (the schema is false)"


def _property_names(kind: Any, error: jsonschema_rs.ValidationError, values: bool) -> str:
    inner = rule_message(kind.error, include_values=values)
    return f"has a property name that is not allowed: {inner}"


def _unknown(kind: Any, error: jsonschema_rs.ValidationError, values: bool) -> str:
    name = getattr(kind, "name", None)  # a kind added by a later jsonschema-rs
    return f"fails the {show_json(name)} keyword" if isinstance(name, str) else "is not valid"


_Rule = Callable[[Any, jsonschema_rs.ValidationError, bool], str]

# One rule per kind, in the order of jsonschema_rs.ValidationErrorKind; looked up by class.
_RULES: Final[dict[type, _Rule]] = {
    _Kind.AdditionalItems: lambda k, e, v: (
        f"has more than {k.limit} items, and additional items are not allowed"
    ),
    _Kind.AdditionalProperties: lambda k, e, v: (
        f"has properties that are not allowed: {_names(k.unexpected)}"
    ),
    _Kind.AnyOf: lambda k, e, v: "is not valid under any of the schemas in anyOf",
    _Kind.BacktrackLimitExceeded: lambda k, e, v: (
        "could not be matched against the pattern (backtracking limit exceeded)"
    ),
    _Kind.RegexEngineFailure: lambda k, e, v: (
        "could not be matched against the pattern (regex engine failure)"
    ),
    _Kind.Constant: lambda k, e, v: f"is not the constant {show_json(k.expected_value)}",
    _Kind.Contains: lambda k, e, v: "has no item valid under the contains schema",
    _Kind.ContentEncoding: lambda k, e, v: f"is not encoded as {show_json(k.content_encoding)}",
    _Kind.ContentMediaType: lambda k, e, v: (
        f"is not a valid {show_json(k.content_media_type)} document"
    ),
    _Kind.Custom: lambda k, e, v: f"fails the {show_json(k.keyword)} keyword",
    _Kind.Enum: lambda k, e, v: f"is not one of {_names(k.options)}",
    _Kind.ExclusiveMaximum: lambda k, e, v: (
        f"is greater than or equal to the maximum of {show_json(k.limit)}"
    ),
    _Kind.ExclusiveMinimum: lambda k, e, v: (
        f"is less than or equal to the minimum of {show_json(k.limit)}"
    ),
    _Kind.FalseSchema: _false_schema,
    _Kind.Format: lambda k, e, v: f"is not a valid {shorten(k.format)}",
    _Kind.FromUtf8: lambda k, e, v: "is not valid UTF-8",
    _Kind.MaxItems: lambda k, e, v: f"has more than {k.limit} items",
    _Kind.Maximum: lambda k, e, v: f"is greater than the maximum of {show_json(k.limit)}",
    _Kind.MaxLength: lambda k, e, v: f"is longer than {k.limit} characters",
    _Kind.MaxProperties: lambda k, e, v: f"has more than {k.limit} properties",
    _Kind.MinItems: lambda k, e, v: f"has fewer than {k.limit} items",
    _Kind.Minimum: lambda k, e, v: f"is less than the minimum of {show_json(k.limit)}",
    _Kind.MinLength: lambda k, e, v: f"is shorter than {k.limit} characters",
    _Kind.MinProperties: lambda k, e, v: f"has fewer than {k.limit} properties",
    _Kind.MultipleOf: lambda k, e, v: f"is not a multiple of {show_json(k.multiple_of)}",
    _Kind.Not: lambda k, e, v: "is valid under the schema in not, which is not allowed",
    _Kind.OneOfMultipleValid: lambda k, e, v: (
        "is valid under more than one of the schemas in oneOf"
    ),
    _Kind.OneOfNotValid: lambda k, e, v: "is not valid under any of the schemas in oneOf",
    _Kind.Pattern: lambda k, e, v: f"does not match {show_json(k.pattern)}",
    _Kind.PropertyNames: _property_names,
    _Kind.Required: lambda k, e, v: f"{show_json(k.property)} is a required property",
    _Kind.Type: lambda k, e, v: f"is not of type {' or '.join(show_json(t) for t in k.types)}",
    _Kind.UnevaluatedItems: lambda k, e, v: "has items that are not allowed (unevaluatedItems)",
    _Kind.UnevaluatedProperties: lambda k, e, v: (
        f"has properties that are not allowed: {_names(k.unexpected)}"
    ),
    _Kind.UniqueItems: lambda k, e, v: "has non-unique items",
    _Kind.Referencing: lambda k, e, v: "refers to a schema that cannot be resolved",
}
