"""The grammars of CloudEvents attribute values, as precompiled regexes and predicates.

RFC 3339 timestamps (as :mod:`cerouter.timestamps` reads them: no leap second, no year 0000),
RFC 3986 URI-references and absolute URIs (transcribed from its appendix A), RFC 2046 media
types, attribute names, Integer strings, and the characters a String must not contain. Only the
grammars: which attribute needs which, and the messages, are
:mod:`cerouter.validation.attribute_rules`'. The patterns are public so that the envelope's fast
path calls ``fullmatch`` on them directly.
"""

from __future__ import annotations

import calendar
import re

__all__ = [
    "ABSOLUTE_URI",
    "ATTRIBUTE_NAME",
    "BAD_CHAR",
    "INTEGER_STRING",
    "MEDIA_TYPE",
    "TIMESTAMP",
    "TIMESTAMP_COMMON",
    "URI_REFERENCE",
    "is_absolute_uri",
    "is_media_type",
    "is_timestamp",
    "is_uri_reference",
]

ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")

# RFC 3339 date-time with every field range checked (day against the month happens after).
# Same language as cerouter.timestamps.is_rfc3339 (space separator and lower case t/z allowed,
# leap second rejected because no datetime can hold it), but ASCII digits only and ~8x faster.
_CLOCK = (
    r"[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
TIMESTAMP = re.compile(
    rf"[0-9]{{4}}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-9])"
    rf"|(?:0[13-9]|1[0-2])-30|(?:0[13578]|1[02])-31){_CLOCK}"
)
# The fast path's subset: no year 0000 and no February 29th, so no further check is needed.
TIMESTAMP_COMMON = re.compile(
    rf"(?!0000)[0-9]{{4}}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    rf"|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31){_CLOCK}"
)

# RFC 3986, appendix A, transcribed.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SEGMENT = rf"{_PCHAR}*"
_SEGMENT_NZ = rf"{_PCHAR}+"
_SEGMENT_NZ_NC = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}@]|{_PCT})+"
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "|".join(
    (
        rf"(?:{_H16}:){{6}}{_LS32}",
        rf"::(?:{_H16}:){{5}}{_LS32}",
        rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
        rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
        rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    )
)
_IPVFUTURE = rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+"
_IP_LITERAL = rf"\[(?:{_IPV6}|{_IPVFUTURE})\]"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_AUTHORITY = rf"(?:{_USERINFO}@)?(?:{_IP_LITERAL}|{_REG_NAME})(?::[0-9]*)?"
_PATH_ABEMPTY = rf"(?:/{_SEGMENT})*"
_PATH_ABSOLUTE = rf"/(?:{_SEGMENT_NZ}(?:/{_SEGMENT})*)?"
_HIER_PART = rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_SEGMENT_NZ}(?:/{_SEGMENT})*|)"
_RELATIVE_PART = (
    rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}|{_SEGMENT_NZ_NC}(?:/{_SEGMENT})*|)"
)
_ABSOLUTE_URI_RE = rf"{_SCHEME}:{_HIER_PART}(?:\?{_QUERY})?"
_RELATIVE_REF_RE = rf"{_RELATIVE_PART}(?:\?{_QUERY})?(?:#{_QUERY})?"
ABSOLUTE_URI = re.compile(_ABSOLUTE_URI_RE)
URI_REFERENCE = re.compile(rf"(?:{_ABSOLUTE_URI_RE}(?:#{_QUERY})?|{_RELATIVE_REF_RE})")

# RFC 2045 token (any printable ASCII but the tspecials), RFC 2046 type/subtype, parameters with
# optional whitespace around ";" as RFC 7231 writes them.
_TOKEN = r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x00-\x7f])*"'
MEDIA_TYPE = re.compile(
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*[ \t]*"
)

# What a CloudEvents String must not contain: C0/C1 controls, noncharacters, lone surrogates.
_NONCHARACTERS = "".join(f"\\U{plane:04x}fffe\\U{plane:04x}ffff" for plane in range(17))
BAD_CHAR = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff\\ufdd0-\\ufdef{_NONCHARACTERS}]")

INTEGER_STRING = re.compile(r"-?(?:0|[1-9][0-9]*)")


def is_uri_reference(value: str) -> bool:
    """Tell whether ``value`` is an RFC 3986 URI-reference (a URI or a relative reference)."""
    return URI_REFERENCE.fullmatch(value) is not None


def is_absolute_uri(value: str) -> bool:
    """Tell whether ``value`` is an RFC 3986 absolute-URI (scheme, no fragment)."""
    return ABSOLUTE_URI.fullmatch(value) is not None


def is_media_type(value: str) -> bool:
    """Tell whether ``value`` is an RFC 2046 media type, with optional parameters."""
    return MEDIA_TYPE.fullmatch(value) is not None


def is_timestamp(value: str) -> bool:
    """Tell whether ``value`` is an RFC 3339 timestamp that :mod:`cerouter.timestamps` can read."""
    if TIMESTAMP.fullmatch(value) is None or value.startswith("0000"):
        return False  # datetime has no year 0, so the rest of cerouter could not read it
    return value[4:10] != "-02-29" or calendar.isleap(int(value[:4]))
