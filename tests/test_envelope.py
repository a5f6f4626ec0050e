"""The CloudEvents 1.0 envelope rules: a passing and a failing case for every rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cerouter.binding import DecodedEvent, Mode, decode
from cerouter.timestamps import is_rfc3339
from cerouter.validation import attribute_rules, envelope
from cerouter.validation.envelope import (
    KNOWN_INTEGER_EXTENSIONS,
    check_attributes,
    check_envelope,
    check_json_members,
)
from cerouter.validation.formats import is_absolute_uri, is_media_type, is_uri_reference
from cerouter.validation.report import Problem, Stage

BASE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "A234-1234-1234",
    "source": "https://shop.example.com/orders",
    "type": "com.example.order.created",
}


def problems(**changes: Any) -> tuple[Problem, ...]:
    """Problems of BASE with ``changes`` applied (a value of ``None`` removes the attribute)."""
    attributes = {**BASE, **changes}
    attributes = {name: value for name, value in attributes.items() if value is not None}
    return check_envelope(DecodedEvent(attributes, Mode.STRUCTURED))


def where(found: tuple[Problem, ...]) -> list[str]:
    return [p.where for p in found]


def test_a_minimal_event_is_fine() -> None:
    assert problems() == ()


def test_a_full_event_is_fine() -> None:
    assert (
        problems(
            time="2026-05-01T12:34:56.789Z",
            datacontenttype="application/json",
            dataschema="https://schemas.example.com/shop/order-created.json",
            subject="order/1",
            traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            severitynumber=9,
            tenant="acme",
        )
        == ()
    )


def test_problems_are_envelope_stage_and_name_the_attribute() -> None:
    (problem,) = problems(time="yesterday")
    assert problem.stage is Stage.ENVELOPE
    assert problem.where == "time"
    assert "RFC 3339" in problem.message
    assert str(problem).startswith("time: is not an RFC 3339 timestamp")


# --------------------------------------------------------------------------- required


@pytest.mark.parametrize("name", ["id", "source", "specversion", "type"])
def test_required_attribute_missing(name: str) -> None:
    found = problems(**{name: None})
    assert [(p.where, p.message) for p in found] == [(name, "required attribute is missing")]


@pytest.mark.parametrize("name", ["id", "source", "specversion", "type"])
def test_required_attribute_empty(name: str) -> None:
    found = problems(**{name: ""})
    assert [(p.where, p.message) for p in found] == [(name, "must not be empty")]


def test_every_problem_is_reported_not_just_the_first() -> None:
    found = check_attributes({"specversion": "0.3", "time": "never", "Bad": "x"})
    assert where(found) == ["id", "source", "type", "specversion", "time", "Bad"]


# --------------------------------------------------------------------------- specversion


def test_specversion_1_0_passes() -> None:
    assert problems(specversion="1.0") == ()


@pytest.mark.parametrize("value", ["0.3", "1.0.2", "1", "v1.0"])
def test_specversion_other_than_1_0_fails(value: str) -> None:
    (problem,) = problems(specversion=value)
    assert problem.where == "specversion"
    assert "must be '1.0'" in problem.message


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["abc", "a1", "1a", "x" * 40, "comexampleextension1"])
def test_attribute_names_of_lowercase_letters_and_digits_pass(name: str) -> None:
    assert problems(**{name: "v"}) == ()


@pytest.mark.parametrize("name", ["Tenant", "tenant-id", "tenant_id", "tenänt", "a b", "", "é"])
def test_attribute_names_outside_a_z_0_9_fail(name: str) -> None:
    (problem,) = problems(**{name: "v"})
    assert problem.where == name
    assert "lower-case ASCII letters and digits" in problem.message


def test_attribute_name_data_is_reserved() -> None:
    event = decode(
        {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t", "ce-data": "x"},
        b"",
    )
    (problem,) = check_envelope(event)
    assert problem.where == "data"
    assert "reserved" in problem.message


# --------------------------------------------------------------------------- source


@pytest.mark.parametrize(
    "value",
    [
        "https://github.com/cloudevents",
        "mailto:cncf-wg-serverless@lists.cncf.io",
        "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "cloudevents/spec/pull/123",
        "/sensors/tn-1234567/alerts",
        "1-555-123-4567",
        "https://[2001:db8::1]:8443/orders?x=1#frag",
        "//shop.example.com/orders",
        "https://user:pw@shop.example.com:8080/a%20b",
    ],
)
def test_source_uri_references_pass(value: str) -> None:
    assert problems(source=value) == ()


@pytest.mark.parametrize(
    "value",
    [
        "http://exa mple.com",
        "/orders/%zz",
        "https://[::g]/",
        "foo\\bar",
        "a:b:c/<x>",
        "http://host:port/",
        "/orders#a#b",
    ],
)
def test_source_that_is_no_uri_reference_fails(value: str) -> None:
    (problem,) = problems(source=value)
    assert problem.where == "source"
    assert "is not a URI-reference" in problem.message


# --------------------------------------------------------------------------- dataschema


@pytest.mark.parametrize(
    "value",
    ["https://schemas.example.com/order.json", "urn:example:order:v1", "file:///schemas/o.json"],
)
def test_dataschema_absolute_uri_passes(value: str) -> None:
    assert problems(dataschema=value) == ()


@pytest.mark.parametrize(
    "value", ["/schemas/order.json", "order.json", "https://x.example/s.json#/a", "http://a b/"]
)
def test_dataschema_not_absolute_fails(value: str) -> None:
    (problem,) = problems(dataschema=value)
    assert problem.where == "dataschema"
    assert "absolute URI" in problem.message


def test_dataschema_empty_fails() -> None:
    (problem,) = problems(dataschema="")
    assert (problem.where, problem.message) == ("dataschema", "must not be empty")


# --------------------------------------------------------------------------- time


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T12:30:00Z",
        "2024-05-01T12:30:00.123456789Z",
        "2024-05-01t12:30:00z",
        "2024-05-01 12:30:00+02:00",
        "2024-02-29T00:00:00-05:30",
        "2000-02-29T00:00:00Z",
        "2024-12-31T23:59:59Z",
        "2024-04-30T00:00:00Z",
    ],
)
def test_rfc3339_time_passes(value: str) -> None:
    assert problems(time=value) == ()


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01",
        "2024-05-01T12:30:00",
        "2024-05-01T12:30Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:30:60Z",
        "2024-05-01T12:30:00+24:00",
        "20240501T123000Z",
        "0000-01-01T00:00:00Z",
        "yesterday",
    ],
)
def test_time_that_is_not_rfc3339_fails(value: str) -> None:
    (problem,) = problems(time=value)
    assert problem.where == "time"
    assert "RFC 3339" in problem.message


_DIGITS = st.text("0123456789", min_size=1, max_size=2)


@st.composite
def timestamp_like(draw: st.DrawFn) -> str:
    year = draw(st.sampled_from(["2024", "2023", "2000", "1900", "0001", "9999", "0000", "24"]))
    month, day, hour, minute, second = (draw(_DIGITS).zfill(2) for _ in range(5))
    sep = draw(st.sampled_from("Tt x"))
    frac = draw(st.sampled_from(["", ".5", ".123456789", "."]))
    offset = draw(st.sampled_from(["Z", "z", "+00:00", "-23:59", "+24:00", "+01:60", "", "+0100"]))
    return f"{year}-{month}-{day}{sep}{hour}:{minute}:{second}{frac}{offset}"


@settings(max_examples=400)
@given(timestamp_like())
def test_time_rule_agrees_with_the_timestamps_module(value: str) -> None:
    fine = not problems(time=value)
    assert fine == is_rfc3339(value)


# --------------------------------------------------------------------------- datacontenttype


@pytest.mark.parametrize(
    "value",
    [
        "application/json",
        "text/plain; charset=utf-8",
        "TEXT/Plain; CharSet=utf-8",
        'application/cloudevents+json;charset="utf-8"',
        "application/vnd.example.order.v1+json",
        "multipart/form-data; boundary=x; charset=us-ascii",
    ],
)
def test_media_types_pass(value: str) -> None:
    assert problems(datacontenttype=value) == ()


@pytest.mark.parametrize(
    "value",
    ["json", "application/", "/json", "application/json;", "text/plain; charset", "a/b c", ""],
)
def test_datacontenttype_that_is_no_media_type_fails(value: str) -> None:
    (problem,) = problems(datacontenttype=value)
    assert problem.where == "datacontenttype"
    assert "RFC 2046" in problem.message


# --------------------------------------------------------------------------- subject


def test_subject_non_empty_passes() -> None:
    assert problems(subject="order/1") == ()


def test_subject_empty_fails() -> None:
    (problem,) = problems(subject="")
    assert (problem.where, problem.message) == ("subject", "must not be empty")


# --------------------------------------------------------------------------- core types


@pytest.mark.parametrize(
    ("name", "value"),
    [("id", 5), ("type", True), ("subject", 1), ("source", 7), ("time", 1700000000)],
)
def test_core_attributes_must_be_strings(name: str, value: Any) -> None:
    (problem,) = problems(**{name: value})
    assert problem.where == name
    assert problem.message.startswith("must be a ")


@pytest.mark.parametrize("value", [1.5, [1], {"a": 1}, b"bytes"])
def test_values_must_be_cloudevents_types(value: Any) -> None:
    (problem,) = check_attributes({**BASE, "tenant": value})
    assert problem.where == "tenant"
    assert "must be a String, Integer or Boolean" in problem.message


def test_string_integer_and_boolean_extension_values_pass() -> None:
    assert problems(tenant="acme", retries=3, replay=True) == ()


# --------------------------------------------------------------------------- Integer


@pytest.mark.parametrize("value", [-(2**31), 0, 2**31 - 1])
def test_integers_in_the_32_bit_range_pass(value: int) -> None:
    assert problems(retries=value) == ()


@pytest.mark.parametrize("value", [-(2**31) - 1, 2**31, 10**20])
def test_integers_outside_the_32_bit_range_fail(value: int) -> None:
    (problem,) = problems(retries=value)
    assert problem.where == "retries"
    assert "Integer range" in problem.message


def test_known_integer_extensions() -> None:
    assert set(KNOWN_INTEGER_EXTENSIONS) >= {"severitynumber", "sampledrate"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("severitynumber", 0),
        ("severitynumber", 24),
        ("severitynumber", "9"),
        ("sampledrate", 1),
        ("sampledrate", "100"),
    ],
)
def test_known_integer_extensions_in_range_pass(name: str, value: Any) -> None:
    assert problems(**{name: value}) == ()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("severitynumber", -1, "less than the minimum of 0"),
        ("sampledrate", 0, "less than the minimum of 1"),
        ("sampledrate", "0", "less than the minimum of 1"),
        ("severitynumber", 2**31, "Integer range"),
        ("severitynumber", "2147483648", "Integer range"),
        ("severitynumber", "99999999999999999999999", "Integer range"),
        ("severitynumber", "5.0", "not an Integer"),
        ("severitynumber", "+5", "not an Integer"),
        ("severitynumber", "05", "not an Integer"),
        ("severitynumber", "high", "not an Integer"),
        ("severitynumber", True, "must be an Integer"),
    ],
)
def test_known_integer_extensions_fail(name: str, value: Any, message: str) -> None:
    (problem,) = problems(**{name: value})
    assert problem.where == name
    assert message in problem.message


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("expirytime", "2026-05-01T00:00:00Z", "tomorrow"),
        ("recordedtime", "2026-05-01T00:00:00+02:00", "2026-05-01"),
        ("dataref", "https://blobs.example.com/1", "a b"),
        ("deprecationmigration", "https://docs.example.com/v2", "/relative"),
        ("deprecated", "true", "yes"),
        ("deprecated", True, 1),
    ],
)
def test_known_extension_types(name: str, good: Any, bad: Any) -> None:
    assert problems(**{name: good}) == ()
    (problem,) = problems(**{name: bad})
    assert problem.where == name


# --------------------------------------------------------------------------- String characters


@pytest.mark.parametrize(
    "value",
    ["Euro € 😀", "no\u00a0break", "zero\u200bwidth", "\U0001f600", "", "\U0010fffd"],
)
def test_strings_without_forbidden_characters_pass(value: str) -> None:
    assert problems(tenant=value) == ()


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("line\nbreak", "control character (U+000A at index 4)"),
        ("nul\x00", "control character (U+0000"),
        ("del\x7f", "control character (U+007F"),
        ("c1\x85", "control character (U+0085"),
        ("non\ufffe", "noncharacter (U+FFFE"),
        ("non\ufdd0", "noncharacter (U+FDD0"),
        ("plane16\U0010ffff", "noncharacter (U+10FFFF"),
        ("lone\ud800", "unpaired surrogate (U+D800"),
    ],
)
def test_strings_with_forbidden_characters_fail(value: str, what: str) -> None:
    (problem,) = problems(tenant=value)
    assert problem.where == "tenant"
    assert what in problem.message


@pytest.mark.parametrize("name", ["id", "type", "subject", "source", "time"])
def test_control_characters_fail_in_core_attributes_too(name: str) -> None:
    (problem,) = problems(**{name: "bad\tvalue"})
    assert problem.where == name
    assert "control character" in problem.message


# --------------------------------------------------------------------------- binary mode


def test_binary_mode_values_are_checked_as_canonical_strings() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "/orders",
        "ce-type": "com.example.order.created",
        "ce-time": "2026-05-01T12:00:00Z",
        "ce-severitynumber": "5",
        "ce-deprecated": "true",
    }
    assert check_envelope(decode(headers, b"{}")) == ()
    headers["ce-time"] = "2026-05-01"
    headers["ce-severitynumber"] = "-5"
    headers["ce-tenant"] = "a%0Ab"  # a percent-encoded line break
    found = check_envelope(decode(headers, b"{}"))
    assert where(found) == ["time", "severitynumber", "tenant"]


# --------------------------------------------------------------------------- JSON members


def test_data_alone_or_data_base64_alone_pass() -> None:
    assert check_json_members({**BASE, "data": {"a": 1}}) == ()
    assert check_json_members({**BASE, "data_base64": "AAEC"}) == ()
    assert check_json_members({**BASE, "data": 1, "data_base64": None}) == ()


def test_data_and_data_base64_together_fail() -> None:
    (problem,) = check_json_members({**BASE, "data": {"a": 1}, "data_base64": "AAEC"})
    assert problem.where == "data_base64"
    assert "mutually exclusive" in problem.message


@pytest.mark.parametrize(("value", "message"), [(5, "must be a string"), ("@@@", "base64")])
def test_data_base64_must_be_base64(value: Any, message: str) -> None:
    (problem,) = check_json_members({**BASE, "data_base64": value})
    assert problem.where == "data_base64"
    assert message in problem.message


def test_json_member_values_must_be_cloudevents_types() -> None:
    found = check_json_members({**BASE, "price": 1.5, "tags": ["a"], "unset": None})
    assert where(found) == ["price", "tags"]


# --------------------------------------------------------------------------- grammars


def test_grammar_predicates() -> None:
    assert is_uri_reference("")
    assert is_uri_reference("#frag")
    assert not is_uri_reference(" ")
    assert is_absolute_uri("urn:a")
    assert not is_absolute_uri("a")
    assert not is_absolute_uri("a:b#c")
    assert is_media_type("a/b")
    assert not is_media_type("a")


def test_pathological_uri_is_rejected_quickly() -> None:
    # Nested quantifiers in the grammar must not backtrack exponentially.
    assert not is_uri_reference("//" + "a" * 5000 + "@" * 2 + " ")
    assert not is_uri_reference("/" + "a/" * 5000 + "%")


# --------------------------------------------------------------------------- fast path


_names = st.sampled_from(
    [
        "id", "source", "specversion", "type", "time", "datacontenttype", "dataschema",
        "subject", "severitynumber", "sampledrate", "expirytime", "deprecated", "dataref",
        "tenant", "traceparent", "Bad", "data", "x_y",
    ]
)  # fmt: skip
_values = st.one_of(
    st.sampled_from(
        [
            "", "1.0", "0.3", "/orders", "https://x.example/s.json", "a b", "2024-05-01T12:30:00Z",
            "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00Z",
            "application/json", "text/plain; charset=utf-8", "json", "true", "5", "-1",
            "com.example.order.created", "line\nbreak", "\u00a0", "\ufffe",
        ]
    ),
    st.text(max_size=12),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.booleans(),
)  # fmt: skip


@settings(max_examples=600)
@given(st.dictionaries(_names, _values, max_size=10), st.booleans())
def test_fast_path_never_disagrees_with_the_full_check(
    changes: dict[str, Any], from_base: bool
) -> None:
    attributes = {**BASE, **changes} if from_base else changes
    full = attribute_rules.find_problems(attributes, False)
    if envelope._looks_fine(attributes):
        assert full == ()
    assert check_attributes(attributes) == full
    # A second look (memos now filled) gives the same answer.
    assert check_attributes(attributes) == full
