"""The packaged routes.yaml JSON Schema: valid, and applied the same way as ``jsonschema`` does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from cerouter.config.structure import check_structure, routes_schema, routes_schema_text
from cerouter.config.yaml_tree import load_yaml

ROOT = Path(__file__).resolve().parents[1]


def walker_ok(text: str) -> bool:
    node = load_yaml(text, "routes.yaml")
    assert node is not None
    return not check_structure(node)


def library_ok(text: str) -> bool:
    return bool(Draft202012Validator(routes_schema()).is_valid(yaml.safe_load(text)))


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(routes_schema())
    assert json.loads(routes_schema_text()) == routes_schema()
    assert routes_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_example_routes_yaml_is_valid_for_both() -> None:
    text = (ROOT / "routes.yaml").read_text(encoding="utf-8")
    assert walker_ok(text)
    assert library_ok(text)


DOCUMENTS = [
    "version: 1\nroutes: []\n",
    "version: 2\nroutes: []\n",
    "routes: []\n",
    "version: 1\nroutes: {}\n",
    "version: 1\nroutes: []\nextra: 1\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {subjet: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {stream: S, subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {stream: S}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {queue: q, request: r}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {queue: q, durable: true}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {request: r, timeout: 2s}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {request: r, timeout: soon}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: {subject: a, mode: bin}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: []}]\n",
    "version: 1\nroutes: [{name: a, match: {type: x}, to: [{subject: a}, {queue: b}]}]\n",
    "version: 1\nroutes: [{name: a, match: {prefx: {type: x}}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {Type: x}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {data.a.b: x}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: [a, b]}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {type: []}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {exact: {}}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {all: []}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {any: [{type: a}], not: {sql: x}}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: [{type: a}, {sql: b}], to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: '-a', match: {}, to: {subject: a}}]\n",
    "version: 1\nroutes: [{name: a, match: {}, to: {subject: a}, final: 1}]\n",
    "version: 1\nroutes: []\nunrouted: drop\n",
    "version: 1\nroutes: []\nunrouted: dropp\n",
    "version: 1\nroutes: []\nunrouted: {subject: x}\n",
    "version: 1\nroutes: []\nunrouted: {queue: q}\n",
    "version: 1\nroutes: []\nunrouted: 3\n",
    "version: 1\nroutes: []\ningress: {}\n",
    "version: 1\nroutes: []\ningress: {core: {subjects: events.>}}\n",
    "version: 1\nroutes: []\ningress: {core: {queue: q}}\n",
    "version: 1\nroutes: []\ningress: {jetstream: [{stream: S, max_deliver: 0}]}\n",
    "version: 1\nroutes: []\nstreams: [{name: S, subjects: [a], retention: workqueue}]\n",
    "version: 1\nroutes: []\nstreams: [{name: S, subjects: [], replicas: 3}]\n",
    "version: 1\nroutes: []\nstreams: [{name: S, subjects: a, replicas: 7}]\n",
    "version: 1\nroutes: []\nstreams: [{name: S, subjects: a, max_bytes: 1GiB}]\n",
    "version: 1\nroutes: []\nstreams: [{name: S, subjects: a, max_bytes: lots}]\n",
    "version: 1\nroutes: []\nstreams: [{name: 'a.b', subjects: a}]\n",
    "version: 1\nroutes: []\nnats: {urls: [a, b], token: t, tls: {ca: x}}\n",
    "version: 1\nroutes: []\nnats: {url: a}\n",
    "version: 1\nroutes: []\nnats: {urls: []}\n",
    "version: 1\nroutes: []\nschemas: {directory: s, types: {a: b}, unknown: reject}\n",
    "version: 1\nroutes: []\nschemas: {types: {a: 1}}\n",
    "version: 1\nroutes: []\ndeadletter: {stream: DL, subject: 'dl.{reason}'}\n",
    "version: 1\nroutes: []\ndeadletter: {reason: x}\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_walker_agrees_with_jsonschema(text: str) -> None:
    assert walker_ok(text) is library_ok(text), check_structure(load_yaml(text, "r"))  # type: ignore[arg-type]


_scalars = st.one_of(
    st.sampled_from(["x", "a.b", "2s", "binary", "drop", "events.>", "S", "", "1GiB"]),
    st.integers(-1, 9),
    st.booleans(),
)
_keys = st.sampled_from(
    ["subject", "stream", "queue", "request", "mode", "timeout", "durable", "type", "prefix",
     "exact", "sql", "not", "any", "name", "match", "to", "final", "subjet", "data.x"]
)  # fmt: skip
_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=300)
@given(routes=st.lists(st.dictionaries(_keys, _values, max_size=4), max_size=2))
def test_walker_agrees_with_jsonschema_on_random_routes(routes: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump({"version": 1, "routes": routes})
    assert walker_ok(text) is library_ok(text)
