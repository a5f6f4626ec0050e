"""The inventory service of routes.yaml: answers ``inventory.reserve`` requests with a CloudEvent.

routes.yaml forwards every ``com.example.order.created`` event as a NATS request to
``inventory.reserve`` (``{request: inventory.reserve, timeout: 2s}``) and relays the reply. This
responder returns a ``com.example.inventory.reserved`` event listing what it reserved; a handler
exception would make the requester receive an ``io.cerouter.error`` event instead of a timeout.
Run it next to ``cerouter run``::

    cerouter worker examples/inventory_responder.py:app
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

from cloudevents.core.v1.event import CloudEvent

from cerouter.timestamps import format_timestamp
from cerouter.worker import WorkerApp

app = WorkerApp("inventory")

HOLD = timedelta(minutes=15)  # how long reserved stock is held for the order


@app.handler("com.example.order.created", queue="inventory", subject="inventory.reserve")
async def reserve(event: CloudEvent) -> CloudEvent:
    """Reserve every item of the order; reply with what was reserved and until when."""
    order = event.get_data()
    if not isinstance(order, dict):
        raise ValueError("order data is not a JSON object")
    items = [{"sku": item["sku"], "quantity": item["quantity"]} for item in order["items"]]
    now = datetime.now(UTC)
    print(f"reserved {len(items)} item(s) for order {order['orderId']}", flush=True)
    return CloudEvent(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/inventory",
            "type": "com.example.inventory.reserved",
            "subject": f"order/{order['orderId']}",
            "time": now,
            "datacontenttype": "application/json",
        },
        {
            "orderId": order["orderId"],
            "reservations": items,
            "heldUntil": format_timestamp(now + HOLD),
        },
    )


if __name__ == "__main__":
    asyncio.run(app.serve([os.environ.get("CEROUTER_NATS_URL", "nats://127.0.0.1:4222")]))
