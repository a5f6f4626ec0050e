"""Workers behind the router: a request relayed by the router's `request` destination is answered
by a worker, and a durable queue filled by the router is worked off by a group of workers."""

from __future__ import annotations

import uuid
from pathlib import Path

import nats
import pytest
from cloudevents.core.v1.event import CloudEvent

from cerouter.client import Client
from cerouter.nats.embedded import EmbeddedServer
from cerouter.worker import WorkerApp
from tests.routerkit import eventually, running_router, write_routes

pytestmark = pytest.mark.nats

ROUTES = """
ingress:
  core: {subjects: [in.>], queue: routers}
streams:
  - {name: BILLING, subjects: [work.billing], retention: workqueue}
routes:
  - name: reserve
    match: {type: com.example.order.created}
    to: {request: inventory.reserve, timeout: 2s}
  - name: bill
    match: {type: com.example.order.paid}
    to: {queue: billing, durable: true}
"""


def order(type_: str, n: int = 0) -> CloudEvent:
    return CloudEvent(
        {"id": f"o-{n}-{uuid.uuid4()}", "source": "/shop", "type": type_},
        {"orderId": f"o-{n}", "items": [{"sku": "a", "quantity": 2}]},
    )


async def test_a_request_through_the_router_is_answered_by_a_worker(
    fresh_server: EmbeddedServer, tmp_path: Path
) -> None:
    from examples.inventory_responder import app as inventory

    routes = write_routes(tmp_path, ROUTES)
    worker_nc = await nats.connect(fresh_server.url)
    try:
        # Entered left to right: the client connects after the router and the worker subscribed.
        async with (
            inventory.run(worker_nc),
            running_router(fresh_server.url, routes),
            await Client.connect(fresh_server.url) as client,
        ):
            reply = await client.request(order("com.example.order.created"), "in.orders", timeout=5)
    finally:
        await worker_nc.close()
    assert reply.get_type() == "com.example.inventory.reserved"
    data = reply.get_data()
    assert isinstance(data, dict)
    assert data["reservations"] == [{"sku": "a", "quantity": 2}]


async def test_router_fills_a_durable_queue_that_two_workers_share(
    fresh_server: EmbeddedServer, tmp_path: Path
) -> None:
    routes = write_routes(tmp_path, ROUTES)
    seen: list[tuple[str, str]] = []

    def billing_app(name: str) -> WorkerApp:
        app = WorkerApp(name)

        @app.handler("com.example.order.paid", queue="billing", durable=True)
        async def bill(event: CloudEvent) -> None:
            seen.append((name, event.get_id()))

        return app

    one, two = await nats.connect(fresh_server.url), await nats.connect(fresh_server.url)
    try:
        async with (
            running_router(fresh_server.url, routes),
            billing_app("a").run(one),
            billing_app("b").run(two),
        ):
            async with await Client.connect(fresh_server.url) as client:
                sent = [order("com.example.order.paid", i) for i in range(200)]
                for event in sent:
                    await client.publish(event, "in.orders")
                await client.flush()

            async def all_billed() -> bool:
                return len(seen) >= len(sent)

            await eventually(all_billed, what="200 orders billed")
    finally:
        await one.close()
        await two.close()
    assert sorted(i for _, i in seen) == sorted(e.get_id() for e in sent)  # each once
    assert {name for name, _ in seen} == {"a", "b"}  # both workers took a share
