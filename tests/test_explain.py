"""``explain``: per-route verdicts with the deciding condition, and the router's own outcome."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cerouter.config.load import load_config
from cerouter.ops.explain import Explanation, dumps, explain_payload
from cerouter.pipeline import Pipeline
from cerouter.validation.registry import SchemaRegistry

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "examples" / "events"


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    config = load_config(ROOT / "routes.yaml", environ={})
    return Pipeline(config, SchemaRegistry.load(config.schemas))


def explain_file(pipeline: Pipeline, name: str) -> Explanation:
    path = EVENTS / name
    return explain_payload(pipeline, path.read_bytes(), source=str(path))


def explain_event(pipeline: Pipeline, event: dict[str, Any]) -> Explanation:
    return explain_payload(pipeline, json.dumps(event).encode())


def statuses(x: Explanation) -> dict[str, str]:
    return {d.route.name: d.status for d in x.decisions}


def deliveries(x: Explanation) -> list[tuple[str | None, str, str, str | None]]:
    return [
        (d.route, d.destination.kind, d.destination.subject,
         None if d.destination.mode is None else str(d.destination.mode))
        for d in x.deliveries
    ]  # fmt: skip


# The table: example event -> (outcome, matched routes, deliveries)
TABLE = {
    "order-created.json": (
        "routed",
        ["audit", "orders", "bill-new-orders", "eur-orders"],
        [
            ("audit", "stream", "audit.com_example_order_created", "structured"),
            ("orders", "stream", "orders.com_example_order_created", "binary"),
            ("bill-new-orders", "queue", "work.billing", None),
            ("bill-new-orders", "request", "inventory.reserve", None),
            ("eur-orders", "subject", "reports.eur.orders", None),
        ],
    ),
    "order-paid.json": (
        "routed",
        ["audit", "orders", "card-payments"],
        [
            ("audit", "stream", "audit.com_example_order_paid", "structured"),
            ("orders", "stream", "orders.com_example_order_paid", "binary"),
            (
                "card-payments",
                "subject",
                "payments.card.order_3f1c9a52-8d4e-4b8a-a1f0-6c2d7e9b5a13",
                None,
            ),
        ],
    ),
    "order-shipped.json": (
        "routed",
        ["audit", "orders", "shipping-notices"],
        [
            ("audit", "stream", "audit.com_example_order_shipped", "structured"),
            ("orders", "stream", "orders.com_example_order_shipped", "binary"),
            (
                "shipping-notices",
                "subject",
                "notify.shipping.https___shop_example_com_warehouse_ams-1",
                None,
            ),
        ],
    ),
    "payment-failed.json": (
        "routed",
        ["audit", "payment-alerts"],
        [
            ("audit", "stream", "audit.com_example_payment_failed", "structured"),
            ("payment-alerts", "subject", "alerts.payments", "structured"),
        ],
    ),
    "order-created-invalid.json": (
        "deadletter",
        ["audit", "orders", "bill-new-orders"],
        [(None, "stream", "deadletter.schema", None)],
    ),
    "order-paid-invalid.json": (
        "deadletter",
        ["audit", "orders"],
        [(None, "stream", "deadletter.envelope", None)],
    ),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_example_events(pipeline: Pipeline, name: str) -> None:
    outcome, matched, expected = TABLE[name]
    x = explain_file(pipeline, name)
    assert x.outcome == outcome
    assert [n for n, s in statuses(x).items() if s == "matched"] == matched
    assert deliveries(x) == expected
    json.loads(dumps(x))  # the machine form is JSON


def test_the_deciding_condition_is_named(pipeline: Pipeline) -> None:
    x = explain_file(pipeline, "payment-failed.json")
    reasons = {d.route.name: (d.status, d.reason) for d in x.decisions}
    assert reasons["orders"] == (
        "not matched",
        'prefix type: "com.example.order." ≠ "com.example.payment.failed"',
    )
    assert reasons["payment-alerts"] == (
        "matched",
        'exact type: "com.example.payment.failed" = "com.example.payment.failed" and '
        'sql "severitynumber >= 13" is TRUE',
    )
    assert reasons["payment-retries"] == ("skipped", "after final route 'payment-alerts'")
    eur = {d.route.name: d.reason for d in explain_file(pipeline, "order-paid.json").decisions}
    assert eur["eur-orders"] == 'exact type: "com.example.order.created" ≠ "com.example.order.paid"'


def test_cesql_reason_names_the_false_subexpression(pipeline: Pipeline) -> None:
    event = json.loads((EVENTS / "payment-failed.json").read_text())
    event["severitynumber"] = 9
    x = explain_event(pipeline, event)
    alert = next(d for d in x.decisions if d.route.name == "payment-alerts")
    assert alert.status == "not matched"
    assert alert.reason.startswith("sql: ")
    assert "severitynumber" in alert.reason
    assert statuses(x)["payment-retries"] == "matched"
    assert ("payment-retries", "queue", "work.payment-retry", None) in deliveries(x)


def test_unrouted_events_are_dead_lettered(pipeline: Pipeline) -> None:
    x = explain_event(
        pipeline,
        {"specversion": "1.0", "id": "1", "source": "/x", "type": "com.example.cart.abandoned"},
    )
    assert x.outcome == "deadletter"
    assert x.reason == "unrouted"
    assert set(statuses(x).values()) == {"not matched"}
    assert deliveries(x) == [(None, "stream", "deadletter.unrouted", None)]
    assert "outcome: dead-lettered (reason: unrouted)" in x.to_text()


def test_a_message_that_is_no_cloudevent(pipeline: Pipeline) -> None:
    x = explain_payload(pipeline, b"[1, 2]", source="bad.json")
    assert x.event is None
    assert x.outcome == "deadletter"
    assert x.reason == "binding"
    assert deliveries(x) == [(None, "stream", "deadletter.binding", None)]
    assert x.to_text().startswith("event: bad.json: not a CloudEvent: structured mode")


def test_route_schema_failure_dead_letters_that_route_only(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "strict.json").write_text(
        '{"type": "object", "required": ["vip"]}', encoding="utf-8"
    )
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        textwrap.dedent(
            """
            version: 1
            routes:
              - {name: all, match: {}, to: {subject: all}}
              - {name: vip, match: {type: t}, schema: strict.json, to: {subject: vip}}
            unrouted: drop
            """
        ),
        encoding="utf-8",
    )
    config = load_config(routes)
    pipe = Pipeline(config, SchemaRegistry.load(config.schemas))
    x = explain_event(pipe, {"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
                             "data": {"vip": False}})  # fmt: skip
    assert x.outcome == "routed"
    assert deliveries(x) == [("all", "subject", "all", None), ("vip", "subject", "vip", None)]
    x = explain_event(pipe, {"specversion": "1.0", "id": "1", "source": "/s", "type": "t",
                             "data": {}})  # fmt: skip
    assert deliveries(x) == [
        ("all", "subject", "all", None),
        ("vip", "stream", "deadletter.schema", None),
    ]
    vip = next(d for d in x.decisions if d.route.name == "vip")
    assert vip.schema_report is not None
    assert not vip.schema_report.ok
    assert "vip (dead-letter): stream deadletter.schema" in x.to_text()
    drop = load_config(routes)
    x = explain_event(
        Pipeline(drop, None), {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    )
    assert x.outcome == "routed"  # the catch-all route still fires


def test_unrouted_drop(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    (tmp_path / "schemas").mkdir()
    routes.write_text("version: 1\nroutes: []\nunrouted: drop\n", encoding="utf-8")
    x = explain_event(
        Pipeline(load_config(routes), None),
        {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"},
    )
    assert (x.outcome, x.deliveries) == ("dropped", ())
    assert x.to_text().endswith("outcome: dropped (no route matched; unrouted: drop)")


def test_text_rendering(pipeline: Pipeline) -> None:
    text = explain_file(pipeline, "order-created.json").to_text()
    lines = text.splitlines()
    assert lines[0].startswith("event: ")
    assert "type=com.example.order.created" in lines[0]
    assert lines[1] == "envelope: ok"
    assert lines[2] == "data: ok (schema order-created.json)"
    assert lines[3] == "routes:"
    assert "  1. audit" in lines[4]
    assert "destinations:" in lines
    assert "  orders: stream orders.com_example_order_created  mode=binary  stream=ORDERS" in lines
    assert lines[-1] == "outcome: routed to 5 destination(s)"
    invalid = explain_file(pipeline, "order-created-invalid.json").to_text()
    assert "data: FAILED (schema order-created.json)" in invalid
    assert "routes: (for information: the event is dead-lettered before routing)" in invalid


@pytest.mark.parametrize("name", sorted(TABLE))
def test_verdicts_agree_with_the_route_table(pipeline: Pipeline, name: str) -> None:
    x = explain_file(pipeline, name)
    assert x.event is not None
    matched = [d.route.name for d in x.decisions if d.status == "matched"]
    assert matched == [m.route.name for m in pipeline.table.match(x.event)]
