"""Filter dialects: exact, prefix, suffix, all, any, not, sql, shorthand and data fields."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cerouter.cesql import compile_expression
from cerouter.routing.filter_spec import FilterError, compile_filter
from cerouter.routing.filters import (
    AllOf,
    AnyOf,
    Compare,
    DataCompare,
    Filter,
    MatchAll,
    Not,
    Sql,
    conjuncts,
    no_data,
)

EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "o-1001",
    "source": "https://shop.example.com/web",
    "type": "com.example.order.created",
    "subject": "orders/o-1001.json",
    "tenant": "acme",
    "priority": 3,
    "urgent": True,
}

DATA = {
    "customer": {"id": "c-7", "tier": "gold", "vip": True, "score": 9.5, "visits": 12},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
    "note": None,
}


def data() -> tuple[bool, Any]:
    return True, DATA


def matches(spec: Any, attrs: dict[str, Any] = EVENT, getter: Any = data) -> bool:
    compiled = compile_filter(spec)
    result = compiled.test(attrs, getter)
    # explain must always agree with test
    assert compiled.explain(attrs, getter).matched is result
    return result


# --------------------------------------------------------------------------- exact/prefix/suffix


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"exact": {"type": "com.example.order.created"}}, True),
        ({"exact": {"type": "com.example.order.Created"}}, False),  # case-sensitive
        ({"exact": {"type": "com.example.order"}}, False),
        ({"exact": {"type": "com.example.order.created", "tenant": "acme"}}, True),
        ({"exact": {"type": "com.example.order.created", "tenant": "other"}}, False),  # ANDed
        ({"exact": {"tenant": "acme"}}, True),  # extension
        ({"exact": {"missing": "x"}}, False),  # missing attribute
        ({"exact": {"priority": "3"}}, True),  # canonical string of an Integer
        ({"exact": {"priority": 3}}, True),
        ({"exact": {"urgent": "true"}}, True),  # canonical string of a Boolean
        ({"exact": {"urgent": "True"}}, False),
        ({"prefix": {"type": "com.example."}}, True),
        ({"prefix": {"type": "com.Example."}}, False),
        ({"prefix": {"source": "https://"}}, True),
        ({"prefix": {"missing": "x"}}, False),
        ({"prefix": {"priority": "3"}}, True),
        ({"prefix": {"type": "com.", "source": "http://"}}, False),
        ({"suffix": {"subject": ".json"}}, True),
        ({"suffix": {"subject": ".JSON"}}, False),
        ({"suffix": {"type": ".created"}}, True),
        ({"suffix": {"missing": "x"}}, False),
        ({"suffix": {"urgent": "ue"}}, True),
    ],
)
def test_comparison_dialects(spec: dict[str, Any], expected: bool) -> None:
    assert matches(spec) is expected


def test_missing_attribute_under_not_is_true() -> None:
    # Subscriptions API `not` is boolean inversion (unlike CESQL NOT on a missing attribute).
    assert matches({"not": {"exact": {"missing": "x"}}}) is True
    assert matches({"not": {"exact": {"tenant": "acme"}}}) is False


def test_shorthand_means_exact() -> None:
    assert compile_filter({"type": "com.example.order.created"}) == Compare(
        "exact", "type", "com.example.order.created"
    )
    assert matches({"type": "com.example.order.created", "tenant": "acme"}) is True
    assert matches({"type": "com.example.order.created", "tenant": "nope"}) is False


def test_shorthand_list_means_one_of() -> None:
    spec = {"type": ["com.example.order.paid", "com.example.order.created"]}
    compiled = compile_filter(spec)
    assert isinstance(compiled, AnyOf)
    assert matches(spec) is True
    assert matches({"type": ["a", "b"]}) is False
    assert compile_filter({"type": ["only"]}) == Compare("exact", "type", "only")


def test_all_any_not() -> None:
    yes = {"exact": {"tenant": "acme"}}
    no = {"exact": {"tenant": "other"}}
    assert matches({"all": [yes, yes]}) is True
    assert matches({"all": [yes, no]}) is False
    assert matches({"any": [no, yes]}) is True
    assert matches({"any": [no, no]}) is False
    assert matches({"not": no}) is True
    assert matches({"not": yes}) is False
    assert matches({"any": [{"not": yes}, {"all": [yes, {"prefix": {"type": "com."}}]}]}) is True


def test_dialects_in_one_mapping_are_anded() -> None:
    spec = {"prefix": {"type": "com.example."}, "suffix": {"subject": ".json"}, "tenant": "acme"}
    assert matches(spec) is True
    assert matches({**spec, "tenant": "x"}) is False


def test_list_of_filters_is_a_conjunction_and_empty_matches_all() -> None:
    assert matches([{"prefix": {"type": "com."}}, {"tenant": "acme"}]) is True
    assert matches([{"prefix": {"type": "com."}}, {"tenant": "no"}]) is False
    assert isinstance(compile_filter({}), MatchAll)
    assert isinstance(compile_filter([]), MatchAll)
    assert matches({}, {}) is True


def test_sql_dialect() -> None:
    assert matches({"sql": "tenant = 'acme' AND priority > 2"}) is True
    assert matches({"sql": "priority > 5"}) is False
    assert matches({"sql": "missing = 'x'"}) is False  # missing attribute error -> false
    assert matches({"sql": "priority"}) is False  # not a boolean -> false
    assert matches({"sql": "1 / 0 = 0"}) is False  # evaluation error -> false


def test_sql_explain_names_the_failing_subexpression() -> None:
    compiled = compile_filter({"sql": "tenant = 'acme' AND priority > 5"})
    verdict = compiled.explain(EVENT, no_data)
    assert verdict.matched is False
    assert verdict.reason.startswith("sql: ")
    assert "priority" in verdict.reason


# --------------------------------------------------------------------------- data fields


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"data.customer.tier": "gold"}, True),
        ({"data.customer.tier": "silver"}, False),
        ({"exact": {"data.customer.tier": "gold"}}, True),
        ({"prefix": {"data.customer.id": "c-"}}, True),
        ({"suffix": {"data.customer.id": "-7"}}, True),
        ({"data.customer.vip": "true"}, True),
        ({"data.customer.vip": True}, True),
        ({"data.customer.visits": "12"}, True),
        ({"data.customer.visits": 12}, True),
        ({"data.customer.score": "9.5"}, True),
        ({"data.items.0.sku": "A-1"}, True),
        ({"data.items.1.sku": "B-2"}, True),
        ({"data.items.2.sku": "C-3"}, False),  # out of range
        ({"data.customer": "x"}, False),  # an object is not a scalar
        ({"data.note": "null"}, False),  # null never matches
        ({"data.nothing.here": "x"}, False),
        ({"data.customer.tier": "gold", "type": "com.example.order.created"}, True),
    ],
)
def test_data_fields(spec: dict[str, Any], expected: bool) -> None:
    assert matches(spec) is expected


def test_data_filters_are_false_when_data_is_not_json() -> None:
    assert matches({"data.customer.tier": "gold"}, EVENT, no_data) is False
    verdict = compile_filter({"data.customer.tier": "gold"}).explain(EVENT, no_data)
    assert verdict.reason == 'exact data.customer.tier: data is not JSON (want "gold")'


def test_data_is_read_only_by_data_filters() -> None:
    calls = []

    def counting() -> tuple[bool, Any]:
        calls.append(1)
        return True, DATA

    assert compile_filter({"type": "com.example.order.created"}).test(EVENT, counting)
    assert calls == []
    compiled = compile_filter({"type": "com.example.order.created", "data.customer.tier": "gold"})
    assert compiled.needs_data
    assert not compile_filter({"type": "x", "sql": "true"}).needs_data
    assert compiled.test(EVENT, counting)
    assert calls == [1]


def test_a_data_key_that_is_all_digits_can_still_be_an_object_key() -> None:
    def getter() -> tuple[bool, Any]:
        return True, {"2024": {"total": 5}}

    assert compile_filter({"data.2024.total": "5"}).test({}, getter)


# --------------------------------------------------------------------------- explain wording


@pytest.mark.parametrize(
    ("spec", "attrs", "reason"),
    [
        (
            {"prefix": {"type": "com.acme."}},
            {"type": "org.other.x"},
            'prefix type: "com.acme." ≠ "org.other.x"',
        ),
        (
            {"prefix": {"type": "com.acme."}},
            {"type": "com.acme.x"},
            'prefix type: "com.acme." is a prefix of "com.acme.x"',
        ),
        ({"type": "a"}, {"type": "a"}, 'exact type: "a" = "a"'),
        ({"type": "a"}, {"type": "b"}, 'exact type: "a" ≠ "b"'),
        (
            {"suffix": {"subject": ".pdf"}},
            {"subject": "x.pdf"},
            'suffix subject: ".pdf" is a suffix of "x.pdf"',
        ),
        ({"tenant": "acme"}, {}, 'exact tenant: attribute missing (want "acme")'),
        ({"type": "a", "tenant": "t"}, {"type": "a", "tenant": "u"}, 'exact tenant: "t" ≠ "u"'),
        (
            {"type": "a", "tenant": "t"},
            {"type": "a", "tenant": "t"},
            'exact type: "a" = "a" and exact tenant: "t" = "t"',
        ),
        ({"not": {"type": "a"}}, {"type": "a"}, 'not (exact type: "a" = "a")'),
        (
            {"type": ["a", "b"]},
            {"type": "c"},
            'none of: exact type: "a" ≠ "c"; exact type: "b" ≠ "c"',
        ),
        ({}, {}, "no conditions (matches every event)"),
        ({"data.x": "1"}, {}, 'exact data.x: no such field in data (want "1")'),
        (
            {"data.customer": "1"},
            {},
            'exact data.customer: field is an object, not a value (want "1")',
        ),
    ],
)
def test_explain_reasons(spec: Any, attrs: dict[str, Any], reason: str) -> None:
    assert compile_filter(spec).explain(attrs, data).reason == reason


# --------------------------------------------------------------------------- compile errors


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        (
            {"prefx": {"type": "x"}},
            ("prefx",),
            "unknown filter dialect 'prefx' (did you mean 'prefix'?)",
        ),
        ({"exact": {"type": ""}}, ("exact", "type"), "filter values must not be empty strings"),
        ({"exact": {}}, ("exact",), "'exact' needs a mapping"),
        ({"exact": "type"}, ("exact",), "'exact' needs a mapping"),
        ({"all": []}, ("all",), "'all' needs a non-empty list of filters"),
        ({"any": {"type": "x"}}, ("any",), "'any' needs a non-empty list of filters"),
        ({"not": "x"}, ("not",), "'not' needs one nested filter"),
        ({"sql": "type = "}, ("sql",), "CESQL syntax error at column"),
        ({"sql": ""}, ("sql",), "'sql' needs a CESQL expression string"),
        ({"Type": "x"}, ("Type",), "'Type' is not an attribute name"),
        ({"exact": {"data..x": "1"}}, ("exact", "data..x"), "empty field name"),
        ({"type": 1.5}, ("type",), "a filter value must be a string, got a number"),
        ({"type": []}, ("type",), "'type' needs at least one value"),
        (
            {"all": [{"type": "a"}, {"any": [{"exact": {"x": None}}]}]},
            ("all", 1, "any", 0, "exact", "x"),
            "got null",
        ),
        ("type", (), "a filter must be a mapping"),
    ],
)
def test_compile_errors(spec: Any, path: tuple[Any, ...], message: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(spec)
    assert info.value.path == path
    assert message in info.value.message


def test_structure_and_introspection() -> None:
    compiled = compile_filter(
        {"type": "a", "prefix": {"source": "/s"}, "not": {"sql": "true"}, "any": [{"x": "1"}]}
    )
    assert isinstance(compiled, AllOf)
    kinds = [type(c) for c in conjuncts(compiled)]
    assert kinds == [Compare, Compare, Not, AnyOf]
    assert conjuncts(MatchAll()) == ()
    sql = compile_filter({"sql": "true"})
    assert isinstance(sql, Sql)
    assert sql == compile_filter({"sql": "true"})  # equal by source
    assert isinstance(compile_filter({"data.a.b": "x"}), DataCompare)
    assert str(compile_filter({"prefix": {"type": "com."}})) == 'prefix type="com."'


# --------------------------------------------------------------------------- agreement with CESQL

_alphabet = st.text(alphabet="ab.c-", max_size=6)


@given(value=_alphabet, want=_alphabet.filter(bool), present=st.booleans())
def test_dialects_agree_with_their_cesql_recreations(value: str, want: str, present: bool) -> None:
    """The Subscriptions API recreations of the CESQL TCK, as a property."""
    attrs: dict[str, Any] = {"id": "1", "myext": value} if present else {"id": "1"}
    recreations: dict[str, Filter] = {
        f"myext = '{want}'": compile_filter({"exact": {"myext": want}}),
        f"myext LIKE '{want}%'": compile_filter({"prefix": {"myext": want}}),
        f"myext LIKE '%{want}'": compile_filter({"suffix": {"myext": want}}),
    }
    for sql, dialect in recreations.items():
        assert dialect.test(attrs, no_data) is compile_expression(sql).matches(attrs), sql
