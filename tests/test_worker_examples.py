"""The example workers consume exactly what routes.yaml sends them, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from nats.aio.client import Client as Nats

from cerouter.binding import from_message
from cerouter.cli.worker import load_app
from cerouter.config.load import load_config
from cerouter.worker import WorkerApp
from tests.test_worker_support import eventually, publisher, running, workqueue

pytestmark = pytest.mark.nats

REPO = Path(__file__).resolve().parents[1]
ORDER = (REPO / "examples/events/order-created.json").read_bytes()


def example(name: str) -> WorkerApp:
    return load_app(f"{REPO / 'examples' / name}:app")


def test_examples_match_the_destinations_of_routes_yaml() -> None:
    destinations = [d for r in load_config(REPO / "routes.yaml").routes for d in r.to]
    (billing,) = example("billing_worker.py").queues()
    (inventory,) = example("inventory_responder.py").queues()
    assert any(
        d.kind == "queue" and d.queue == billing.name and d.durable == billing.durable
        and str(d.subject_template) == billing.subject
        for d in destinations
    ), "routes.yaml has no durable queue destination the billing worker consumes"  # fmt: skip
    assert any(
        d.kind == "request" and str(d.subject_template) == inventory.subject for d in destinations
    ), "routes.yaml has no request destination the inventory responder answers"


async def test_billing_worker_bills_an_order_from_its_durable_queue(
    nc: Nats, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    app = example("billing_worker.py")
    await workqueue(nc, "BILLING", "work.billing")  # as routes.yaml declares it
    async with running(app, nats_url) as (worker,):
        # What the router does for {queue: billing, durable: true}: store the event as received.
        await nc.jetstream().publish(
            "work.billing", ORDER, headers={"Content-Type": "application/cloudevents+json"}
        )
        await eventually(lambda: worker.stats.handled == 1, what="the order billed")
    out = capsys.readouterr().out
    assert "billed order 3f1c9a52-8d4e-4b8a-a1f0-6c2d7e9b5a13: 28.50 EUR to cust-1042" in out


async def test_inventory_responder_replies_with_a_reservation(nats_url: str) -> None:
    app = example("inventory_responder.py")
    async with running(app, nats_url), publisher(nats_url) as client:
        reply = await client.nc.request(
            "inventory.reserve",
            ORDER,
            timeout=5,
            headers={"Content-Type": "application/cloudevents+json"},
        )
    event = from_message(reply.headers, reply.data)
    assert event.get_type() == "com.example.inventory.reserved"
    assert event.get_subject() == "order/3f1c9a52-8d4e-4b8a-a1f0-6c2d7e9b5a13"
    data = event.get_data()
    assert isinstance(data, dict)
    assert data["reservations"] == [
        {"sku": "BOOK-0042", "quantity": 1},
        {"sku": "MUG-0007", "quantity": 2},
    ]
