"""The compiled route table: order, fan-out, final, indexing, rendering, purity."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cerouter.binding import DataKind, DecodedEvent, Mode
from cerouter.routing.filter_spec import compile_filter
from cerouter.routing.model import Destination, Match, RenderedDestination, Route
from cerouter.routing.subjects import SubjectTemplate
from cerouter.routing.table import RouteTable, index_of


def dest(template: str, kind: str = "subject", **kw: Any) -> Destination:
    return Destination(kind, SubjectTemplate.parse(template), **kw)  # type: ignore[arg-type]


def route(name: str, match: Any, *to: str, final: bool = False) -> Route:
    destinations = tuple(dest(t) for t in to) or (dest(f"out.{name}"),)
    return Route(name, compile_filter(match), destinations, final)


def event(
    type_: str | None = "com.example.order.created", data: Any = None, **attrs: Any
) -> DecodedEvent:
    attributes: dict[str, Any] = {"specversion": "1.0", "id": "1", "source": "/shop", **attrs}
    if type_ is not None:
        attributes["type"] = type_
    kind = DataKind.ABSENT if data is None else DataKind.JSON
    return DecodedEvent(attributes, Mode.STRUCTURED, data, kind)


def names(matches: list[Match]) -> list[str]:
    return [m.route.name for m in matches]


def test_all_matching_routes_fire_in_order() -> None:
    table = RouteTable(
        [
            route("audit", {}),
            route("orders", {"prefix": {"type": "com.example.order."}}),
            route("created", {"type": "com.example.order.created"}),
            route("payments", {"type": "com.example.payment.failed"}),
            route("acme", {"tenant": "acme"}),
        ]
    )
    assert names(table.match(event(tenant="acme"))) == ["audit", "orders", "created", "acme"]
    assert names(table.match(event("com.example.payment.failed"))) == ["audit", "payments"]
    assert names(table.match(event("org.other"))) == ["audit"]


def test_a_matched_final_route_stops_later_routes() -> None:
    table = RouteTable(
        [
            route("first", {"prefix": {"type": "com."}}),
            route("stop", {"type": "com.example.order.created"}, final=True),
            route("later", {}),
        ]
    )
    assert names(table.match(event())) == ["first", "stop"]
    # an unmatched final route stops nothing
    assert names(table.match(event("com.example.order.paid"))) == ["first", "later"]


def test_no_match_returns_an_empty_list() -> None:
    table = RouteTable([route("a", {"type": "x"})])
    assert table.match(event("y")) == []
    assert RouteTable([]).match(event()) == []


def test_events_without_type_only_see_unindexed_routes() -> None:
    table = RouteTable([route("typed", {"type": "x"}), route("any", {"source": "/shop"})])
    assert names(table.match(event(None))) == ["any"]


def test_destinations_are_rendered_from_the_event() -> None:
    r = Route(
        "r",
        compile_filter({"type": "com.example.order.created"}),
        (
            dest("orders.{type}", mode=Mode.BINARY),
            dest("audit.{source}.{tenant}"),
            dest("ORDERS.created", "stream", stream="ORDERS"),
        ),
    )
    [m] = RouteTable([r]).match(event(tenant="acme.eu"))
    assert m.route is r
    assert [d.subject for d in m.destinations] == [
        "orders.com_example_order_created",
        "audit._shop.acme_eu",
        "ORDERS.created",
    ]
    assert m.destinations[0].mode is Mode.BINARY
    assert m.destinations[1].mode is None
    assert m.destinations[2].kind == "stream"
    assert m.destinations[2] == RenderedDestination(r.to[2], "ORDERS.created")


def test_constant_matches_are_shared_values() -> None:
    table = RouteTable([route("c", {"type": "com.example.order.created"}, "fixed.subject")])
    first, second = table.match(event()), table.match(event())
    assert first == second
    assert first[0] is second[0]  # no per-event allocation for constant destinations


@pytest.mark.parametrize(
    ("match", "kind", "keys", "residual"),
    [
        ({"type": "a"}, "exact", ("a",), None),
        ({"type": ["a", "b"]}, "exact", ("a", "b"), None),
        ({"any": [{"type": "a"}, {"type": "b"}]}, "exact", ("a", "b"), None),
        ({"type": "a", "tenant": "t"}, "exact", ("a",), {"tenant": "t"}),
        ({"prefix": {"type": "com."}}, "prefix", ("com.",), None),
        (
            {"prefix": {"type": "com."}, "type": "com.x"},
            "exact",
            ("com.x",),
            {"prefix": {"type": "com."}},
        ),
        ({"exact": {"type": "a"}, "sql": "x = 1"}, "exact", ("a",), {"sql": "x = 1"}),
        ({"sql": "type = 'a'"}, "scan", (), {"sql": "type = 'a'"}),
        ({"suffix": {"type": ".a"}}, "scan", (), {"suffix": {"type": ".a"}}),
        ({"not": {"type": "a"}}, "scan", (), {"not": {"type": "a"}}),
        ({}, "scan", (), None),
    ],
)
def test_index_of(match: Any, kind: str, keys: tuple[str, ...], residual: Any) -> None:
    got_kind, got_keys, got_residual = index_of(compile_filter(match))
    assert (got_kind, got_keys) == (kind, keys)
    assert got_residual == (None if residual is None else compile_filter(residual))


def test_candidates_do_not_include_unrelated_routes() -> None:
    routes = [route(f"r{i}", {"type": f"com.example.t{i}"}) for i in range(1000)]
    routes.append(route("p", {"prefix": {"type": "com.example.t5"}}))
    routes.append(route("scan", {"sql": "true"}))
    table = RouteTable(routes)
    assert [r.name for r in table.candidates("com.example.t5")] == ["r5", "p", "scan"]
    assert [r.name for r in table.candidates("com.example.t50")] == ["r50", "p", "scan"]
    assert [r.name for r in table.candidates("nope")] == ["scan"]


def test_data_is_parsed_only_when_a_candidate_needs_it() -> None:
    class Spy(DecodedEvent):
        calls = 0

        def json_data(self, *, assume_json: bool = True) -> tuple[bool, Any]:
            Spy.calls += 1
            return super().json_data(assume_json=assume_json)

    table = RouteTable(
        [
            route("gold", {"type": "com.example.order.created", "data.customer.tier": "gold"}),
            route("plain", {"type": "com.example.order.paid"}),
        ]
    )
    gold = Spy(
        {"type": "com.example.order.created"},
        Mode.STRUCTURED,
        {"customer": {"tier": "gold"}},
        DataKind.JSON,
    )
    assert names(table.match(gold)) == ["gold"]
    assert Spy.calls == 1
    paid = Spy({"type": "com.example.order.paid"}, Mode.STRUCTURED, {"x": 1}, DataKind.JSON)
    assert names(table.match(paid)) == ["plain"]
    assert Spy.calls == 1


def test_data_filters_on_binary_bodies_and_bad_json() -> None:
    table = RouteTable([route("gold", {"data.tier": "gold"})])
    good = DecodedEvent(
        {"type": "t", "datacontenttype": "application/json"},
        Mode.BINARY,
        b'{"tier":"gold"}',
        DataKind.BYTES,
    )
    bad = DecodedEvent(
        {"type": "t", "datacontenttype": "application/json"}, Mode.BINARY, b"{nope", DataKind.BYTES
    )
    text = DecodedEvent(
        {"type": "t", "datacontenttype": "text/plain"}, Mode.BINARY, b"gold", DataKind.BYTES
    )
    assert names(table.match(good)) == ["gold"]
    assert table.match(bad) == []
    assert table.match(text) == []


def test_match_attributes_works_without_a_decoded_event() -> None:
    table = RouteTable([route("a", {"type": "x", "tenant": "t"}, "out.{tenant}")])
    [m] = table.match_attributes({"type": "x", "tenant": "t"})
    assert m.destinations[0].subject == "out.t"


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate route name 'a'"):
        RouteTable([route("a", {}), route("a", {})])


def test_the_type_cache_is_bounded() -> None:
    table = RouteTable([route("p", {"prefix": {"type": "t."}})], cache_size=10)
    for i in range(100):
        assert names(table.match(event(f"t.{i}"))) == ["p"]
    assert len(table._cache) <= 10


def test_the_match_memo_is_bounded() -> None:
    table = RouteTable([route("a", {}, "audit.{source}")], memo_size=50)
    for i in range(500):
        [m] = table.match(event(source=f"/s{i}"))
        assert m.destinations[0].subject == f"audit._s{i}"
    assert sum(len(d) for d in table._memos.dicts) <= 50


def test_non_string_types_are_matched_by_canonical_string() -> None:
    table = RouteTable([route("one", {"type": "1"}), route("true", {"type": "true"})])
    assert names(table.match(event(1))) == ["one"]  # type: ignore[arg-type]
    assert names(table.match(event(True))) == ["true"]  # type: ignore[arg-type]
    assert names(table.match(event("1"))) == ["one"]


# --------------------------------------------------------------------------- equivalence property

_types = st.sampled_from(["a.b.c", "a.b.d", "a.x", "b", "a.b", "c.d.e"])
_conditions = st.one_of(
    st.builds(lambda t: {"type": t}, _types),
    st.builds(lambda t: {"prefix": {"type": t}}, st.sampled_from(["a.", "a.b.", "b", "c.d.", "z"])),
    st.builds(lambda ts: {"type": ts}, st.lists(_types, min_size=1, max_size=3)),
    st.builds(lambda t: {"tenant": t}, st.sampled_from(["x", "y"])),
    st.builds(lambda s: {"suffix": {"type": s}}, st.sampled_from([".c", "b", ".e"])),
    st.just({"sql": "tenant = 'x'"}),
    st.just({}),
)
_route_specs = st.lists(
    st.tuples(st.lists(_conditions, max_size=2), st.booleans()), min_size=1, max_size=12
)


@settings(max_examples=200)
@given(specs=_route_specs, event_type=_types, tenant=st.sampled_from(["x", "y", None]))
def test_indexed_matching_equals_naive_ordered_evaluation(
    specs: list[tuple[list[dict[str, Any]], bool]], event_type: str, tenant: str | None
) -> None:
    routes = [
        Route(f"r{i}", compile_filter(conds), (dest("o"),), final)
        for i, (conds, final) in enumerate(specs)
    ]
    attrs: dict[str, Any] = {"type": event_type}
    if tenant is not None:
        attrs["tenant"] = tenant
    expected: list[str] = []
    for r in routes:
        if r.match.test(attrs, lambda: (False, None)):
            expected.append(r.name)
            if r.final:
                break
    table = RouteTable(routes)
    ev = DecodedEvent(attrs, Mode.STRUCTURED)
    assert names(table.match(ev)) == expected
    assert names(table.match(ev)) == expected  # cached path
