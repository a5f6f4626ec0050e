"""The official CESQL v1.0.0 TCK, one test per case.

The TCK is not part of this repository. ``$CEROUTER_CESQL_TCK`` names its directory
(``cesql/cesql_tck`` in https://github.com/cloudevents/spec, tag ``cesql@v1.0.0``), else
``../shared/conformance/cesql_tck`` beside the clone is used; without either the module is
skipped, or fails when ``CEROUTER_REQUIRE_CONFORMANCE=1`` (see tests/external.py).
The YAML files are read as they are; PyYAML's YAML 1.1 typing is undone here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from cerouter.cesql import compile_expression
from cerouter.errors import CesqlParseError
from tests.external import REPO, conformance_dir

TCK_DIR = conformance_dir(
    "CEROUTER_CESQL_TCK",
    REPO.parent / "shared" / "conformance" / "cesql_tck",
    "CESQL TCK",
    "git clone -b cesql@v1.0.0 https://github.com/cloudevents/spec (it is spec/cesql/cesql_tck)",
)

# "Any valid event can be passed" when a case gives none, but 16 such cases expect
# `missing`/`myext` to be absent, so the base event carries only the REQUIRED attributes.
BASE_EVENT: dict[str, object] = {
    "specversion": "1.0",
    "id": "tck-id",
    "source": "http://example.com/tck",
    "type": "io.cloudevents.tck",
}

STALE = {
    ("not_operator", "Invalid int cast"): (
        "stale upstream expectation: NOT 10 expects true + cast, but CESQL v1.0.0 section 3.7 "
        "defines Integer->Boolean (0 is false, anything else true, no error), so the result is "
        "false without error; sdk-go's copy of the TCK has the corrected case"
    ),
}


@dataclass(frozen=True)
class Case:
    """One TCK case with YAML typing undone."""

    expression: str
    event: dict[str, object]
    result: object
    error: str | None


def _typed(value: object, text: object) -> object:
    # Unquoted RFC 3339 timestamps load as datetime; the CloudEvents value is the text.
    return text if isinstance(value, dt.datetime) else value


def _event(typed: dict[str, Any], text: dict[str, Any]) -> dict[str, object]:
    return {key: _typed(value, text[key]) for key, value in typed.items()}


def _load() -> list[Any]:
    files = sorted(TCK_DIR.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no CESQL TCK files in {TCK_DIR}")
    params = []
    for path in files:
        source = path.read_text(encoding="utf-8")
        # PyYAML follows YAML 1.1: `expression: TRUE` loads as a bool, `expression: -10` as
        # an int, `name: true` as a bool.  BaseLoader keeps every scalar as written, so
        # names and expressions come from it; values keep their YAML types (`mybool: true`
        # is a Boolean extension) except timestamps.
        typed_cases = yaml.safe_load(source)["tests"]
        text_cases = yaml.load(source, Loader=yaml.BaseLoader)["tests"]
        for typed, text in zip(typed_cases, text_cases, strict=True):
            name = text["name"]
            event = _event(typed["event"], text["event"]) if "event" in typed else dict(BASE_EVENT)
            event.update(_event(typed.get("eventOverrides", {}), text.get("eventOverrides", {})))
            case = Case(
                expression=text["expression"],
                event=event,
                result=_typed(typed.get("result"), text.get("result")),
                error=typed.get("error"),
            )
            reason = STALE.get((path.stem, name))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(case, id=f"{path.stem}::{name}", marks=marks))
    return params


CASES = _load()


def test_tck_is_complete() -> None:
    assert len(CASES) == 275
    ids = [param.id for param in CASES]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES)
def test_tck(case: Case) -> None:
    if case.error == "parse":
        with pytest.raises(CesqlParseError):
            compile_expression(case.expression)
        return
    result = compile_expression(case.expression).evaluate(case.event)
    assert [error.kind.value for error in result.errors] == ([case.error] if case.error else [])
    if case.result is not None:
        assert result.value == case.result
        assert type(result.value) is type(case.result)
