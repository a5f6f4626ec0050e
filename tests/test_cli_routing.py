"""``cerouter routes check``, ``cerouter routes schema`` and ``cerouter explain``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cerouter.cli import app
from cerouter.config.structure import routes_schema

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "examples" / "events"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example routes.yaml and schemas, as the working directory."""
    shutil.copy(ROOT / "routes.yaml", tmp_path / "routes.yaml")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_the_example(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(app, ["routes", "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("routes.yaml: ok: 8 routes, 4 streams, ")
    assert result.stderr == ""


def test_check_reports_every_error_and_exits_1(runner: CliRunner, shop: Path) -> None:
    (shop / "bad.yaml").write_text(
        "version: 1\nroutes:\n  - name: a\n    match: {type: x}\n    to: {subjet: a}\n"
        "  - name: a\n    match: {tpye: [{}]}\n    to: {subject: b}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["routes", "check", "bad.yaml"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "bad.yaml:5: routes[0].to: unknown key 'subjet' (did you mean 'subject'?)",
        "bad.yaml:7: routes[1].match.tpye[0]: a filter value must be a string, got a mapping",
        "bad.yaml: 2 errors",
    ]
    assert "Traceback" not in result.output


def test_check_prints_warnings_and_exits_0(runner: CliRunner, shop: Path) -> None:
    (shop / "warn.yaml").write_text(
        "version: 1\nroutes:\n  - {name: a, match: {type: x}, to: {subject: 'events.{type}'}}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["routes", "check", "warn.yaml"])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "warn.yaml:3: warning: routes[0].to[0]: subject 'events.{type}' is consumed again by "
        "ingress 'events.>': events sent there come back to the router (a loop)"
    ]
    assert result.stdout.endswith(", 1 warning\n")


def test_check_env_resolution(runner: CliRunner, shop: Path) -> None:
    (shop / "env.yaml").write_text(
        "version: 1\nnats: {token: '${CEROUTER_TEST_UNSET_TOKEN}'}\nroutes: []\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["routes", "check", "env.yaml"])
    assert result.exit_code == 1
    assert "env.yaml:2: nats.token: environment variable CEROUTER_TEST_UNSET_TOKEN is not set" in (
        result.stderr
    )
    assert runner.invoke(app, ["routes", "check", "--no-env", "env.yaml"]).exit_code == 0


def test_check_missing_file(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(app, ["routes", "check", "nope.yaml"])
    assert result.exit_code == 2
    assert result.stderr == (
        "cerouter routes check: nope.yaml: cannot read: No such file or directory\n"
    )


def test_schema_prints_the_packaged_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(app, ["routes", "schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == routes_schema()


def test_explain_text(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(app, ["explain", str(EVENTS / "order-created.json")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "envelope: ok" in out
    assert "data: ok (schema order-created.json)" in out
    assert "eur-orders        matched" in out
    assert "bill-new-orders: queue work.billing" in out
    assert out.rstrip().endswith("outcome: routed to 5 destination(s)")


def test_explain_json_and_dead_letter_exit_code(runner: CliRunner, shop: Path) -> None:
    result = runner.invoke(
        app,
        ["explain", "--json", "--routes", "routes.yaml", str(EVENTS / "order-paid-invalid.json")],
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["outcome"] == "deadletter"
    assert doc["reason"] == "envelope"
    assert doc["valid"] is False
    assert {p["where"] for p in doc["problems"]} >= {"id", "time"}
    assert doc["destinations"][0]["subject"] == "deadletter.envelope"
    assert doc["destinations"][0]["deadletter"] is True
    assert [r["status"] for r in doc["routes"]][:2] == ["matched", "matched"]


def test_explain_reads_stdin(runner: CliRunner, shop: Path) -> None:
    event = (EVENTS / "payment-failed.json").read_bytes()
    result = runner.invoke(app, ["explain", "-"], input=event)
    assert result.exit_code == 0
    assert "payment-retries   skipped      after final route 'payment-alerts'" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "missing.json"], "cerouter explain: missing.json: cannot read: No such file"),
        (
            ["explain", "x.json", "--routes", "nope.yaml"],
            "cerouter explain: nope.yaml: cannot read",
        ),
    ],
)
def test_explain_usage_errors_are_one_line(
    runner: CliRunner, shop: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1
