"""CESQL against hostile input: LIKE without backtracking, deep and long expressions."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cerouter.cesql import CesqlErrorKind, compile_expression
from cerouter.cesql.like import compile_like
from cerouter.cesql.nodes import render
from cerouter.cesql.parser import parse
from cerouter.config.load import parse_config
from cerouter.errors import CesqlParseError

T = TypeVar("T")

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


# -- nesting: a CesqlParseError at a column, never a RecursionError --------------------------

MAX_DEPTH = 100  # the documented limit (cerouter.cesql.parser.MAX_DEPTH)


def _nested(kind: str, depth: int) -> str:
    """An expression nesting ``depth`` levels of one kind."""
    match kind:
        case "parentheses":
            return "(" * depth + "true" + ")" * depth
        case "not":
            return "NOT " * depth + "true"
        case "minus":
            return "- " * depth + "1"
        case "plus":
            return "1" + " + 1" * depth
        case "function":
            return "INT(" * depth + "1" + ")" * depth
        case "like":
            return "subject" + " LIKE 'a%'" * depth
        case _:
            raise AssertionError(kind)


KINDS = ["parentheses", "not", "minus", "plus", "function", "like"]


@pytest.mark.parametrize(
    ("source", "column"),
    [
        pytest.param("(" * 5000 + "true" + ")" * 5000, MAX_DEPTH + 1, id="5000-parentheses"),
        pytest.param("NOT " * 5000 + "true", 4 * MAX_DEPTH + 1, id="5000-NOT"),
        pytest.param("- " * 3000 + "1", 2 * MAX_DEPTH + 1, id="3000-minus"),
        pytest.param("1" + " + 1" * 3000, 4 * MAX_DEPTH + 3, id="3000-plus"),
        pytest.param("ABS(" * 2000 + "1" + ")" * 2000, 4 * MAX_DEPTH + 4, id="2000-calls"),
    ],
)
def test_too_deep_an_expression_is_a_parse_error_at_its_column(source: str, column: int) -> None:
    with pytest.raises(CesqlParseError, match=f"more than {MAX_DEPTH} levels") as caught:
        compile_expression(source)
    assert caught.value.column == column


@pytest.mark.parametrize("kind", KINDS)
def test_one_level_past_the_limit_is_refused(kind: str) -> None:
    with pytest.raises(CesqlParseError, match="levels deep"):
        compile_expression(_nested(kind, MAX_DEPTH + 1))


def _with_stack_in_use(frames: int, call: Callable[[], T]) -> T:
    """``call()`` from ``frames`` Python frames down: callers (CLI, pytest, a reload) use some."""
    if frames == 0:
        return call()
    return _with_stack_in_use(frames - 1, call)


@pytest.mark.parametrize("kind", KINDS)
def test_an_expression_at_the_limit_compiles_evaluates_renders_and_explains(kind: str) -> None:
    def everything() -> None:
        expression = compile_expression(_nested(kind, MAX_DEPTH))
        result = expression.evaluate({"subject": "abc"})
        assert result.value is not None
        assert parse(render(expression.tree)) == expression.tree
        assert hash(expression.tree) == hash(parse(expression.source))
        assert repr(expression.tree)
        assert expression.explain({"subject": "abc"})
        assert expression.explain({})

    _with_stack_in_use(300, everything)


# -- long AND/OR/XOR chains: compiled into a loop, any length ---------------------------------


def test_two_thousand_ors_compile_and_evaluate() -> None:
    source = " OR ".join(f"type = 't{i}'" for i in range(2000))
    expression = compile_expression(source)
    assert expression.matches({"type": "t1999"})
    assert expression.matches({"type": "t0"})
    assert not expression.matches({"type": "other"})
    missing = expression.evaluate({})
    assert missing.value is False
    assert [e.kind for e in missing.errors] == [CesqlErrorKind.MISSING_ATTRIBUTE]
    assert parse(render(expression.tree)) == expression.tree
    assert hash(expression.tree) == hash(parse(source))
    assert repr(expression.tree).startswith("Binary(op='OR', left=Binary(op='OR', ")
    assert expression.explain({"type": "t7"}).startswith("matched: ")


def test_a_long_and_chain_is_explained_by_its_false_operand_in_linear_time() -> None:
    source = " AND ".join(f"type != 't{i}'" for i in range(5000))
    expression = compile_expression(source)
    started = time.perf_counter()
    first = expression.explain({"type": "t0"})
    last = expression.explain({"type": "t4999"})
    elapsed = time.perf_counter() - started
    assert first == "type != 't0' was false (type = 't0')"
    assert last == "type != 't4999' was false (type = 't4999')"
    assert elapsed < BOUND_SECONDS


def test_a_long_chain_in_a_routes_file_loads() -> None:
    source = " OR ".join(f"type = 't{i}'" for i in range(2000))
    text = (
        "version: 1\nroutes:\n  - name: r\n"
        f'    match: {{sql: "{source}"}}\n    to: {{subject: out}}\n'
    )
    result = parse_config(text, check_schemas=False)
    assert result.errors == ()


# Operands of every type and outcome: booleans, integers and strings that cast or do not,
# a missing attribute, an attribute holding a string.
_OPERANDS = ["TRUE", "FALSE", "0", "7", "'true'", "'FALSE'", "'x'", "missing", "flag", "1 / 0"]
_ATTRIBUTES: dict[str, object] = {"flag": "true"}


@given(
    first=st.sampled_from(_OPERANDS),
    links=st.lists(
        st.tuples(st.sampled_from(["AND", "OR", "XOR"]), st.sampled_from(_OPERANDS)),
        min_size=1,
        max_size=8,
    ),
)
def test_a_chain_means_what_its_links_mean_one_at_a_time(
    first: str, links: list[tuple[str, str]]
) -> None:
    """``a OP b OP c`` is ``(a OP b) OP c``: each link applied to the value of the ones before."""
    whole = compile_expression(" ".join([first, *(f"{op} {operand}" for op, operand in links)]))
    result = whole.evaluate(_ATTRIBUTES)
    step = compile_expression(first).evaluate(_ATTRIBUTES)
    for op, operand in links:
        if step.errors:
            break
        attrs = {**_ATTRIBUTES, "previous": step.value}
        step = compile_expression(f"previous {op} {operand}").evaluate(attrs)
    assert result.errors == step.errors
    if not result.errors:
        assert result.value == step.value
