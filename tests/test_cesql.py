"""Focused tests of the CESQL engine beyond the TCK: parse errors, overflow, LIKE escapes,
explain(), filter semantics, attribute typing, and compile-once behaviour."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cerouter.cesql.compiler as compiler_module
import cerouter.cesql.parser as parser_module
from cerouter.cesql import CesqlErrorKind, EvalError, Expression, Result, compile_expression
from cerouter.cesql.nodes import (
    Attribute,
    Binary,
    Call,
    Exists,
    In,
    Like,
    Literal,
    Node,
    Unary,
    render,
)
from cerouter.cesql.parser import parse
from cerouter.errors import CesqlParseError

EVENT: dict[str, object] = {
    "specversion": "1.0",
    "id": "abc-123",
    "source": "https://example.com/orders",
    "type": "com.example.order.created",
    "hop": "7",
    "count": 3,
    "flag": True,
}

MATH = CesqlErrorKind.MATH
CAST = CesqlErrorKind.CAST
MISSING = CesqlErrorKind.MISSING_ATTRIBUTE


class _Color(enum.StrEnum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


def run(source: str, attrs: dict[str, object] | None = None) -> Result:
    return compile_expression(source).evaluate(EVENT if attrs is None else attrs)


def kinds(result: Result) -> list[CesqlErrorKind]:
    return [error.kind for error in result.errors]


# -- public API shape --------------------------------------------------------------------


def test_error_kind_values_are_the_tck_codes() -> None:
    assert [kind.value for kind in CesqlErrorKind] == [
        "parse",
        "math",
        "cast",
        "missingAttribute",
        "missingFunction",
        "functionEvaluation",
        "generic",
    ]


def test_expression_keeps_its_source_and_result_shape() -> None:
    source = "type LIKE 'com.example.%'  AND  INT(hop) < 5"
    expr = compile_expression(source)
    assert isinstance(expr, Expression)
    assert expr.source == source
    assert repr(expr) == f"Expression({source!r})"
    result = expr.evaluate({"type": "com.example.x", "hop": "2"})
    assert result == Result(True, ())
    assert result.value is True
    assert result.errors == ()


def test_errors_are_eval_error_values() -> None:
    result = run("myext = 'x'")
    assert result.value is False
    assert result.errors == (EvalError(MISSING, "missing attribute 'myext'"),)


# -- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "column", "fragment"),
    [
        ("", 1, "expected an expression"),
        ("ABC(", 5, "found end of input"),
        ("type = ", 8, "expected an expression"),
        ("type = 'a' source", 12, "expected an operator or the end of the expression"),
        ("x LIKE 123", 8, "string literal as the LIKE pattern"),
        ("x LIKE y", 8, "string literal as the LIKE pattern"),
        ("(a = 1", 7, "expected ')' to close the '(' at column 1"),
        ("a = 1)", 6, "unbalanced ')'"),
        ("a IN ()", 7, "at least one expression in the IN set"),
        ("a IN (1, 2", 11, "',' or ')' to close the IN set at column 6"),
        ("a IN 1", 6, "'(' to start the IN set"),
        ("LEFT('a', 1", 12, "',' or ')' to close LEFT( at column 1"),
        ("2147483648", 1, "outside the 32-bit range"),
        ("a < -2147483649", 5, "outside the 32-bit range"),
        ("- 2147483648", 3, "outside the 32-bit range"),
        ("a ! b", 3, "did you mean '!='"),
        ("a == b", 4, "expected an expression"),
        ("'abc", 1, "unterminated string literal"),
        ('type = "abc', 8, "unterminated string literal"),
        ("my_ext = 'x'", 1, "invalid attribute name 'my_ext'"),
        ("f1(2)", 1, "invalid function name 'f1'"),
        ("EXISTS 'type'", 8, "attribute name after EXISTS"),
        ("a NOT = 1", 7, "LIKE or IN after NOT"),
        ("+a", 1, "'+' is not a unary operator"),
        ("a.b", 2, "unexpected character '.'"),
        ("a = 1\n  AND", 12, "expected an expression"),  # columns count from the start
    ],
)
def test_parse_error_column_and_expectation(source: str, column: int, fragment: str) -> None:
    with pytest.raises(CesqlParseError) as caught:
        compile_expression(source)
    assert caught.value.column == column
    assert fragment in caught.value.message
    assert caught.value.expression == source
    assert str(caught.value).startswith(f"column {column}: ")


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("2147483647", 2147483647),
        ("-2147483648", -2147483648),
        ("+5", 5),
        ("007", 7),
        ("4 -1", 3),  # a sign after a value is the binary operator, not part of a literal
        ("4-1", 3),
        ("--10", 10),
        ("4 - -1", 5),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a\\'b'", "a'b"),
        ('"a\\"b"', 'a"b'),
        ("'a\\\"b'", 'a\\"b'),  # only the enclosing quote is unescaped
        ("'a\\_b'", "a\\_b"),  # other backslash pairs stay for LIKE to interpret
        ("'x\\\\'", "x\\\\"),
        ("'ünï ☃'", "ünï ☃"),
        ("tRuE", True),
        ("fAlSe", False),
    ],
)
def test_literals(source: str, value: object) -> None:
    result = run(source)
    assert result.errors == ()
    assert result.value == value
    assert type(result.value) is type(value)


def test_identifiers_and_function_names_are_case_insensitive() -> None:
    assert parse("TYPE = Lower('A')") == Binary(
        "=", Attribute("type"), Call("LOWER", (Literal("A"),))
    )
    assert run("EXISTS SOURCE AND Type LIKE 'com.%'").value is True
    assert run("ext1 = 'v' AND 1ext = 'w'", {"ext1": "v", "1ext": "w"}).value is True


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        # AND, OR and XOR share one level, left to right (section 3.6).
        (
            "TRUE OR TRUE AND FALSE",
            Binary("AND", Binary("OR", Literal(True), Literal(True)), Literal(False)),
        ),
        ("1 + 2 * 3", Binary("+", Literal(1), Binary("*", Literal(2), Literal(3)))),
        ("1 - 2 - 3", Binary("-", Binary("-", Literal(1), Literal(2)), Literal(3))),
        ("a < 1 = TRUE", Binary("=", Binary("<", Attribute("a"), Literal(1)), Literal(True))),
        # Unary operators bind tighter than LIKE and IN; LIKE tighter than IN and arithmetic.
        ("NOT a LIKE 'x'", Like(Unary("NOT", Attribute("a")), "x")),
        ("NOT (a LIKE 'x')", Unary("NOT", Like(Attribute("a"), "x"))),
        ("-a IN (1)", In(Unary("-", Attribute("a")), (Literal(1),))),
        ("a + b LIKE 'x'", Binary("+", Attribute("a"), Like(Attribute("b"), "x"))),
        ("2 * 3 IN (6)", Binary("*", Literal(2), In(Literal(3), (Literal(6),)))),
        ("a NOT IN (1, b)", In(Attribute("a"), (Literal(1), Attribute("b")), negated=True)),
        ("NOT EXISTS a", Unary("NOT", Exists("a"))),
        ("CONCAT()", Call("CONCAT", ())),
    ],
)
def test_precedence(source: str, tree: Node) -> None:
    assert parse(source) == tree


def test_mixed_logic_is_left_to_right() -> None:
    assert run("FALSE AND FALSE OR TRUE").value is True
    assert run("TRUE OR TRUE AND FALSE").value is False


# -- evaluation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "value", "errors"),
    [
        ("2147483647 + 1", 2147483647, [MATH]),
        ("-2147483648 - 1", -2147483648, [MATH]),
        ("65536 * 65536", 2147483647, [MATH]),
        ("65536 * -65536", -2147483648, [MATH]),
        ("- -2147483648", 2147483647, [MATH]),
        ("-2147483648 / -1", 2147483647, [MATH]),
        ("-2147483648 % -1", 0, []),
        ("ABS(-2147483648)", 2147483647, [MATH]),
        # Ancestors of the overflowing node return their own zero value.
        ("2147483647 + 1 > 0", False, [MATH]),
        ("LENGTH(STRING(2147483647 + 1))", 0, [MATH]),
        ("2147483646 + 1", 2147483647, []),
    ],
)
def test_integer_overflow_saturates_with_math_error(
    source: str, value: int | bool, errors: list[CesqlErrorKind]
) -> None:
    result = run(source)
    assert (result.value, kinds(result)) == (value, errors)


@pytest.mark.parametrize(
    ("source", "value"),
    [("-7 / 2", -3), ("7 / -2", -3), ("-7 % 2", -1), ("7 % -2", 1), ("-7 % -2", -1)],
)
def test_division_truncates_toward_zero(source: str, value: int) -> None:
    assert run(source) == Result(value)


@pytest.mark.parametrize(
    ("value", "pattern", "matched"),
    [
        ("a%", "a\\%", True),
        ("ab", "a\\%", False),
        ("a_", "a\\_", True),
        ("ab", "a\\_", False),
        ("a\\b", "a\\b", True),  # a backslash before another character is literal
        ("a\\%", "a\\\\%", True),  # "\\" is not an escape: literal "\" then "\%"
        ("a\\%", "a\\%%", False),
        ("a.b", "a_b", True),
        ("a+b(c)", "a+b(%)", True),  # regex metacharacters are literal
        ("[x]", "[_]", True),
        ("abc", "ABC", False),  # case-sensitive
        ("", "%", True),
        ("", "", True),
        ("", "_", False),
        ("line1\nline2", "line1%line2", True),
        ("line1\nline2", "line1_line2", True),
        ("abcabc", "%%c", True),
        ("prefix-rest", "prefix%", True),
        ("rest-suffix", "%suffix", True),
        ("has-middle-part", "%middle%", True),
        ("has-mid-part", "%middle%", False),
        ("a1b2c", "a_b%c", True),
    ],
)
def test_like(value: str, pattern: str, matched: bool) -> None:
    literal = pattern.replace("'", "''")
    expr = compile_expression(f"v LIKE '{literal}'")
    assert expr.evaluate({"v": value}) == Result(matched)
    negated = compile_expression(f"v NOT LIKE '{literal}'")
    assert negated.evaluate({"v": value}) == Result(not matched)


@pytest.mark.parametrize(
    ("source", "value", "errors"),
    [
        ("count IN (1, 2, 3)", True, []),
        ("1 IN (1, 'x')", True, []),  # items are compared in order: the match comes first
        ("2 IN (1, 'x', 2)", False, [CAST]),
        ("2 NOT IN (1, 'x', 2)", False, [CAST]),
        ("source IN (id, type)", False, []),
        ("id IN (source, id)", True, []),
        ("'7' IN (hop, 'x')", True, []),
        ("hop IN (missing, '7')", False, [MISSING]),
        ("flag IN ('TRUE')", True, []),
    ],
)
def test_in(source: str, value: bool, errors: list[CesqlErrorKind]) -> None:
    result = run(source)
    assert (result.value, kinds(result)) == (value, errors)


@pytest.mark.parametrize(
    ("attrs", "source", "value", "errors"),
    [
        ({"n": 5}, "n + 1", 6, []),
        ({"n": 5}, "n = '5'", True, []),  # the right operand's type decides: String
        ({"n": True}, "n = 'true'", True, []),
        ({"n": True}, "n AND TRUE", True, []),
        ({"n": 1.5}, "n = '1.5'", True, []),  # other types are read as their string form
        ({"n": 2**40}, "n = '1099511627776'", True, []),  # beyond 32 bits: a String
        ({"n": 2**40}, "n + 0", 0, [CAST]),
        ({"n": dt.date(2024, 1, 2)}, "n LIKE '2024-%'", True, []),
        ({"n": None}, "EXISTS n", False, []),  # None is absent
        ({"n": None}, "n = 'x'", False, [MISSING]),
        ({"n": "5"}, "n = 5", True, []),
        ({"n": "x"}, "n = 5", False, [CAST]),
        ({"n": "x"}, "n != 5", False, [CAST]),
        ({"n": "TRUE"}, "n = TRUE", True, []),
        ({"n": _Color.RED}, "n IN ('red')", True, []),  # subclasses read as their base type
        ({"n": _Level.HIGH}, "n IN (3) AND n + 1 = 4", True, []),
    ],
)
def test_attribute_types(
    attrs: dict[str, object], source: str, value: object, errors: list[CesqlErrorKind]
) -> None:
    result = compile_expression(source).evaluate(attrs)
    assert (result.value, kinds(result)) == (value, errors)


@pytest.mark.parametrize(
    ("source", "value", "errors"),
    [
        ("TRIM('\u3000\u00a0 x \t\n')", "x", []),
        ("TRIM('\x1cx\x1c')", "\x1cx\x1c", []),  # not Unicode White_Space
        ("LENGTH('☃☃')", 2, []),
        ("CONCAT_WS('-', 'a', 1, TRUE)", "a-1-true", []),
        ("SUBSTRING('abc', 3)", "c", []),
        ("SUBSTRING('abc', 4)", "", [CesqlErrorKind.FUNCTION_EVALUATION]),
        ("SUBSTRING('abc', 2, -1)", "", [CesqlErrorKind.FUNCTION_EVALUATION]),
        ("RIGHT('abc', 0)", "", []),
        ("upper(lower('AbC'))", "ABC", []),
        ("INT('+12')", 12, []),
        ("INT('1_000')", 0, [CAST]),
        ("INT(' 1')", 0, [CAST]),
        ("INT('2147483648')", 0, [CAST]),
        ("BOOL('True')", True, []),
        ("ABS('x')", 0, [CAST]),
        ("LENGTH('a', 'b')", False, [CesqlErrorKind.MISSING_FUNCTION]),
        ("NOPE()", False, [CesqlErrorKind.MISSING_FUNCTION]),
        ("NOPE(missing)", False, [CesqlErrorKind.MISSING_FUNCTION]),
    ],
)
def test_functions(source: str, value: object, errors: list[CesqlErrorKind]) -> None:
    result = run(source)
    assert (result.value, kinds(result)) == (value, errors)
    assert type(result.value) is type(value)


def test_missing_function_message_names_function_and_arity() -> None:
    assert run("LENGTH('a', 'b')").errors[0].message == "no function LENGTH taking 2 arguments"


def test_short_circuit_skips_errors() -> None:
    assert run("EXISTS myext AND myext = 'x'") == Result(False)
    assert run("NOT EXISTS myext OR myext = 'x'") == Result(True)
    assert kinds(run("myext = 'x' OR NOT EXISTS myext")) == [MISSING]
    # XOR is not short-circuited.
    assert kinds(run("TRUE XOR myext = 'x'")) == [MISSING]


# -- filter semantics --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "matched"),
    [
        ("type = 'com.example.order.created'", True),
        ("TRUE", True),
        ("1", False),  # not a Boolean
        ("'true'", False),
        ("myext = 'x'", False),  # missing attribute
        ("NOT (myext = 'x')", False),  # negating an error does not make it match
        ("myext != 'x'", False),
        ("TRUE AND 1 / 0 = 0", False),  # math error
        ("hop < 'x'", False),  # cast error
        ("NOPE()", False),
        ("flag", True),
        ("count", False),
    ],
)
def test_matches(source: str, matched: bool) -> None:
    expr = compile_expression(source)
    assert expr.matches(EVENT) is matched
    result = expr.evaluate(EVENT)
    assert matched is (result.value is True and not result.errors)


# -- explain -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "explanation"),
    [
        ("INT(hop) < 5", "INT(hop) < 5 was false (hop = '7')"),
        (
            "type LIKE 'com.example.%' AND int(hop)<5",
            "INT(hop) < 5 was false (hop = '7')",
        ),
        ("myext = 'x'", "missing attribute 'myext' in myext = 'x'"),
        ("myext", "missing attribute 'myext' in myext"),
        (
            "type = 'a' AND (source = 'b' OR id = 'c')",
            "type = 'a' was false (type = 'com.example.order.created')",
        ),
        (
            "EXISTS id AND (source = 'b' OR id = 'c')",
            "source = 'b' OR id = 'c' was false (source = 'https://example.com/orders', "
            "id = 'abc-123')",
        ),
        ("NOT EXISTS flag", "NOT EXISTS flag was false (flag = TRUE)"),
        ("EXISTS myext", "EXISTS myext was false"),
        ("hop < 'x'", "cannot cast 'x' to Integer in hop < 'x' (hop = '7')"),
        ("count * 0 + 5 / 0 = 0", "division by zero in 5 / 0"),
        ("LEFT(id, -1) = ''", "LEFT: length -1 is negative in LEFT(id, -1) (id = 'abc-123')"),
        ("NOPE(1)", "no function NOPE taking 1 argument in NOPE(1)"),
        ("count + 1", "count + 1 evaluated to 4, not a Boolean (count = 3)"),
        ("count = 3", "matched: count = 3 was true (count = 3)"),
        (
            'source LIKE "%it\'s%"',
            "source LIKE \"%it's%\" was false (source = 'https://example.com/orders')",
        ),
    ],
)
def test_explain(source: str, explanation: str) -> None:
    assert compile_expression(source).explain(EVENT) == explanation


# -- compile once ------------------------------------------------------------------------


def _counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls: list[int] = []
    original: Callable[..., object] = getattr(module, name)

    def counted(*args: object) -> object:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_parsing_and_pattern_compilation_happen_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tokenized = _counting(monkeypatch, parser_module, "tokenize")
    patterns = _counting(monkeypatch, compiler_module, "compile_like")
    expr = compile_expression(
        "type LIKE 'com.example.%' AND source NOT LIKE '%/internal/%' AND INT(hop) < 10"
    )
    assert (len(tokenized), len(patterns)) == (1, 2)
    events = [{**EVENT, "hop": str(i), "source": f"https://x/{i}"} for i in range(200)]
    results = [expr.matches(event) for event in events]
    assert results == [i < 10 for i in range(200)]
    assert [expr.evaluate(event).value for event in events] == results
    assert (len(tokenized), len(patterns)) == (1, 2)


def test_expression_is_reusable_across_error_and_success() -> None:
    expr = compile_expression("myext = 'x'")
    assert kinds(expr.evaluate({})) == [MISSING]
    assert expr.evaluate({"myext": "x"}) == Result(True)
    assert kinds(expr.evaluate({})) == [MISSING]


# -- properties --------------------------------------------------------------------------

_NAMES = st.sampled_from(["a", "b", "missing", "x1"])
_TEXT = st.text(
    alphabet=st.characters(exclude_characters="\\", exclude_categories=["Cs"]), max_size=6
)
_LEAVES = st.one_of(
    st.builds(Literal, st.one_of(st.booleans(), st.integers(-(2**31), 2**31 - 1), _TEXT)),
    st.builds(Attribute, _NAMES),
    st.builds(Exists, _NAMES),
)
_BINARY_OPS = ["AND", "OR", "XOR", "=", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"]
_FUNCTIONS = ["ABS", "LENGTH", "CONCAT", "CONCAT_WS", "SUBSTRING", "LEFT", "RIGHT", "TRIM",
              "INT", "BOOL", "STRING", "LOWER", "NOPE"]  # fmt: skip
# A backslash right before a quote or the end cannot be written in a CESQL string literal.
_PATTERNS = st.lists(
    st.sampled_from(["a", "%", "_", "\\%", "\\_", "\\a", "'", '"']), max_size=5
).map("".join)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Unary, st.sampled_from(["NOT", "-"]), children),
        st.builds(Binary, st.sampled_from(_BINARY_OPS), children, children),
        st.builds(Like, children, _PATTERNS, st.booleans()),
        st.builds(
            In, children, st.lists(children, min_size=1, max_size=3).map(tuple), st.booleans()
        ),
        st.builds(Call, st.sampled_from(_FUNCTIONS), st.lists(children, max_size=3).map(tuple)),
    )


_TREES = st.recursive(_LEAVES, _extend, max_leaves=10)
_ATTRS = st.dictionaries(
    st.sampled_from(["a", "b", "x1"]),
    st.one_of(st.booleans(), st.integers(-(2**31), 2**31 - 1), st.text(max_size=4)),
)


@settings(max_examples=300, deadline=None)
@given(_TREES)
def test_render_parses_back_to_the_same_tree(tree: Node) -> None:
    text = render(tree)
    reparsed = parse(text)
    assert reparsed == tree
    assert render(reparsed) == text


@settings(max_examples=300, deadline=None)
@given(_TREES, _ATTRS)
def test_evaluation_is_total_and_matches_agrees(tree: Node, attrs: dict[str, object]) -> None:
    expr = compile_expression(render(tree))
    result = expr.evaluate(attrs)
    assert type(result.value) in (bool, int, str)
    if type(result.value) is int:
        assert -(2**31) <= result.value <= 2**31 - 1
    assert len(result.errors) <= 1
    assert expr.matches(attrs) is (result.value is True and not result.errors)
    assert isinstance(expr.explain(attrs), str)
