"""The CloudEvents 1.0 envelope rules, checked on a decoded event's attributes.

:func:`check_envelope` returns one :class:`~cerouter.validation.report.Problem` per broken
rule, each naming the attribute (``where``) and the rule (``message``); an empty tuple means the
envelope is fine. The value grammars (URI-reference, media type, ...) are in
:mod:`cerouter.validation.formats`. The rules (spec digest, sections B and C):

=========================  =========================================================================
rule                       detail
=========================  =========================================================================
required                   ``id``, ``source``, ``specversion``, ``type`` present and non-empty
specversion                exactly ``"1.0"``
name                       ``[a-z0-9]+`` (ASCII), and never ``data`` (reserved by event formats)
core types                 ``id``, ``type``, ``specversion``, ``subject``, ``datacontenttype`` are
                           Strings; ``source`` a URI-reference; ``dataschema`` an absolute URI
                           (RFC 3986 section 4.3: scheme, no fragment); ``time`` an RFC 3339
                           timestamp (as :mod:`cerouter.timestamps` reads them: no leap second,
                           no year 0000); ``datacontenttype`` an RFC 2046 media type;
                           ``subject`` non-empty
known extensions           typed per :data:`KNOWN_EXTENSION_TYPES` (Integer ones in
                           :data:`KNOWN_INTEGER_EXTENSIONS`, with their minimum); ``null`` means
                           absent and never reaches this module
Integer                    any Integer value within -2,147,483,648 .. 2,147,483,647
String                     no control characters (U+0000-U+001F, U+007F-U+009F), no Unicode
                           noncharacters, no unpaired surrogates
value type                 every value is a String, Integer or Boolean
data / data_base64         never both (:func:`check_json_members`, on the JSON event object)
=========================  =========================================================================

Messages name the rule, not the value (``time: is not an RFC 3339 timestamp ...``): reports go to
dead-letter headers and logs. With ``include_values`` the value comes first, shortened to
:data:`~cerouter.validation.report.VALUE_LIMIT` characters (``time: '2024-13-01' is not ...``).
Attribute names are shown: they are where the problem is.

SHOULD-level advice (names of at most 20 characters that start with a letter, an absolute
``source``) is not reported: a router must not reject events the spec allows.

Speed: a fast path (:func:`_looks_fine`) answers "certainly valid" for the common shapes
without raising or allocating; anything else goes to the full check
(:func:`~cerouter.validation.attribute_rules.find_problems`), which finds the problems, if any.
URI-reference, URI, media-type values and extension names found valid are remembered, as they
repeat across a producer's events; ``time``, new on every event, costs one precompiled regex. A
property test keeps the two paths in agreement.

Memory: the five remembered sets hold at most 4,096 strings each, none longer than 256
characters (:mod:`cerouter.validation.attribute_rules` gives the bound in bytes).

This module is the entry point and the fast path; the attribute types, the full check with its
messages, the memos and :func:`check_json_members` are
:mod:`cerouter.validation.attribute_rules`' (the names imported from here stay importable).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cerouter.binding import DecodedEvent
from cerouter.validation.attribute_rules import (
    CORE_NAMES,
    INT32_MAX,
    INT32_MIN,
    KNOWN_EXTENSION_TYPES,
    KNOWN_INTEGER_EXTENSIONS,
    MEMOS,
    REQUIRED_ATTRIBUTES,
    TYPES,
    AttrType,
    check_json_members,
    find_problems,
    plain_names,
    valid_media_types,
    valid_uri_refs,
    valid_uris,
)
from cerouter.validation.formats import INTEGER_STRING, TIMESTAMP_COMMON
from cerouter.validation.report import Problem

# The types, tables and check_json_members are attribute_rules'; they stay importable here.
__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "KNOWN_EXTENSION_TYPES",
    "KNOWN_INTEGER_EXTENSIONS",
    "REQUIRED_ATTRIBUTES",
    "AttrType",
    "check_attributes",
    "check_envelope",
    "check_json_members",
]


def check_envelope(event: DecodedEvent, include_values: bool = False) -> tuple[Problem, ...]:
    """Check a decoded event against the CloudEvents 1.0 attribute rules (module docstring).

    ``include_values``: messages show the offending values (shortened), not only the rule.
    """
    return check_attributes(event.attributes, include_values)


def check_attributes(
    attributes: Mapping[str, Any], include_values: bool = False
) -> tuple[Problem, ...]:
    """Check an attribute mapping (name -> str, int or bool; absent means unset)."""
    try:
        if _looks_fine(attributes):
            return ()
    except TypeError:  # an unhashable value (not from the binding): the slow path reports it
        pass
    return find_problems(attributes, include_values)


def _looks_fine(attributes: Mapping[str, Any]) -> bool:
    """The fast path: ``True`` only when every rule certainly holds.

    ``False`` means "look closer", not "invalid": :func:`find_problems` decides, and remembers the
    names and values it found valid so that the next event with them stays here. Rare shapes
    (native integers and booleans, empty strings, non-printable characters, February 29th)
    always take the closer look. Written for CPython's sake: few calls, no temporaries.
    """
    get = attributes.get
    if get("specversion") != "1.0" or get("source") not in valid_uri_refs:
        return False
    value = get("id")
    if value.__class__ is not str or not value or not value.isprintable():
        return False
    value = get("type")
    if value.__class__ is not str or not value or not value.isprintable():
        return False
    seen = 4
    value = get("time")
    if value is not None:
        if value.__class__ is not str or TIMESTAMP_COMMON.fullmatch(value) is None:
            return False
        seen += 1
    value = get("datacontenttype")
    if value is not None:
        if value not in valid_media_types:
            return False
        seen += 1
    value = get("subject")
    if value is not None:
        if value.__class__ is not str or not value or not value.isprintable():
            return False
        seen += 1
    value = get("dataschema")
    if value is not None:
        if value not in valid_uris:
            return False
        seen += 1
    if len(attributes) == seen:
        return True
    for name in attributes.keys() - CORE_NAMES:
        value = attributes[name]
        cls = value.__class__
        if name in plain_names:  # an extension without a known type
            if cls is str:
                if not value.isprintable():
                    return False
            elif cls is int:
                if not INT32_MIN <= value <= INT32_MAX:
                    return False
            elif cls is not bool:
                return False
            continue
        kind = TYPES.get(name)
        if kind is AttrType.INTEGER:
            if cls is str:
                if INTEGER_STRING.fullmatch(value) is None or len(value) > 11:
                    return False
                value = int(value)
            elif cls is not int:
                return False
            if not KNOWN_INTEGER_EXTENSIONS.get(name, INT32_MIN) <= value <= INT32_MAX:
                return False
        elif kind is AttrType.TIMESTAMP:
            if cls is not str or TIMESTAMP_COMMON.fullmatch(value) is None:
                return False
        elif kind is AttrType.BOOLEAN:
            if cls is not bool and value not in ("true", "false"):
                return False
        elif kind is None or cls is not str or value not in MEMOS.get(kind, ()):
            return False
    return True
