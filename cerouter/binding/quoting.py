"""Values in binding error messages, kept short: those messages end up in logs and dead letters.

A producer controls every value the binding complains about, so no message may quote one whole:
a string shows at most :data:`MAX_QUOTED` characters (then ``…`` and its length), and an array
or object only its kind and size, never its contents (which could also nest too deeply to print).
"""

from __future__ import annotations

from typing import Final

MAX_QUOTED: Final = 64
"""How many characters of a string an error message quotes."""


def quoted(value: object) -> str:
    """``value`` as an error message shows it: a short ``repr``, or a container's kind and size."""
    if isinstance(value, str):
        if len(value) <= MAX_QUOTED:
            return repr(value)
        return f"{value[:MAX_QUOTED]!r}… ({len(value)} characters)"
    if isinstance(value, bytes | bytearray):
        return quoted(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, list | tuple):
        return f"an array of {_count(len(value), 'item')}"
    if isinstance(value, dict):
        return f"an object of {_count(len(value), 'member')}"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"a {type(value).__name__} value"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def clipped(message: str, limit: int = 4 * MAX_QUOTED) -> str:
    """Another library's error message, cut to ``limit`` characters (it may quote a value)."""
    message = message.replace("\n", " ")
    return message if len(message) <= limit else message[: limit - 1] + "…"
