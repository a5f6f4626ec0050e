"""Lint warnings for valid but suspicious routes.yaml files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cerouter.config.lint import filter_implies, filters_disjoint, lint, unsatisfiable
from cerouter.config.load import check_config
from cerouter.routing.filter_spec import compile_filter

ROOT = Path(__file__).resolve().parents[1]


def warnings(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "routes.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    (tmp_path / "schemas").mkdir(exist_ok=True)
    result = check_config(path, environ={})
    assert result.config is not None, [str(e) for e in result.errors]
    found = [*result.warnings, *lint(result.config, result.registry)]
    return [w.format("routes.yaml") for w in sorted(found, key=lambda w: w.line or 0)]


def test_the_example_routes_yaml_has_no_warnings() -> None:
    result = check_config(ROOT / "routes.yaml", environ={})
    assert result.config is not None
    assert lint(result.config, result.registry) == []
    assert result.warnings == ()


def test_shadowed_by_an_earlier_final_route(tmp_path: Path) -> None:
    got = warnings(
        tmp_path,
        """
        version: 1
        routes:
          - name: all-orders
            match: {prefix: {type: com.example.order.}}
            to: {subject: a}
            final: true
          - name: created
            match: {type: com.example.order.created, source: /shop}
            to: {subject: b}
          - name: payments
            match: {type: com.example.payment.failed}
            to: {subject: c}
        """,
    )
    assert got == [
        "routes.yaml:7: warning: routes[1]: route 'created' can never fire: the earlier final "
        "route 'all-orders' (line 3) matches every event it matches"
    ]


def test_a_catch_all_final_route_shadows_everything_after_it(tmp_path: Path) -> None:
    got = warnings(
        tmp_path,
        """
        version: 1
        routes:
          - {name: everything, match: {}, to: {subject: a}, final: true}
          - {name: b, match: {sql: "x = 1"}, to: {subject: b}}
        """,
    )
    assert len(got) == 1
    assert "route 'b' can never fire" in got[0]


def test_contradictory_conditions(tmp_path: Path) -> None:
    got = warnings(
        tmp_path,
        """
        version: 1
        routes:
          - name: impossible
            match:
              type: com.a
              prefix: {type: com.b.}
            to: {subject: a}
        """,
    )
    assert got == [
        "routes.yaml:3: warning: routes[0].match: route 'impossible' can never match: exact "
        'type="com.a" contradicts prefix type="com.b."'
    ]


def test_duplicate_destinations(tmp_path: Path) -> None:
    got = warnings(
        tmp_path,
        """
        version: 1
        routes:
          - name: a
            match: {prefix: {type: com.}}
            to:
              - {subject: "out.{type}"}
              - {subject: "out.{type}", mode: binary}
          - name: b
            match: {type: com.x}
            to: {subject: "out.{type}"}
          - name: c
            match: {type: org.x}
            to: {subject: "out.{type}"}
        """,
    )
    assert got == [
        "routes.yaml:7: warning: routes[0].to[1]: subject out.{type} is listed twice in route "
        "'a' (also to[0]); each event is sent twice",
        "routes.yaml:10: warning: routes[1].to[0]: subject out.{type} is also a destination of "
        "route 'a' (routes[0].to[0]); an event matching both routes is sent twice",
    ]


def test_stream_destinations_the_stream_does_not_capture(tmp_path: Path) -> None:
    got = warnings(
        tmp_path,
        """
        version: 1
        streams:
          - {name: ORDERS, subjects: [orders.created, orders.paid]}
          - {name: OTHER, subjects: other.>}
        routes:
          - name: a
            match: {type: x}
            to:
              - {stream: ORDERS, subject: "orders.{type}"}
              - {stream: ORDERS, subject: other.x}
              - {stream: ORDERS, subject: orders.paid}
        """,
    )
    assert got == [
        "routes.yaml:9: warning: routes[0].to[0]: stream 'ORDERS' (subjects: orders.created, "
        "orders.paid) captures only some of the subjects 'orders.{type}' renders; publishing the "
        "others fails",
        "routes.yaml:10: warning: routes[0].to[1]: stream 'ORDERS' (subjects: orders.created, "
        "orders.paid) does not capture subject 'other.x'; publishing fails; it belongs to stream "
        "'OTHER'",
    ]


def test_routing_loops(tmp_path: Path) -> None:
    got = warnings(
        tmp_path,
        """
        version: 1
        routes:
          - name: echo
            match: {type: x}
            to: {subject: "events.{type}"}
          - name: fine
            match: {type: y}
            to: {subject: "out.{type}"}
        unrouted: {subject: events.unrouted}
        """,
    )
    assert got == [
        "routes.yaml:5: warning: routes[0].to[0]: subject 'events.{type}' is consumed again by "
        "ingress 'events.>': events sent there come back to the router (a loop)",
        "routes.yaml:9: warning: unrouted: subject 'events.unrouted' is consumed again by "
        "ingress 'events.>': events sent there come back to the router (a loop)",
    ]


def test_unused_schemas_and_clear_text_secrets(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "orphan.json").write_text('{"type": "object"}', encoding="utf-8")
    got = warnings(
        tmp_path,
        """
        version: 1
        nats: {token: hunter2}
        routes: []
        """,
    )
    assert got == [
        "routes.yaml: warning: schemas: schema 'orphan.json' is not mapped to any event type or "
        "used by a route (only events whose dataschema names its $id reach it)",
        "routes.yaml:2: warning: nats.token: secret written in clear text; use an environment "
        "reference such as ${NATS_TOKEN}",
    ]


@pytest.mark.parametrize(
    ("specific", "general", "implied"),
    [
        ({"type": "a.b"}, {"prefix": {"type": "a."}}, True),
        ({"type": "a.b", "source": "s"}, {"type": "a.b"}, True),
        ({"type": "a.b"}, {"type": "a.b", "source": "s"}, False),
        ({"prefix": {"type": "a.b."}}, {"prefix": {"type": "a."}}, True),
        ({"prefix": {"type": "a."}}, {"prefix": {"type": "a.b."}}, False),
        ({"suffix": {"subject": ".tar.gz"}}, {"suffix": {"subject": ".gz"}}, True),
        ({"type": ["a", "b"]}, {"type": ["a", "b", "c"]}, True),
        ({"type": ["a", "z"]}, {"type": ["a", "b"]}, False),
        ({"sql": "x = 1", "type": "a"}, {"sql": "x = 1"}, True),
        ({"sql": "x = 1"}, {"sql": "x = 2"}, False),
        ({"data.a": "1"}, {"data.a": "1"}, True),
        ({}, {"type": "a"}, False),
        ({"type": "a"}, {}, True),
    ],
)
def test_filter_implication(specific: object, general: object, implied: bool) -> None:
    assert filter_implies(compile_filter(specific), compile_filter(general)) is implied


@pytest.mark.parametrize(
    ("a", "b", "disjoint"),
    [
        ({"type": "a"}, {"type": "b"}, True),
        ({"type": "a"}, {"type": "a"}, False),
        ({"prefix": {"type": "com."}}, {"type": "org.x"}, True),
        ({"prefix": {"type": "com."}}, {"prefix": {"type": "com.x"}}, False),
        ({"type": ["a", "b"]}, {"type": "c"}, True),
        ({"type": ["a", "b"]}, {"type": "b"}, False),
        ({"sql": "type = 'a'"}, {"type": "b"}, False),
    ],
)
def test_filter_disjointness(a: object, b: object, disjoint: bool) -> None:
    assert filters_disjoint(compile_filter(a), compile_filter(b)) is disjoint


def test_unsatisfiable() -> None:
    assert unsatisfiable(compile_filter({"type": "a", "exact": {"type": "b"}})) is not None
    assert unsatisfiable(compile_filter({"type": "a.b", "prefix": {"type": "a."}})) is None
