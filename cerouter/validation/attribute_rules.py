"""The CloudEvents 1.0 attribute rules in full: every attribute's type, and the full check.

The rules are listed in :mod:`cerouter.validation.envelope`, which answers for the common,
valid shapes on a fast path of its own and comes here for everything else:
:func:`find_problems` finds every broken rule and words it, and remembers the names and values
it found valid (:data:`valid_uri_refs` and the other memos) so that the next event with them
stays on the fast path. :func:`check_json_members` checks the JSON-format rules of a structured
event object; it is re-exported by :mod:`~cerouter.validation.envelope`, with the public types
and tables.

Messages are worded as the envelope's docstring says: the attribute and the rule, the value
(shortened) only with ``include_values``.

Memory: the five remembered sets hold at most 4,096 strings each, none longer than
:data:`~cerouter.bounded.MEMO_KEY_CHARS` (256) characters (a longer value is checked every
time): at most 1 Mi characters per set, ~1.3 MB for ASCII values and ~4.5 MB whatever they are
(:data:`~cerouter.bounded.MAX_KEY_BYTES` each), whatever producers send. Once a set is full it
stays as it is: later values take the full check.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any, Final

from cerouter.bounded import MEMO_KEY_CHARS
from cerouter.validation.formats import (
    ABSOLUTE_URI,
    ATTRIBUTE_NAME,
    BAD_CHAR,
    INTEGER_STRING,
    MEDIA_TYPE,
    URI_REFERENCE,
    is_timestamp,
)
from cerouter.validation.report import Problem, Stage, shorten

INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
REQUIRED_ATTRIBUTES: Final = ("id", "source", "specversion", "type")


class AttrType(Enum):
    """The CloudEvents type system (spec digest B.3), plus the two specialised core strings."""

    STRING = "String"
    INTEGER = "Integer"
    BOOLEAN = "Boolean"
    URI = "URI"
    URI_REFERENCE = "URI-reference"
    TIMESTAMP = "Timestamp"
    SPECVERSION = "specversion"  # a String that must be "1.0"
    MEDIA_TYPE = "media type"  # a String per RFC 2046 (datacontenttype)


_CORE_TYPES: Final[Mapping[str, AttrType]] = {
    "id": AttrType.STRING,
    "source": AttrType.URI_REFERENCE,
    "specversion": AttrType.SPECVERSION,
    "type": AttrType.STRING,
    "datacontenttype": AttrType.MEDIA_TYPE,
    "dataschema": AttrType.URI,
    "subject": AttrType.STRING,
    "time": AttrType.TIMESTAMP,
}

#: Integer extensions cerouter knows, with the smallest value each allows (spec digest B.8).
KNOWN_INTEGER_EXTENSIONS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "severitynumber": 0,  # severity.md: MUST NOT be negative
        "sampledrate": 1,  # sampledrate.md: greater than 0
    }
)

#: Documented extensions whose attribute type cerouter checks when they are present.
KNOWN_EXTENSION_TYPES: Final[Mapping[str, AttrType]] = MappingProxyType(
    {
        **dict.fromkeys(KNOWN_INTEGER_EXTENSIONS, AttrType.INTEGER),
        "recordedtime": AttrType.TIMESTAMP,
        "expirytime": AttrType.TIMESTAMP,
        "deprecationfrom": AttrType.TIMESTAMP,
        "deprecationsunset": AttrType.TIMESTAMP,
        "deprecationmigration": AttrType.URI,
        "deprecated": AttrType.BOOLEAN,
        "dataref": AttrType.URI_REFERENCE,
    }
)

#: The type of every attribute cerouter knows: the core ones and the known extensions.
TYPES: Final[Mapping[str, AttrType]] = {**_CORE_TYPES, **KNOWN_EXTENSION_TYPES}
#: The names of the core attributes (every other attribute is an extension).
CORE_NAMES: Final = frozenset(_CORE_TYPES)
_NON_EMPTY: Final = frozenset({*REQUIRED_ATTRIBUTES, "subject", "dataschema"})

# Values seen valid (they repeat: a producer has one source, one content type, few schemas).
# Bounded in bytes, not only in entries (module docstring): short strings only. Only
# find_problems adds to them; the envelope's fast path reads them.
#: The most strings each memo holds.
MEMO_LIMIT: Final = 4096
#: Attribute names found valid (the known ones to begin with).
valid_names: set[str] = set(TYPES)
#: Extension names found valid that have no known type: any printable String value will do.
plain_names: set[str] = set()
#: URI-reference values found valid (``source``, ``dataref``), never the empty string.
valid_uri_refs: set[str] = set()
#: Absolute URI values found valid (``dataschema``, ``deprecationmigration``).
valid_uris: set[str] = set()
#: Media types found valid (``datacontenttype``).
valid_media_types: set[str] = set()
#: The memo of each attribute type that has one.
MEMOS: Final[Mapping[AttrType, set[str]]] = {
    AttrType.URI_REFERENCE: valid_uri_refs,
    AttrType.URI: valid_uris,
    AttrType.MEDIA_TYPE: valid_media_types,
}


def _remember(memo: set[str], value: str) -> None:
    # Never the empty string: a memo is shared by attributes of one type, and some of those
    # (source) must not be empty while others (dataref) may.
    if value and len(value) <= MEMO_KEY_CHARS and len(memo) < MEMO_LIMIT:
        memo.add(value)


# --------------------------------------------------------------------------- the full check


def find_problems(attributes: Mapping[str, Any], values: bool) -> tuple[Problem, ...]:
    """One problem per broken rule (missing required attributes first); ``values``: show values."""
    problems: list[Problem] | None = None
    for name in REQUIRED_ATTRIBUTES:
        if name not in attributes:
            problems = _add(problems, name, "required attribute is missing")
    for name, value in attributes.items():
        kind = TYPES.get(name)
        if kind is None:
            message = _check_extension(name, value, values)
        elif value.__class__ is str:
            message = _check_string(kind, name, value, values)
        else:
            message = _check_native(kind, name, value, values)
        if message is not None:
            problems = _add(problems, name, message)
    return () if problems is None else tuple(problems)


def _add(problems: list[Problem] | None, where: str, message: str) -> list[Problem]:
    if problems is None:
        problems = []
    problems.append(Problem(Stage.ENVELOPE, where, message))
    return problems


def _check_extension(name: str, value: Any, values: bool) -> str | None:
    if name not in valid_names:
        if name == "data":
            return "'data' is reserved for the event data and cannot be an attribute name"
        if ATTRIBUTE_NAME.fullmatch(name) is None:
            return (
                f"attribute name {shorten(repr(name))} must consist of lower-case ASCII letters "
                "and digits only (a-z, 0-9)"
            )
        _remember(valid_names, name)
        _remember(plain_names, name)
    cls = value.__class__
    if cls is str:
        return None if value.isprintable() else _bad_characters(value)
    if cls is int:
        return None if INT32_MIN <= value <= INT32_MAX else _out_of_range(value, values)
    if cls is bool:
        return None
    return _not_a_cloudevents_type(value, values)


def _check_string(kind: AttrType, name: str, value: str, values: bool) -> str | None:
    """Check a value given as a string (always so in binary mode) against its attribute type."""
    if not value.isprintable() and (bad := _bad_characters(value)) is not None:
        return bad
    if kind is AttrType.TIMESTAMP:
        if is_timestamp(value):
            return None
        return f"{_lead(value, values)}is not an RFC 3339 timestamp (like 2024-05-01T12:30:00Z)"
    if kind is AttrType.STRING:
        if value or name not in _NON_EMPTY:
            return None
        return "must not be empty"
    if kind is AttrType.URI_REFERENCE:
        if value in valid_uri_refs:
            return None
        if not value and name in _NON_EMPTY:
            return "must not be empty"
        if URI_REFERENCE.fullmatch(value) is None:
            return f"{_lead(value, values)}is not a URI-reference (RFC 3986)"
        _remember(valid_uri_refs, value)
        return None
    if kind is AttrType.SPECVERSION:
        if value == "1.0":
            return None
        if not value:
            return "must not be empty"
        lead = _lead(value, values)
        return f"{lead}is not supported: specversion must be '1.0' (CloudEvents 1.0)"
    if kind is AttrType.MEDIA_TYPE:
        if value in valid_media_types:
            return None
        if MEDIA_TYPE.fullmatch(value) is None:
            return f"{_lead(value, values)}is not an RFC 2046 media type (like application/json)"
        _remember(valid_media_types, value)
        return None
    if kind is AttrType.URI:
        if value in valid_uris:
            return None
        if not value and name in _NON_EMPTY:
            return "must not be empty"
        if ABSOLUTE_URI.fullmatch(value) is None:
            return (
                f"{_lead(value, values)}is not an absolute URI (RFC 3986 section 4.3: "
                "a scheme, and no fragment)"
            )
        _remember(valid_uris, value)
        return None
    if kind is AttrType.INTEGER:
        if INTEGER_STRING.fullmatch(value) is None:
            return f"{_lead(value, values)}is not an Integer"
        if len(value) > 11:  # longer than any 32-bit integer; int() of it could be costly
            return (
                f"{_lead(value, values)}is outside the Integer range ({INT32_MIN} to {INT32_MAX})"
            )
        return _check_integer(name, int(value), values)
    # AttrType.BOOLEAN: the canonical strings are case-sensitive.
    if value in ("true", "false"):
        return None
    return f"{_lead(value, values)}is not a Boolean ('true' or 'false')"


def _check_native(kind: AttrType, name: str, value: Any, values: bool) -> str | None:
    """Check a non-string value (structured mode JSON number or boolean) against its type."""
    cls = value.__class__
    if kind is AttrType.INTEGER:
        if cls is int:
            return _check_integer(name, value, values)
        return f"must be an Integer, got {_describe(value, values)}"
    if kind is AttrType.BOOLEAN:
        return None if cls is bool else f"must be a Boolean, got {_describe(value, values)}"
    expected = "String" if kind in (AttrType.SPECVERSION, AttrType.MEDIA_TYPE) else kind.value
    return f"must be a {expected}, got {_describe(value, values)}"


def _check_integer(name: str, value: int, values: bool) -> str | None:
    if not INT32_MIN <= value <= INT32_MAX:
        return _out_of_range(value, values)
    minimum = KNOWN_INTEGER_EXTENSIONS.get(name)
    if minimum is not None and value < minimum:
        return f"{_lead(value, values)}is less than the minimum of {minimum} for this extension"
    return None


def _out_of_range(value: int, values: bool) -> str:
    return f"{_lead(value, values)}is outside the Integer range ({INT32_MIN} to {INT32_MAX})"


def _bad_characters(value: str) -> str | None:
    match = BAD_CHAR.search(value)
    if match is None:
        return None  # not printable, yet allowed (e.g. a no-break space or a format character)
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        what = "an unpaired surrogate"
    elif char <= "\x9f":
        what = "a control character"
    else:
        what = "a Unicode noncharacter"
    return f"contains {what} (U+{ord(char):04X} at index {match.start()}), not allowed in a String"


def _not_a_cloudevents_type(value: Any, values: bool) -> str:
    return f"must be a String, Integer or Boolean, got {_describe(value, values)}"


_KINDS: Final = {bool: "boolean", int: "integer", str: "string", float: "number", list: "array"}


def _describe(value: Any, values: bool) -> str:
    """``a string``, or with ``values`` ``string 'abc'`` (what a wrong-typed value is)."""
    kind = _KINDS.get(
        value.__class__, "object" if isinstance(value, dict) else type(value).__name__
    )
    if values:
        return f"{kind} {shorten(repr(value))}"
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _lead(value: Any, values: bool) -> str:
    """What a message starts with: the value shortened and a space, or nothing."""
    return f"{shorten(repr(value))} " if values else ""


# --------------------------------------------------------------------------- JSON event objects


def check_json_members(
    event: Mapping[str, Any], include_values: bool = False
) -> tuple[Problem, ...]:
    """Check the JSON-format rules of a structured event object that a decoder enforces.

    ``data`` and ``data_base64`` never both; ``data_base64`` a base64 string; every other member
    (an attribute) ``null`` or a String, Integer or Boolean. The attribute rules proper are
    :func:`check_attributes`; :func:`cerouter.binding.decode` raises on the first of these
    instead, which is right for a router but too terse for ``cerouter validate``.
    """
    problems: list[Problem] | None = None
    b64 = event.get("data_base64")
    if b64 is not None:
        if "data" in event:
            problems = _add(
                problems, "data_base64", "'data' and 'data_base64' are mutually exclusive"
            )
        if not isinstance(b64, str):
            message = f"must be a string, got {_describe(b64, include_values)}"
            problems = _add(problems, "data_base64", message)
        else:
            try:
                base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                problems = _add(problems, "data_base64", "is not valid base64 (RFC 4648)")
    for name, value in event.items():
        if name in ("data", "data_base64") or value is None:
            continue
        if value.__class__ not in (str, int, bool):
            problems = _add(problems, name, _not_a_cloudevents_type(value, include_values))
    return () if problems is None else tuple(problems)
