"""RFC 3339 timestamps, the CloudEvents ``Timestamp`` type, parsed strictly and written canonically.

``datetime.fromisoformat`` accepts much that RFC 3339 forbids (no offset, date only, week dates)
and rejects some of what it allows (lower-case ``t``/``z``), so the grammar is checked here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<clock>\d{2}:\d{2}:(?P<sec>\d{2}))"
    r"(?:\.(?P<frac>\d+))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})\Z"
)


def is_rfc3339(text: str) -> bool:
    """Tell whether ``text`` is a valid RFC 3339 date-time (calendar and offset checked)."""
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 date-time into an aware ``datetime``.

    Fractions beyond microseconds are truncated (Python's resolution). A leap second (``:60``)
    is valid RFC 3339 but not representable, so it raises ``ValueError`` like any invalid value.
    """
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    offset = m["offset"]
    tz: timezone
    if offset in ("Z", "z"):
        tz = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"invalid UTC offset in {text!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    frac = (m["frac"] or "")[:6].ljust(6, "0")
    try:
        naive = datetime.fromisoformat(f"{m['date']}T{m['clock']}")
    except ValueError as exc:
        raise ValueError(f"invalid date or time in {text!r}: {exc}") from None
    return naive.replace(microsecond=int(frac), tzinfo=tz)


def format_timestamp(value: datetime) -> str:
    """Write an aware ``datetime`` as RFC 3339, with ``Z`` for UTC and the offset kept otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a CloudEvents timestamp must be timezone-aware")
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
