"""Publish an example order, as a shop would: ``python examples/publish_order.py [EVENT.json]``.

Reads a CloudEvent in the JSON format (default ``examples/events/order-created.json``), gives it a
fresh ``id`` and ``time`` so every run is a new order, and publishes it with the client SDK to
``events.orders``, where ``cerouter run`` picks it up. ``CEROUTER_NATS_URL`` picks the server;
run from the directory of ``cerouter run`` and the client finds its server's token (in
``.cerouter/jetstream``, or ``CEROUTER_STORE_DIR``), or give one in ``CEROUTER_NATS_TOKEN``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cloudevents.core.v1.event import CloudEvent

from cerouter.binding import from_message
from cerouter.client import Client
from cerouter.errors import CerouterError

DEFAULT_EVENT = Path(__file__).parent / "events" / "order-created.json"


async def main(raw: bytes, url: str, token: str | None = None) -> None:
    """Publish the event ``raw`` (JSON format) as a new order."""
    template = from_message(None, raw)
    attributes = dict(template.get_attributes())
    attributes.update(id=str(uuid.uuid4()), time=datetime.now(UTC))
    event = CloudEvent(attributes, template.get_data())
    async with await Client.connect(url, name="example-shop", token=token) as client:
        await client.publish(event, "events.orders")
    print(f"published {event.get_type()} {event.get_id()} to events.orders")


if __name__ == "__main__":
    event_file = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_EVENT
    url = os.environ.get("CEROUTER_NATS_URL", "nats://127.0.0.1:4222")
    try:
        asyncio.run(main(event_file.read_bytes(), url, os.environ.get("CEROUTER_NATS_TOKEN")))
    except (OSError, CerouterError) as exc:
        sys.exit(f"publish_order: {exc}")
