"""Request-reply workers: a NATS request to the worker's subject gets a CloudEvent back.

(Replies relayed through the router's ``request`` destination are tested with the service.)
"""

from __future__ import annotations

import re

import pytest
from cloudevents.core.v1.event import CloudEvent

from cerouter.binding import Mode, from_message, to_binary, to_structured
from cerouter.client import Client, RemoteError
from cerouter.worker import ERROR_EVENT_TYPE, WorkerApp, current_delivery
from tests.test_worker_support import order_event, publisher, running, unique

pytestmark = pytest.mark.nats


def inventory_app(subject: str) -> WorkerApp:
    app = WorkerApp("inventory")

    @app.handler("com.example.inventory.reserve", queue="inventory", subject=subject)
    async def reserve(event: CloudEvent) -> CloudEvent:
        data = event.get_data()
        assert isinstance(data, dict)
        if data.get("sku") == "BROKEN":
            raise LookupError(f"sku {data['sku']} is not stocked")
        return CloudEvent(
            {
                "specversion": "1.0",
                "id": f"reservation-{event.get_id()}",
                "source": "/inventory",
                "type": "com.example.inventory.reserved",
                "subject": current_delivery().subject,
            },
            {"sku": data["sku"], "reserved": data["quantity"]},
        )

    @app.handler("com.example.inventory.silent", queue="inventory", subject=subject)
    async def silent(event: CloudEvent) -> None:
        return None

    return app


def reserve(sku: str, n: int = 1) -> CloudEvent:
    return order_event(n, "com.example.inventory.reserve", {"sku": sku, "quantity": 2})


@pytest.mark.parametrize("mode", [Mode.STRUCTURED, Mode.BINARY])
async def test_request_gets_a_cloudevent_reply_in_the_request_mode(
    nats_url: str, mode: Mode
) -> None:
    subject = f"inventory.{unique('reserve')}"
    async with (
        running(inventory_app(subject), nats_url) as (worker,),
        publisher(nats_url) as client,
    ):
        raw = (
            to_binary(reserve("BOOK-1"))
            if mode is Mode.BINARY
            else to_structured(reserve("BOOK-1"))
        )
        reply = await client.nc.request(subject, raw.payload, timeout=5, headers=raw.headers)
    if mode is Mode.BINARY:
        assert reply.headers is not None
        assert reply.headers["ce-type"] == "com.example.inventory.reserved"
    else:
        assert reply.headers == {"Content-Type": "application/cloudevents+json"}
    event = from_message(reply.headers, reply.data)
    assert event.get_type() == "com.example.inventory.reserved"
    assert event.get_id() == "reservation-o-1"
    assert event.get_subject() == subject
    assert event.get_data() == {"sku": "BOOK-1", "reserved": 2}
    assert worker.stats.replied == 1


async def test_client_request_round_trip(nats_url: str) -> None:
    subject = f"inventory.{unique('reserve')}"
    async with running(inventory_app(subject), nats_url), publisher(nats_url) as client:
        replies = [await client.request(reserve(f"SKU-{n}", n), subject) for n in range(5)]
    assert [r.get_data() for r in replies] == [{"sku": f"SKU-{n}", "reserved": 2} for n in range(5)]


async def test_handler_exception_gives_the_requester_an_error_event(nats_url: str) -> None:
    subject = f"inventory.{unique('reserve')}"
    async with (
        running(inventory_app(subject), nats_url) as (worker,),
        publisher(nats_url) as client,
    ):
        with pytest.raises(RemoteError, match="sku BROKEN is not stocked") as caught:
            await client.request(reserve("BROKEN", 9), subject)
        returned = await client.request(reserve("BROKEN", 10), subject, raise_on_error=False)
    error = caught.value.event
    assert error.get_type() == ERROR_EVENT_TYPE
    assert error.get_source() == "/cerouter/worker/inventory"
    assert error.get_data() == {
        "error": "LookupError: sku BROKEN is not stocked",
        "event": {"id": "o-9", "source": "/tests", "type": "com.example.inventory.reserve"},
    }
    assert returned.get_type() == ERROR_EVENT_TYPE
    assert worker.stats.failed == 2
    assert worker.stats.dead_lettered == 0, "the requester was told; nothing to dead-letter"


async def test_request_answered_without_an_event_or_handler_is_an_error_not_silence(
    nats_url: str,
) -> None:
    subject = f"inventory.{unique('reserve')}"
    async with running(inventory_app(subject), nats_url), publisher(nats_url) as client:
        with pytest.raises(RemoteError, match="returned no event for a request"):
            await client.request(order_event(1, "com.example.inventory.silent"), subject)
        with pytest.raises(RemoteError, match=re.escape("no handler for type 'com.example.other'")):
            await client.request(order_event(2, "com.example.other"), subject)


async def test_error_reply_to_garbage_is_a_cloudevent(nats_url: str) -> None:
    subject = f"inventory.{unique('reserve')}"
    async with running(inventory_app(subject), nats_url), publisher(nats_url) as client:
        reply = await client.nc.request(subject, b"[1, 2]", timeout=5)
    event = from_message(reply.headers, reply.data)
    assert event.get_type() == ERROR_EVENT_TYPE
    data = event.get_data()
    assert isinstance(data, dict)
    assert data["error"].startswith("not a CloudEvent: BindingError: structured mode")


async def test_client_request_accepts_a_plain_client(nats_url: str) -> None:
    subject = f"inventory.{unique('reserve')}"
    async with running(inventory_app(subject), nats_url), publisher(nats_url) as warm:
        client = Client(warm.nc, mode=Mode.BINARY)
        reply = await client.request(reserve("MUG"), subject)
    assert reply.get_type() == "com.example.inventory.reserved"
