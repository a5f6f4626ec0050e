"""Hardening: work and memory bounded whatever producers send (issue 10, items 4, 5 and 10).

* a schema-invalid event with very many errors is reported at a bounded cost;
* reports name the place and the rule, not the data's values, unless asked to;
* the memos kept across events are bounded in size, not only in number of entries.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from cerouter.validation.registry import (
    MAX_PROBLEMS,
    CompiledSchema,
    SchemaRegistry,
    SchemasSettings,
)
from cerouter.validation.report import Stage


def load_schema(tmp_path: Path, document: Any) -> CompiledSchema:
    (tmp_path / "s.json").write_text(json.dumps(document))
    return SchemaRegistry.load(SchemasSettings(tmp_path)).get("s.json")


# --------------------------------------------------------------------------- item 5: error reports


@pytest.fixture
def integers(tmp_path: Path) -> CompiledSchema:
    return load_schema(tmp_path, {"type": "array", "items": {"type": "integer", "minimum": 0}})


def test_a_huge_invalid_document_is_reported_in_bounded_time(integers: CompiledSchema) -> None:
    # 200,000 bad items (about 1 MB of JSON): listing every error cost ~2 s of CPU on a 2-core
    # machine; the bounded report takes well under a millisecond. CPU time, so load elsewhere
    # on the machine does not count; 0.3 s is hundreds of times the figure, a fifth of before.
    data = ["x"] * 200_000
    start = time.process_time()
    problems = integers.errors(data)
    elapsed = time.process_time() - start
    assert elapsed < 0.3
    assert problems[0].where == "data/0"
    assert problems[0].stage is Stage.DATA
    assert len(problems) <= MAX_PROBLEMS + 1
    assert "further problems" in problems[-1].message


def test_many_errors_are_cut_without_being_counted(integers: CompiledSchema) -> None:
    problems = integers.errors(["x"] * 500)
    assert [p.where for p in problems[:MAX_PROBLEMS]] == [f"data/{i}" for i in range(MAX_PROBLEMS)]
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].where == "data"
    assert problems[-1].message == "and more problems, not shown"
    assert not any(char.isdigit() for char in problems[-1].message)


def test_a_few_errors_in_a_large_document_are_still_found(integers: CompiledSchema) -> None:
    data: list[Any] = [1] * 200_000
    data[150_000] = "x"
    problems = integers.errors(data)
    assert problems[0].where == "data/150000"
