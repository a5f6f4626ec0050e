"""Paper cuts of routes.yaml diagnostics, seen through `cerouter routes check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cerouter.cli import app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(text: str) -> tuple[int, list[str]]:
    """``cerouter routes check`` on ``text`` in the working directory: exit code, stderr lines."""
    Path("routes.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["routes", "check", "routes.yaml"])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.splitlines()


HEAD = "version: 1\nroutes:\n"


@pytest.mark.usefixtures("workdir")
@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(
            "  - name: a\n    match: {type: x\n    to: {subject: a}\n",
            "routes.yaml:4: YAML syntax error: the '{' at column 12 is never closed "
            "(expected ',' or '}' before line 5)",
            id="missing-brace",
        ),
        pytest.param(
            "  - {name: a, match: {type: x}, to: {subject: a}\n",
            "routes.yaml:3: YAML syntax error: the '{' at column 5 is never closed "
            "(expected ',' or '}' before line 4)",
            id="missing-brace-at-the-end",
        ),
        pytest.param(
            "  - name: a\n    match: {type: x}\n    to: [{subject: a}, {subject: b}\n  - name: b\n",
            "routes.yaml:5: YAML syntax error: the '[' at column 9 is never closed "
            "(expected ',' or ']' before line 6)",
            id="missing-bracket",
        ),
        pytest.param(
            "  - name: a\n    match: {type: x}\n   to: {subject: a}\n",
            "routes.yaml:5: YAML syntax error: bad indentation: this line does not line up with "
            "the lines above it",
            id="bad-indentation",
        ),
        pytest.param(
            "  - name: a\n\tmatch: {type: x}\n",
            "routes.yaml:4: YAML syntax error: a tab at column 1: YAML indents with spaces only",
            id="tab",
        ),
        pytest.param(
            "  - name: a\n    match: {type: x}\n    to:\n      subject: {type}.x\n",
            "routes.yaml:6: YAML syntax error: expected <block end>, but found '<scalar>' "
            '(quote subject templates: "orders.{type}")',
            id="unquoted-template",
        ),
    ],
)
def test_yaml_syntax_errors_point_at_the_mistake(body: str, error: str) -> None:
    code, errors = check(HEAD + body)
    assert code == 1
    assert errors == [error, "routes.yaml: 1 error"]


KINDS = "a destination needs one of 'subject', 'stream' (with 'subject'), 'queue' or 'request'"


@pytest.mark.usefixtures("workdir")
@pytest.mark.parametrize(
    ("to", "error"),
    [
        ("{topic: x}", f"routes[0].to: unknown key 'topic'; {KINDS}"),
        ("[{subject: a}, {channel: x}]", f"routes[0].to[1]: unknown key 'channel'; {KINDS}"),
        # a near miss names the key meant instead
        ("{subjekt: x}", "routes[0].to: unknown key 'subjekt' (did you mean 'subject'?)"),
    ],
)
def test_an_unknown_destination_key_says_what_a_destination_is(to: str, error: str) -> None:
    code, errors = check(HEAD + f"  - name: a\n    match: {{type: x}}\n    to: {to}\n")
    assert code == 1
    assert errors == [f"routes.yaml:5: {error}", "routes.yaml: 1 error"]


def typo(line: int, path: str, name: str, subject: str, meant: str) -> str:
    return (
        f"routes.yaml:{line}: warning: {path}: placeholder {{{name}}} in subject {subject!r} is "
        f"not a CloudEvents core attribute (did you mean {{{meant}}}?); events without an "
        f"extension named {name!r} render it as '_'"
    )


@pytest.mark.usefixtures("workdir")
def test_a_placeholder_near_a_core_attribute_is_a_lint_warning() -> None:
    code, warnings = check(
        "version: 1\ningress: {core: {subjects: [in.>]}}\nroutes:\n"
        "  - name: a\n    match: {type: x}\n"
        '    to: [{subject: "orders.{tpye}"}, {subject: "o.{sorce}.{tenant}"}]\n'
        "  - name: b\n    match: {type: y}\n"
        '    to: {request: "svc.{subjcet}.{type}"}\n'
    )
    assert code == 0
    assert warnings == [
        typo(6, "routes[0].to[0]", "tpye", "orders.{tpye}", "type"),
        typo(6, "routes[0].to[1]", "sorce", "o.{sorce}.{tenant}", "source"),
        typo(9, "routes[1].to[0]", "subjcet", "svc.{subjcet}.{type}", "subject"),
    ]
