"""`cerouter validate` and `cerouter schemas check|list`: output lines and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from cerouter.cli import app

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
EVENTS = REPO / "examples" / "events"
FIXTURES = Path(__file__).resolve().parent / "schema_fixtures"

CREATED = EVENTS / "order-created.json"
CREATED_ID = "8f6b2a6e-3c1d-4f7a-9a51-0c2f4b7d9e10"
INVALID = EVENTS / "order-created-invalid.json"
INVALID_ID = "0b7f4c2e-9d3a-4e61-8f25-7a1c3e5d9b42"


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], input=stdin)


def validate(*args: str | Path, stdin: str | None = None) -> Result:
    return run("validate", "--schemas", SCHEMAS, *args, stdin=stdin)


def event(path: Path, **changes: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(path.read_bytes())
    loaded.update(changes)
    return loaded


# --------------------------------------------------------------------------- validate


def test_a_valid_event_prints_ok_and_exits_0() -> None:
    result = validate(CREATED)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"event {CREATED_ID}: ok\n"
    assert result.stderr == ""


def test_an_invalid_event_prints_one_line_per_problem_and_exits_1() -> None:
    result = validate(INVALID)
    assert result.exit_code == 1
    assert sorted(result.stdout.splitlines()) == [
        f'event {INVALID_ID}: data/customer/email: "not-an-email" is not a valid email',
        f"event {INVALID_ID}: data/items/0/price: -3 is less than the minimum of 0",
        f'event {INVALID_ID}: data/total/currency: "euro" does not match "^[A-Z]{{3}}$"',
    ]


def test_several_files_are_prefixed_with_their_name() -> None:
    result = validate(CREATED, INVALID)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{CREATED}: event {CREATED_ID}: ok"
    assert all(line.startswith(f"{INVALID}: event {INVALID_ID}: data/") for line in lines[1:])


def test_all_example_events() -> None:
    result = validate(*sorted(EVENTS.glob("*.json")))
    assert result.exit_code == 1
    failing = {line.split(": event")[0] for line in result.stdout.splitlines() if "ok" not in line}
    assert failing == {str(INVALID), str(EVENTS / "order-paid-invalid.json")}


def test_a_json_array_is_a_batch(tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_bytes(orjson.dumps([event(CREATED), event(CREATED, id="", time="soon")]))
    result = validate(batch)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"event {CREATED_ID}: ok",
        "event #2: id: must not be empty",
        "event #2: time: 'soon' is not an RFC 3339 timestamp (like 2024-05-01T12:30:00Z)",
    ]


def test_json_lines_from_stdin() -> None:
    lines = [orjson.dumps(event(CREATED, id=f"e-{n}")).decode() for n in range(3)]
    result = validate("-", stdin="\n".join(lines) + "\n\n")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["event e-0: ok", "event e-1: ok", "event e-2: ok"]


def test_no_file_reads_stdin() -> None:
    result = validate(stdin=CREATED.read_text())
    assert result.exit_code == 0
    assert result.stdout == f"event {CREATED_ID}: ok\n"


def test_json_output() -> None:
    result = validate("--json", CREATED, INVALID)
    assert result.exit_code == 1
    results = json.loads(result.stdout)
    assert [(r["file"], r["id"], r["ok"]) for r in results] == [
        (str(CREATED), CREATED_ID, True),
        (str(INVALID), INVALID_ID, False),
    ]
    assert results[0]["schema"] == "https://schemas.example.com/shop/order-created.json"
    assert results[0]["type"] == "com.example.order.created"
    assert results[0]["problems"] == []
    assert {
        "stage": "data",
        "where": "data/items/0/price",
        "message": "-3 is less than the minimum of 0",
    } in results[1]["problems"]


def test_unknown_reject_option(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_bytes(orjson.dumps(event(CREATED, type="com.example.cart.abandoned")))
    assert validate(path).exit_code == 0
    result = validate("--unknown", "reject", path)
    assert result.exit_code == 1
    assert "no schema for event type 'com.example.cart.abandoned'" in result.stdout


def test_without_schemas_only_envelopes_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./schemas here
    result = run("validate", INVALID)
    assert result.exit_code == 0
    assert result.stdout == f"event {INVALID_ID}: ok\n"
    assert "checking envelopes only" in result.stderr


def test_default_schemas_directory_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    result = run("validate", INVALID)
    assert result.exit_code == 1
    assert result.stderr == ""


# --------------------------------------------------------------------------- usage errors


def test_a_missing_file_is_a_usage_error() -> None:
    result = validate("events.json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "cerouter validate: cannot read events.json: No such file or directory\n"
    )


def test_a_file_that_is_not_json_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "id": "1",\n  "source": \n}\n')
    result = validate(bad)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"cerouter validate: {bad}:4:1: not JSON: ")


def test_a_bad_json_line_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "events.jsonl"
    good = orjson.dumps(event(CREATED)).decode()
    bad.write_text(f"{good}\n{good}\n{{oops\n")
    result = validate(bad)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"cerouter validate: {bad}:3:")


@pytest.mark.parametrize("content", ["", "  \n\n"])
def test_empty_input_is_a_usage_error(tmp_path: Path, content: str) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(content)
    result = validate(empty)
    assert result.exit_code == 2
    assert result.stderr == f"cerouter validate: {empty}: no events (the input is empty)\n"


def test_binary_garbage_is_a_usage_error(tmp_path: Path) -> None:
    garbage = tmp_path / "g.json"
    garbage.write_bytes(b"\xff\xfe\x00")
    result = validate(garbage)
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr


def test_a_missing_schema_directory_is_a_usage_error() -> None:
    result = run("validate", "--schemas", "/nonexistent/schemas", CREATED)
    assert result.exit_code == 2
    assert result.stderr == ("cerouter validate: schema directory /nonexistent/schemas not found\n")


def test_broken_schemas_are_a_usage_error() -> None:
    result = run("validate", "--schemas", FIXTURES / "missing-ref", CREATED)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"cerouter validate: {FIXTURES}/missing-ref/order.json: $ref ")


def test_bad_unknown_value_is_a_usage_error() -> None:
    result = validate("--unknown", "maybe", CREATED)
    assert result.exit_code == 2
    assert "--unknown must be 'allow' or 'reject'" in result.stderr


def test_an_unknown_option_is_a_usage_error() -> None:
    assert validate("--bogus", CREATED).exit_code == 2


def test_events_that_are_not_objects_are_invalid_not_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text('[1, "x", null]')
    result = validate(path)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        "event #1: event: a structured event must be a JSON object, got int"
    )


def test_problem_lines_stay_single_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    path.write_bytes(orjson.dumps(event(CREATED, id="a\nb", tenant="x\ny")))
    result = validate(path)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "event a b: id: contains a control character (U+000A at index 1), not allowed in a String",
        "event a b: tenant: contains a control character (U+000A at index 1), not allowed in a "
        "String",
    ]


# --------------------------------------------------------------------------- schemas check/list


def test_schemas_check_ok() -> None:
    result = run("schemas", "check", SCHEMAS)
    assert result.exit_code == 0
    assert result.stdout == f"{SCHEMAS}: ok: 5 schemas, 4 event types mapped\n"


@pytest.mark.parametrize(
    ("directory", "fragment"),
    [
        ("bad-metaschema", "(metaschema: JSON Schema 2020-12)"),
        ("missing-ref", "cannot be resolved"),
        ("remote-ref", "never fetches schemas over the network"),
        ("duplicate-id", "duplicate $id"),
        ("yaml-syntax", "order.yaml:5:8: YAML syntax error"),
        ("duplicate-type", "is already declared by"),
    ],
)
def test_schemas_check_reports_located_problems(directory: str, fragment: str) -> None:
    result = run("schemas", "check", FIXTURES / directory)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert all(line.startswith(str(FIXTURES / directory)) for line in lines)
    assert fragment in lines[0]
    assert lines[-1].endswith(("1 problem", "2 problems"))


def test_schemas_check_missing_directory() -> None:
    result = run("schemas", "check", "/nonexistent")
    assert result.exit_code == 2
    assert result.stderr == "cerouter schemas check: schema directory /nonexistent not found\n"


def test_schemas_list() -> None:
    result = run("schemas", "list", SCHEMAS)
    assert result.exit_code == 0
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["TYPE", "SCHEMA", "FILE", "DECLARED", "BY"]
    assert rows[1] == [
        "com.example.order.created",
        "https://schemas.example.com/shop/order-created.json",
        "order-created.json",
        "x-cloudevents-type",
    ]
    assert rows[-1] == ["-", "https://schemas.example.com/shop/common.json", "common.json", "-"]


def test_schemas_list_json() -> None:
    result = run("schemas", "list", SCHEMAS, "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert rows[3] == {
        "type": "com.example.payment.failed",
        "schema": "https://schemas.example.com/shop/payment-failed.json",
        "file": "payment-failed.json",
        "draft": "draft-07",
        "declared_by": "x-cloudevents-type",
    }


# --------------------------------------------------------------------------- --routes


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    shutil.copytree(SCHEMAS, tmp_path / "event-schemas")
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "version: 1\n"
        "schemas:\n"
        "  directory: event-schemas\n"
        "  types:\n"
        "    com.example.refund.issued: payment-failed.json\n"
        "  unknown: reject\n"
        "routes:\n"
        "  - name: orders\n"
        "    match: {type: com.example.order.created}\n"
        "    to: {subject: orders.created}\n"
    )
    return routes


def test_validate_with_routes_uses_its_schemas_section(routes_file: Path, tmp_path: Path) -> None:
    refund = tmp_path / "refund.json"
    refund.write_bytes(orjson.dumps(event(CREATED, type="com.example.refund.issued")))
    unknown = tmp_path / "unknown.json"
    unknown.write_bytes(orjson.dumps(event(CREATED, type="com.example.cart.abandoned")))
    result = run("validate", "--routes", routes_file, CREATED, refund, unknown)
    assert result.exit_code == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{CREATED}: event {CREATED_ID}: ok"
    assert any(f"{refund}: event" in line and "paymentId" in line for line in lines)
    assert any(f"{unknown}: event" in line and "no schema for event type" in line for line in lines)


def test_schemas_list_with_routes(routes_file: Path) -> None:
    result = run("schemas", "list", "--routes", routes_file)
    assert result.exit_code == 0
    assert "com.example.refund.issued" in result.stdout
    assert "routes.yaml" in result.stdout


def test_a_bad_routes_file_is_a_usage_error(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("version: 1\nroutes: [\n")
    result = run("validate", "--routes", routes, CREATED)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cerouter validate: {routes}")


def test_schemas_check_with_routes_lists_schema_problems(routes_file: Path) -> None:
    broken = routes_file.parent / "event-schemas" / "broken.json"
    broken.write_text('{"type": "strin"}')
    result = run("schemas", "check", "--routes", routes_file)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(f"{broken}: #/type: ")
