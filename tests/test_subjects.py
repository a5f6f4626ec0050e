"""Subject templates: parsing, escaping (property-tested), and subject pattern algebra."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cerouter.routing.subjects import (
    MAX_TOKEN_VALUE,
    SubjectError,
    SubjectTemplate,
    check_subject,
    escape_token,
    pattern_covers,
    patterns_overlap,
    subject_matches,
)

# --------------------------------------------------------------------------- escaping


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("created", "created"),
        ("com.example.order.created", "com_example_order_created"),
        ("*", "_"),
        (">", "_"),
        ("", "_"),
        ("a b\tc", "a_b_c"),
        ("/shop/web", "_shop_web"),
        ("https://shop.example.com/orders", "https___shop_example_com_orders"),
        ("$SYS", "_SYS"),
        ("Ünïcode€", "_n_code_"),
        ("dash-and_underscore", "dash-and_underscore"),
    ],
)
def test_escape_token(value: str, token: str) -> None:
    assert escape_token(value) == token


def test_long_values_are_shortened_with_a_digest_and_stay_distinct() -> None:
    a = escape_token("x" * 500)
    b = escape_token("x" * 499 + "y")
    assert len(a) == MAX_TOKEN_VALUE
    assert len(b) == MAX_TOKEN_VALUE
    assert a != b
    assert re.fullmatch(r"x{91}-[0-9a-f]{8}", a)


def test_render_examples() -> None:
    attrs = {
        "type": "com.example.order.created",
        "source": "/shop/web",
        "subject": "o-1001",
        "tenant": "acme.eu",
        "priority": 3,
        "urgent": True,
    }
    cases = {
        "orders.{type}": "orders.com_example_order_created",
        "audit.{source}": "audit._shop_web",
        "{subject}": "o-1001",
        "tenants.{tenant}.orders": "tenants.acme_eu.orders",
        "p{priority}.u-{urgent}": "p3.u-true",
        "x.{missing}": "x._",
        "orders.created": "orders.created",
    }
    for template, subject in cases.items():
        assert SubjectTemplate.parse(template).render(attrs) == subject


def test_extra_values_win_over_attributes() -> None:
    template = SubjectTemplate.parse("deadletter.{reason}")
    assert template.render({"reason": "evil.>"}, {"reason": "schema"}) == "deadletter.schema"
    assert template.render({"reason": "evil.>"}) == "deadletter.evil__"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "non-empty"),
        ("orders..x", "empty token"),
        ("orders.", "empty token"),
        ("orders.*", "'*'"),
        ("orders.>", "'>'"),
        ("orders.{type", "unmatched '{'"),
        ("orders.type}", "unmatched '}'"),
        ("orders.{Type}", "placeholder {Type}"),
        ("orders.{}", "placeholder {}"),
        ("orders.{type.x}", "unmatched"),
        ("orders x", "' '"),
    ],
)
def test_bad_templates(template: str, message: str) -> None:
    with pytest.raises(SubjectError) as info:
        SubjectTemplate.parse(template)
    assert message in str(info.value)


def test_template_properties() -> None:
    t = SubjectTemplate.parse("t.{tenant}.x-{type}.done")
    assert t.names == frozenset({"tenant", "type"})
    assert not t.is_constant
    assert t.wildcard_pattern == "t.*.*.done"
    assert SubjectTemplate.parse("a.b").is_constant
    assert str(t) == "t.{tenant}.x-{type}.done"
    assert t == SubjectTemplate.parse("t.{tenant}.x-{type}.done")


# --------------------------------------------------------------------------- the property

_template_tokens = st.one_of(
    st.sampled_from(["orders", "audit", "x-", "work", "$JS"]),
    st.sampled_from(["{type}", "{source}", "{subject}", "{tenant}", "{id}"]),
    st.tuples(st.sampled_from(["a-", "b_", ""]), st.sampled_from(["{type}", "{tenant}"])).map(
        "".join
    ),
)
_templates = st.lists(_template_tokens, min_size=1, max_size=5).map(".".join)
_values = st.one_of(
    st.text(max_size=150),
    st.sampled_from(["*", ">", ".", "..", " ", "a.>", "a.*.b", "\t", "", "$SYS.>", "\x00"]),
    st.integers(),
    st.booleans(),
)
_attributes = st.dictionaries(
    st.sampled_from(["type", "source", "subject", "tenant", "id"]), _values, max_size=5
)


@settings(max_examples=400)
@given(template=_templates, attributes=_attributes)
def test_no_event_can_produce_a_wildcard_empty_token_or_extra_tokens(
    template: str, attributes: dict[str, object]
) -> None:
    compiled = SubjectTemplate.parse(template)
    subject = compiled.render(attributes)
    tokens = subject.split(".")
    assert len(tokens) == len(template.split("."))
    for token in tokens:
        assert token
        assert token not in ("*", ">")
        assert not re.search(r"\s", token)
    check_subject(subject, wildcards=False)  # a valid literal subject
    assert subject_matches(compiled.wildcard_pattern, subject)
    assert compiled.overlaps(subject)
    for token, shape in zip(tokens, compiled.tokens, strict=True):
        assert shape.regex.fullmatch(token)


@given(st.text())
def test_escaped_tokens_are_always_safe(value: str) -> None:
    token = escape_token(value)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", token)


# --------------------------------------------------------------------------- subjects and patterns


@pytest.mark.parametrize("subject", ["events.>", "a.*.c", "*", ">", "a"])
def test_valid_patterns(subject: str) -> None:
    assert check_subject(subject, wildcards=True) == subject


@pytest.mark.parametrize(
    ("subject", "wildcards", "message"),
    [
        ("a..b", True, "empty token"),
        ("a.>.b", True, "last token"),
        ("a.b*", True, "whole tokens"),
        ("a b", True, "whitespace"),
        ("a.*", False, "wildcard"),
        ("", True, "non-empty"),
    ],
)
def test_invalid_subjects(subject: str, wildcards: bool, message: str) -> None:
    with pytest.raises(SubjectError) as info:
        check_subject(subject, wildcards=wildcards)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("events.>", "events.order", True),
        ("events.>", "events", False),
        ("events.*", "events.a.b", False),
        ("events.*", "*.x", True),
        ("a.b", "a.c", False),
        (">", "x.y.z", True),
        ("orders.>", "payments.>", False),
    ],
)
def test_patterns_overlap(a: str, b: str, overlap: bool) -> None:
    assert patterns_overlap(a, b) is overlap
    assert patterns_overlap(b, a) is overlap


@pytest.mark.parametrize(
    ("general", "specific", "covers"),
    [
        ("orders.>", "orders.created", True),
        ("orders.>", "orders.*.x", True),
        ("orders.>", "orders", False),
        ("orders.*", "orders.>", False),
        ("orders.*", "orders.*", True),
        ("orders.created", "orders.*", False),
        (">", "a", True),
    ],
)
def test_pattern_covers(general: str, specific: str, covers: bool) -> None:
    assert pattern_covers(general, specific) is covers


@pytest.mark.parametrize(
    ("template", "pattern", "covered", "overlaps"),
    [
        ("orders.{type}", "orders.>", True, True),
        ("orders.{type}", "orders.*", True, True),
        ("orders.{type}", "orders.created", False, True),
        ("orders.{type}", "payments.>", False, False),
        ("orders.x-{type}", "orders.x-created", False, True),
        ("orders.x-{type}", "orders.y-created", False, False),
        ("orders.{type}.v1", "orders.>", True, True),
        ("orders", "orders.>", False, False),
        ("events.{type}", "events.>", True, True),
    ],
)
def test_template_against_patterns(
    template: str, pattern: str, covered: bool, overlaps: bool
) -> None:
    t = SubjectTemplate.parse(template)
    assert t.covered_by(pattern) is covered
    assert t.overlaps(pattern) is overlaps
