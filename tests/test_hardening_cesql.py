"""CESQL against hostile input: LIKE without backtracking, deep and long expressions."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cerouter.cesql import compile_expression
from cerouter.cesql.like import compile_like

# Generous for a loaded 2-core machine: the inputs below took 12 s to hours before.
BOUND_SECONDS = 2.0


def _like_by_regex(pattern: str, value: str) -> bool:
    """LIKE as the straightforward (backtracking) regex: correct, but only for small inputs."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and pattern[i + 1 : i + 2] in ("%", "_"):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.fullmatch("".join(out), value, re.DOTALL) is not None


def _quoted(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        pytest.param("%a%b%", "a" * 256 * 1024, id="two-wildcards-256KiB"),
        pytest.param("%a" * 20 + "%b", "a" * 200, id="twenty-wildcards-200-chars"),
        pytest.param("%" + "a_" * 200 + "b%", "a" * 256 * 1024, id="underscores-256KiB"),
        pytest.param("%a%" + "_" * 300 + "%b", "a" * 256 * 1024, id="mixed-256KiB"),
    ],
)
def test_like_takes_bounded_time_on_adversarial_patterns(pattern: str, value: str) -> None:
    expression = compile_expression(f"subject LIKE {_quoted(pattern)}")
    started = time.perf_counter()
    result = expression.evaluate({"subject": value})
    elapsed = time.perf_counter() - started
    assert result.value is False
    assert not result.errors
    assert elapsed < BOUND_SECONDS, f"LIKE took {elapsed:.1f} s"


@given(
    pattern=st.text(alphabet="ab%_\\", max_size=8),
    value=st.text(alphabet="ab%_\\", max_size=10),
)
def test_like_agrees_with_the_regex_definition(pattern: str, value: str) -> None:
    # compile_like itself: a CESQL string literal cannot end in a backslash.
    assert compile_like(pattern)(value) is _like_by_regex(pattern, value)
