"""The billing workers of routes.yaml: the durable ``billing`` queue, one line per new order.

routes.yaml sends every ``com.example.order.created`` event to ``{queue: billing, durable:
true}``: the router stores it on ``work.billing`` in the BILLING workqueue stream, and the workers
share the durable consumer ``billing``. Run one (or several, in more terminals) next to
``cerouter run``::

    cerouter worker examples/billing_worker.py:app
    python examples/billing_worker.py            # the same, without the CLI

An order that cannot be billed raises: JetStream redelivers it after 1 s, then 2 s, 5 s, 10 s,
and after the fifth failure it goes to the DEADLETTER stream with the reason.
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal

from cloudevents.core.v1.event import CloudEvent

from cerouter.worker import WorkerApp, current_delivery

app = WorkerApp("billing")


@app.handler("com.example.order.created", queue="billing", durable=True, max_deliver=5)
async def bill(event: CloudEvent) -> None:
    """Bill one order (here: print what would be charged)."""
    order = event.get_data()
    if not isinstance(order, dict) or "total" not in order:
        raise ValueError("order data has no total")
    total = order["total"]
    amount = Decimal(str(total["amount"])).quantize(Decimal("0.01"))
    customer = order.get("customer", {}).get("id", "?")
    attempt = current_delivery().attempt
    retry = f" (attempt {attempt})" if attempt > 1 else ""
    line = f"billed order {order['orderId']}: {amount} {total['currency']} to {customer}{retry}"
    print(line, flush=True)


if __name__ == "__main__":
    asyncio.run(app.serve([os.environ.get("CEROUTER_NATS_URL", "nats://127.0.0.1:4222")]))
