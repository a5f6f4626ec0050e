"""Hostile routes.yaml and schema files: located errors, quickly, never a hang or a traceback."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import orjson
import pytest

from cerouter.config.load import parse_config
from cerouter.errors import SchemaLoadError
from cerouter.pipeline import Pipeline
from cerouter.types import Reason
from cerouter.validation.registry import SchemaRegistry, SchemasSettings
from tests.cli_helpers import cli

T = TypeVar("T")

# Generous for a loaded 2-core machine: each input below hung for minutes before.
BOUND_SECONDS = 2.0
ROUTES_MAX_DEPTH = 64  # documented: cerouter.config.yaml_tree.MAX_DEPTH
SCHEMA_MAX_DEPTH = 255  # documented: cerouter.validation.documents.MAX_DEPTH
MAX_ALIAS_NODES = 10_000  # documented: cerouter.validation.documents.MAX_ALIAS_NODES


def _route(match: str) -> str:
    return f"version: 1\nroutes:\n  - name: r\n    match: {match}\n    to: {{subject: out}}\n"


def _laughs(head: str = "") -> str:
    """Nine levels of nine aliases each: 9**9 strings once expanded."""
    lines = [head, 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _merge_bomb(head: str = "") -> str:
    """Each mapping merges the previous one twice: 2**24 merged keys once expanded."""
    lines = [head, "m0: &m0 {k0: 1, k1: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, 25)]
    return "\n".join(lines) + "\n"


ROUTES_CASES = [
    pytest.param(
        "version: 1\nx: " + "[" * 20_000 + "]" * 20_000 + "\n",
        f"routes.yaml:2: YAML mappings and lists nested more than {ROUTES_MAX_DEPTH} levels deep",
        id="20k-deep",
    ),
    pytest.param(
        _route("{not: " * 3000 + "{type: a}" + "}" * 3000),
        f"routes.yaml:4: YAML mappings and lists nested more than {ROUTES_MAX_DEPTH} levels deep",
        id="3000-nested-not",
    ),
    pytest.param(
        _laughs("version: 1\nroutes: []"),
        f"routes.yaml:7: YAML aliases copy more than {MAX_ALIAS_NODES} nodes in all "
        "(this *a3 is one too many; a 'billion laughs' file?)",
        id="billion-laughs",
    ),
    pytest.param(
        _merge_bomb("version: 1\nroutes: []"),
        f"routes.yaml:12: YAML aliases copy more than {MAX_ALIAS_NODES} nodes in all "
        "(this *m8 is one too many; a 'billion laughs' file?)",
        id="merge-key-bomb",
    ),
    pytest.param(
        "version: 1\nroutes: &r [*r]\n",
        "routes.yaml:2: the alias *r is inside the node it names (a recursive alias)",
        id="recursive-alias",
    ),
    pytest.param(
        _route('{sql: "' + "(" * 5000 + "true" + ")" * 5000 + '"}'),
        "routes.yaml:4: routes[0].match.sql: CESQL syntax error at column 101: the expression "
        "nests more than 100 levels deep",
        id="5000-parentheses",
    ),
    pytest.param(
        _route('{sql: "' + "NOT " * 5000 + "true" + '"}'),
        "routes.yaml:4: routes[0].match.sql: CESQL syntax error at column 401: the expression "
        "nests more than 100 levels deep",
        id="5000-NOT",
    ),
]


@pytest.mark.parametrize(("text", "error"), ROUTES_CASES)
def test_parse_config_refuses_hostile_yaml_quickly_with_a_located_error(
    text: str, error: str
) -> None:
    started = time.perf_counter()
    result = parse_config(text, check_schemas=False)
    elapsed = time.perf_counter() - started
    assert result.config is None
    assert [str(e) for e in result.errors][:1] == [error] or str(result.errors[0]).startswith(error)
    assert elapsed < BOUND_SECONDS, f"took {elapsed:.1f} s"


@pytest.mark.parametrize(("text", "error"), ROUTES_CASES)
def test_routes_check_reports_hostile_yaml_on_one_line(
    tmp_path: Path, text: str, error: str
) -> None:
    (tmp_path / "routes.yaml").write_text(text, encoding="utf-8")
    result = cli("routes", "check", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    first, summary = result.stderr.splitlines()
    assert first.startswith(error)
    assert summary == "routes.yaml: 1 error"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_laughs("version: 1\nroutes: []"), id="billion-laughs"),
        pytest.param("version: 1\nx: " + "{a: " * 20_000 + "1" + "}" * 20_000, id="20k-deep"),
    ],
)
def test_run_refuses_hostile_yaml_with_exit_2_and_one_line(tmp_path: Path, text: str) -> None:
    (tmp_path / "routes.yaml").write_text(text, encoding="utf-8")
    result = cli("run", "--log-format", "console", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("cerouter run: routes.yaml:")


def test_anchors_aliases_and_merge_keys_within_the_budget_still_work() -> None:
    text = (
        "version: 1\nroutes:\n"
        "  - &first {name: r0, match: {type: a}, to: [{subject: one}, {subject: two}]}\n"
        + "".join(f"  - {{<<: *first, name: r{i}}}\n" for i in range(1, 100))
    )
    result = parse_config(text, check_schemas=False)
    assert result.errors == ()
    assert result.config is not None
    assert [r.name for r in result.config.routes] == [f"r{i}" for i in range(100)]


def test_aliases_may_copy_up_to_the_budget() -> None:
    # An anchored list of 33 destinations is 100 nodes (33 mappings of a key and a value, and
    # the list): 100 copies are the whole budget, 101 one too many.
    destinations = ", ".join(f"{{subject: s{i}}}" for i in range(33))
    for copies, ok in ((MAX_ALIAS_NODES // 100, True), (MAX_ALIAS_NODES // 100 + 1, False)):
        text = (
            f"version: 1\nroutes:\n  - {{name: r, match: {{type: a}}, to: &to [{destinations}]}}\n"
            + "".join(f"  - {{name: r{i}, match: {{type: a}}, to: *to}}\n" for i in range(copies))
        )
        errors = parse_config(text, check_schemas=False).errors
        assert (errors == ()) is ok, errors


def _with_stack_in_use(frames: int, call: Callable[[], T]) -> T:
    """``call()`` from ``frames`` Python frames down: callers (CLI, pytest, a reload) use some."""
    if frames == 0:
        return call()
    return _with_stack_in_use(frames - 1, call)


def test_a_match_nested_to_the_limit_loads_routes_and_explains() -> None:
    # version/routes/route/match take 4 levels; every `not` one more.
    nots = ROUTES_MAX_DEPTH - 4
    text = _route("{not: " * nots + "{type: a}" + "}" * nots)
    event = orjson.dumps({"specversion": "1.0", "id": "1", "source": "/s", "type": "a"})

    def everything() -> None:
        result = parse_config(text, check_schemas=False)
        assert result.errors == ()
        assert result.config is not None
        pipeline = Pipeline(result.config, None)
        decision = pipeline.process(None, event)
        assert [m.route.name for m in decision.matches] == ["r"]  # an even number of nots
        assert pipeline.table.routes[0].match.explain({"type": "a"}, lambda: (False, None)).matched

    _with_stack_in_use(300, everything)
    deeper = _route("{not: " * (nots + 1) + "{type: a}" + "}" * (nots + 1))
    assert "nested more than 64" in str(parse_config(deeper, check_schemas=False).errors[0])


# -- schema files ----------------------------------------------------------------------------


def _json_nested(depth: int) -> str:
    """A schema whose ``items`` nest ``depth`` objects deep in all."""
    return '{"items": ' * (depth - 1) + '{"type": "string"}' + "}" * (depth - 1)


def _load(directory: Path) -> SchemaRegistry:
    return SchemaRegistry.load(SchemasSettings(directory=directory))


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        pytest.param(
            "deep.yaml",
            "a: " + "[" * 20_000 + "]" * 20_000 + "\n",
            f"deep.yaml:1:258: nested more than {SCHEMA_MAX_DEPTH} levels deep",
            id="20k-deep-yaml",
        ),
        pytest.param(
            "deep.json",
            '{"a": ' + "[" * 1000 + "]" * 1000 + "}",
            f"deep.json:1:261: nested more than {SCHEMA_MAX_DEPTH} levels deep",
            id="1000-deep-json",
        ),
        pytest.param(
            "deep.json",
            '{"a": ' + "[" * 20_000 + "]" * 20_000 + "}",
            f"deep.json:1:261: nested more than {SCHEMA_MAX_DEPTH} levels deep",
            id="20k-deep-json",
        ),
        pytest.param(
            "laughs.yaml",
            _laughs(),
            f"laughs.yaml:6:10: YAML aliases copy more than {MAX_ALIAS_NODES} nodes in all",
            id="billion-laughs",
        ),
        pytest.param(
            "merge.yaml",
            _merge_bomb(),
            f"merge.yaml:11:20: YAML aliases copy more than {MAX_ALIAS_NODES} nodes in all",
            id="merge-key-bomb",
        ),
        pytest.param(
            "loop.yaml",
            "properties: &p {a: {properties: *p}}\n",
            "loop.yaml:1:33: the alias *p is inside the node it names (a recursive alias)",
            id="recursive-alias",
        ),
    ],
)
def test_the_schema_loader_refuses_hostile_files_naming_them(
    tmp_path: Path, name: str, text: str, error: str
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(SchemaLoadError) as caught:
        _load(tmp_path)
    elapsed = time.perf_counter() - started
    assert str(caught.value).startswith(f"{tmp_path / name}:{error.partition(':')[2]}")
    assert elapsed < BOUND_SECONDS, f"took {elapsed:.1f} s"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_schema_nested_to_the_limit_compiles_and_one_level_more_is_refused(
    tmp_path: Path, suffix: str
) -> None:
    (tmp_path / f"ok{suffix}").write_text(_json_nested(SCHEMA_MAX_DEPTH), encoding="utf-8")
    assert len(_load(tmp_path)) == 1
    (tmp_path / f"deep{suffix}").write_text(_json_nested(SCHEMA_MAX_DEPTH + 1), encoding="utf-8")
    with pytest.raises(SchemaLoadError, match=f"nested more than {SCHEMA_MAX_DEPTH} levels"):
        _load(tmp_path)


def test_schemas_check_reports_a_bomb_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "laughs.yaml").write_text(_laughs(), encoding="utf-8")
    result = cli("schemas", "check", "schemas", cwd=tmp_path)
    assert result.returncode == 1
    first, summary = result.stderr.splitlines()
    assert first.startswith("schemas/laughs.yaml:6:10: YAML aliases copy more than")
    assert "problem" in summary


# -- data nested deeper than JSON Schema validation handles ----------------------------------


def test_data_nested_too_deeply_to_validate_is_a_schema_rejection(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "thing.json").write_text(
        '{"x-cloudevents-type": "thing", "type": "object"}', encoding="utf-8"
    )
    text = (
        "version: 1\nschemas: {directory: schemas}\n"
        "routes:\n  - {name: r, match: {type: thing}, to: {subject: out}}\n"
    )
    result = parse_config(text, file=str(tmp_path / "routes.yaml"))
    assert result.config is not None, result.errors
    pipeline = Pipeline(result.config, result.registry)
    head = b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "thing", "data": '
    deep = [b"[" * depth + b"]" * depth for depth in (300, 1000)]
    wide_and_deep = b"[" + b"1, " * 5000 + deep[1] + b"]"  # many values, then a deep one
    for data in (*deep, wide_and_deep):
        decision = pipeline.process(None, head + data + b"}")
        assert [r.reason for r in decision.rejections] == [Reason.SCHEMA]
        assert "nested too deeply" in decision.rejections[0].detail


@pytest.mark.parametrize(("text", "kind"), [("1", "a JSON number"), ("[[1]]", "a JSON array")])
def test_a_json_file_holding_no_object_is_still_a_plain_schema_error(
    tmp_path: Path, text: str, kind: str
) -> None:
    (tmp_path / "odd.json").write_text(text, encoding="utf-8")
    with pytest.raises(SchemaLoadError, match=f"must be a JSON object or boolean, this is {kind}"):
        _load(tmp_path)
