"""A routes file needs no schemas: without a schemas section or directory, envelopes only."""

from __future__ import annotations

from pathlib import Path

from cerouter.config.load import check_config

MINIMAL = "version: 1\nroutes:\n  - name: a\n    match: {type: x}\n    to: {subject: y}\n"


def test_a_minimal_routes_file_without_schemas_loads(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(MINIMAL)
    result = check_config(path)
    assert result.ok, [str(e) for e in result.errors]
    assert result.registry is None


def test_a_declared_but_missing_schema_directory_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(MINIMAL + "schemas: {directory: nowhere}\n")
    result = check_config(path)
    assert not result.ok
    assert "nowhere" in str(result.errors[0])
    assert str(result.errors[0]).startswith(f"{path}:6: ")
