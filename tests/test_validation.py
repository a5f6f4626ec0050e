"""EventValidator: envelope then data, one report; and the report type itself."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from cerouter.binding import DataKind, DecodedEvent, Mode, decode, encode
from cerouter.validation.registry import SchemaRegistry, SchemasSettings
from cerouter.validation.report import VALID, Problem, Report, Stage
from cerouter.validation.validator import EventValidator

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
EVENTS = REPO / "examples" / "events"
STRUCTURED = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load(SchemasSettings(SCHEMAS))


@pytest.fixture(scope="module")
def validator(registry: SchemaRegistry) -> EventValidator:
    return EventValidator(registry)


def example(name: str) -> dict[str, Any]:
    event: dict[str, Any] = orjson.loads((EVENTS / name).read_bytes())
    return event


def structured(event: dict[str, Any]) -> DecodedEvent:
    return decode(STRUCTURED, orjson.dumps(event))


def binary(event: dict[str, Any]) -> DecodedEvent:
    message = encode(structured(event), Mode.BINARY)
    return decode(message.headers, message.payload)


def summary(report: Report) -> list[str]:
    return [f"{p.stage}|{p}" for p in report.problems]


# --------------------------------------------------------------------------- the examples


@pytest.mark.parametrize(
    "name", ["order-created.json", "order-paid.json", "order-shipped.json", "payment-failed.json"]
)
@pytest.mark.parametrize("to_event", [structured, binary], ids=["structured", "binary"])
def test_valid_examples_pass_in_both_modes(
    validator: EventValidator, name: str, to_event: Any
) -> None:
    report = validator.check(to_event(example(name)))
    assert report is VALID
    assert report.ok


@pytest.mark.parametrize("to_event", [structured, binary], ids=["structured", "binary"])
def test_invalid_data_is_reported_with_pointers(validator: EventValidator, to_event: Any) -> None:
    report = validator.check(to_event(example("order-created-invalid.json")))
    assert not report.ok
    assert sorted(summary(report)) == [
        "data|data/customer/email: is not a valid email",
        "data|data/items/0/price: is less than the minimum of 0",
        'data|data/total/currency: does not match "^[A-Z]{3}$"',
    ]


def test_envelope_and_data_problems_come_together(validator: EventValidator) -> None:
    report = validator.check(structured(example("order-paid-invalid.json")))
    assert summary(report) == [
        "envelope|id: must not be empty",
        "envelope|time: is not an RFC 3339 timestamp (like 2024-05-01T12:30:00Z)",
        'data|data/method: is not one of "card", "paypal", "invoice", "voucher"',
    ]


def test_check_json_reads_the_example_files(validator: EventValidator) -> None:
    assert validator.check_json(example("order-created.json")) is VALID
    assert not validator.check_json(example("order-created-invalid.json")).ok


# --------------------------------------------------------------------------- data kinds


def test_binary_mode_body_that_is_not_json_is_a_data_problem(validator: EventValidator) -> None:
    message = encode(structured(example("order-created.json")), Mode.BINARY)
    report = validator.check(decode(message.headers, b"{not json"))
    (problem,) = report.problems
    assert problem.stage is Stage.DATA
    assert problem.where == "data"
    assert "not valid JSON" in problem.message


def test_binary_mode_body_without_content_type_is_read_as_json(validator: EventValidator) -> None:
    message = encode(structured(example("order-created-invalid.json")), Mode.BINARY)
    headers = {k: v for k, v in message.headers.items() if k != "ce-datacontenttype"}
    report = validator.check(decode(headers, message.payload))
    assert "data/items/0/price" in {p.where for p in report.problems}


def test_non_json_data_with_a_schema_is_a_data_problem(validator: EventValidator) -> None:
    event = {**example("order-created.json"), "datacontenttype": "text/plain", "data": "hello"}
    (problem,) = validator.check(structured(event)).problems
    assert problem.stage is Stage.DATA
    assert problem.message == (
        "datacontenttype is not JSON (*/json or */*+json); schema "
        "https://schemas.example.com/shop/order-created.json can only validate JSON data"
    )


def test_json_suffix_content_types_are_json(validator: EventValidator) -> None:
    event = {**example("order-created.json"), "datacontenttype": "application/vnd.shop+json"}
    assert validator.check(structured(event)) is VALID


def test_data_base64_with_json_content_type_is_validated(validator: EventValidator) -> None:
    event = example("order-created-invalid.json")
    data = event.pop("data")
    event["data_base64"] = base64.b64encode(orjson.dumps(data)).decode()
    report = validator.check(structured(event))
    assert "data/items/0/price" in {p.where for p in report.problems}


def test_data_base64_without_content_type_is_not_assumed_json(validator: EventValidator) -> None:
    event = example("order-created.json")
    data = event.pop("data")
    del event["datacontenttype"]
    event["data_base64"] = base64.b64encode(orjson.dumps(data)).decode()
    (problem,) = validator.check(structured(event)).problems
    assert "cannot be assumed to be JSON" in problem.message


def test_missing_data_with_a_schema_is_a_data_problem(validator: EventValidator) -> None:
    event = example("order-created.json")
    del event["data"]
    (problem,) = validator.check(structured(event)).problems
    assert (problem.stage, problem.where) == (Stage.DATA, "data")
    assert "has no data" in problem.message


def test_explicit_null_data_is_validated(validator: EventValidator) -> None:
    event = {**example("order-created.json"), "data": None}
    (problem,) = validator.check(structured(event)).problems
    assert problem.message == 'is not of type "object"'


# --------------------------------------------------------------------------- schema choice


def test_types_without_schema_are_allowed_by_default(validator: EventValidator) -> None:
    event = {**example("order-created.json"), "type": "com.example.cart.abandoned"}
    assert validator.check(structured(event)) is VALID


def test_types_without_schema_can_be_rejected() -> None:
    strict = EventValidator(SchemaRegistry.load(SchemasSettings(SCHEMAS, unknown="reject")))
    event = {**example("order-created.json"), "type": "com.example.cart.abandoned"}
    (problem,) = strict.check(structured(event)).problems
    assert problem.stage is Stage.DATA
    assert "no schema for the event's type" in problem.message
    assert strict.check(structured(example("order-created.json"))) is VALID


def test_dataschema_picks_the_schema(validator: EventValidator) -> None:
    event = {
        **example("order-created.json"),
        "dataschema": "https://schemas.example.com/shop/order-paid.json",
    }
    report = validator.check(structured(event))
    assert '"paymentId" is a required property' in {p.message for p in report.problems}


def test_schema_ref_forces_a_schema(validator: EventValidator) -> None:
    event = structured(example("order-created.json"))
    assert validator.check(event, "order-created.json") is VALID
    report = validator.check(event, "order-paid.json")
    assert '"paymentId" is a required property' in {p.message for p in report.problems}
    assert validator.check_data(event, "order-created.json") is VALID
    assert not validator.check_data(event, "order-paid.json").ok


def test_unknown_schema_ref_is_a_problem_not_an_exception(validator: EventValidator) -> None:
    event = structured(example("order-created.json"))
    (problem,) = validator.check(event, "missing.json").problems
    assert problem.message == "schema 'missing.json' is not loaded"
    assert not validator.check_data(event, "missing.json").ok


def test_without_a_registry_only_the_envelope_is_checked() -> None:
    bare = EventValidator(None)
    assert bare.check(structured(example("order-created-invalid.json"))) is VALID
    event = {**example("order-created.json"), "time": "now"}
    assert [p.where for p in bare.check(structured(event)).problems] == ["time"]
    assert not bare.check(structured(example("order-created.json")), "any.json").ok


def test_schema_for(validator: EventValidator) -> None:
    schema = validator.schema_for({"type": "com.example.order.paid"})
    assert schema is not None
    assert schema.relpath == "order-paid.json"
    assert validator.schema_for({}, "common.json") is not None


# --------------------------------------------------------------------------- check_json


def test_check_json_reports_member_rules_with_attribute_rules(validator: EventValidator) -> None:
    event = {**example("order-created.json"), "data_base64": "AAEC", "price": 1.5, "time": "x"}
    assert summary(validator.check_json(event)) == [
        "envelope|data_base64: 'data' and 'data_base64' are mutually exclusive",
        "envelope|price: must be a String, Integer or Boolean, got number 1.5",
        "envelope|time: 'x' is not an RFC 3339 timestamp (like 2024-05-01T12:30:00Z)",
    ]


def test_check_json_of_something_that_is_no_object(validator: EventValidator) -> None:
    (problem,) = validator.check_json([1, 2]).problems
    assert (problem.stage, problem.where) == (Stage.BINDING, "event")
    assert "must be a JSON object, got array" in problem.message


def test_check_json_binding_errors_become_problems(validator: EventValidator) -> None:
    event = {**example("order-created.json"), "datacontenttype": "text/plain", "data": {"a": 1}}
    (problem,) = validator.check_json(event).problems
    assert problem.stage is Stage.BINDING
    assert "must be a string for non-JSON datacontenttype" in problem.message


# --------------------------------------------------------------------------- reports


def test_report_values() -> None:
    assert VALID.ok
    assert VALID.summary() == ""
    assert VALID.to_json() == []
    problems = (
        Problem(Stage.ENVELOPE, "time", "'x' is not an RFC 3339 timestamp"),
        Problem(Stage.DATA, "data/items/0/price", "-3 is less than\nthe minimum of 0"),
    )
    report = Report(problems)
    assert not report.ok
    assert str(problems[0]) == "time: 'x' is not an RFC 3339 timestamp"
    assert report.summary() == (
        "time: 'x' is not an RFC 3339 timestamp; "
        "data/items/0/price: -3 is less than the minimum of 0"
    )
    assert report.to_json()[1] == {
        "stage": "data",
        "where": "data/items/0/price",
        "message": "-3 is less than\nthe minimum of 0",
    }
    assert [str(stage) for stage in Stage][:3] == ["binding", "envelope", "data"]


def test_summaries_are_single_lines_for_headers(validator: EventValidator) -> None:
    event = {**example("order-created-invalid.json"), "tenant": "a\r\nb"}
    text = validator.check(structured(event)).summary()
    assert text.isprintable()
    assert "; " in text


def test_validation_never_raises_on_odd_data(validator: EventValidator) -> None:
    odd: list[Any] = [0, "", [], {}, None, True, {"items": [None, {"price": "x"}]}, 1e308]
    for data in odd:
        event = DecodedEvent(
            {**{k: v for k, v in example("order-created.json").items() if k != "data"}},
            Mode.STRUCTURED,
            data,
            DataKind.JSON,
        )
        assert not validator.check(event).ok
