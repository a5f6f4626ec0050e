"""Bounds on what cerouter keeps from one event for the next: its memos.

Memos make repeats cheap (a producer sends few distinct sources, types, content types), but their
keys are values that producers choose. Counting entries is not enough: 205 events carrying 1 MB
values once took a router from 52 MB to 262 MB, with several GB within reach. So every memo keyed
by event values keeps only short keys, at most :data:`MEMO_KEY_CHARS` characters; a longer value
is checked, escaped or rendered afresh each time (it costs more, but such values are rare and
their events are large anyway). A memo's bound is then its entry limit times the size of one
entry, stated in its docstring:

* ``cerouter.validation.attribute_rules``: the sets of names and values found valid;
* ``cerouter.routing.subjects.escape_token``: attribute value -> subject token;
* ``cerouter.routing.table``: rendered Matches (also bounded in bytes) and the type -> candidates
  plans.

Python stores a string of n characters in ``49 + n`` bytes (ASCII) up to ``76 + 4n`` bytes (any
code point above U+FFFF), so one key takes at most ~1.1 KB, and ~0.3 KB when it is ASCII.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_KEY_BYTES", "MEMO_KEY_CHARS"]

MEMO_KEY_CHARS: Final = 256
"""The longest string (in characters) that a memo keeps as a key."""

MAX_KEY_BYTES: Final = 76 + 4 * MEMO_KEY_CHARS
"""What one such key can take in memory at most (``sys.getsizeof``, any code points)."""
