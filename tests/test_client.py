"""The client SDK against a real nats-server: bytes on the wire, errors, JetStream dedupe."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
from nats.aio.client import Client as Nats
from nats.aio.msg import Msg

from cerouter.binding import Mode, from_message
from cerouter.client import Client, dedupe_id
from cerouter.errors import DeliveryError, ServerError
from cerouter.nats.connection import full_flush
from tests.test_worker_support import order_event, unique, workqueue

pytestmark = pytest.mark.nats


async def capture(nc: Nats, subject: str) -> asyncio.Queue[Msg]:
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await queue.put(msg)

    await nc.subscribe(subject, cb=on_msg)
    await full_flush(nc)
    return queue


async def test_publish_structured_and_binary(nc: Nats, nats_url: str) -> None:
    subject = unique("client.pub.")
    received = await capture(nc, subject)
    async with await Client.connect(nats_url) as client:
        await client.publish(order_event(1), subject)
        await client.publish(order_event(2), subject, mode=Mode.BINARY, headers={"x-trace": "t"})
    structured = await asyncio.wait_for(received.get(), 10)
    binary = await asyncio.wait_for(received.get(), 10)
    assert structured.headers == {"Content-Type": "application/cloudevents+json"}
    assert orjson.loads(structured.data)["id"] == "o-1"
    assert binary.headers is not None
    assert binary.headers["ce-id"] == "o-2"
    assert binary.headers["x-trace"] == "t"
    assert orjson.loads(binary.data) == {"n": 2}
    assert from_message(binary.headers, binary.data).get_data() == {"n": 2}


async def test_request_without_responders_or_reply_is_a_delivery_error(
    nc: Nats, nats_url: str
) -> None:
    subject = unique("client.req.")
    silent = await capture(nc, f"{subject}.silent")
    async with await Client.connect(nats_url) as client:
        with pytest.raises(DeliveryError, match="no responders"):
            await client.request(order_event(1), f"{subject}.nobody", timeout=2)
        with pytest.raises(DeliveryError, match=r"no reply within 0\.3s"):
            await client.request(order_event(2), f"{subject}.silent", timeout=0.3)
    assert silent.qsize() == 1


async def test_publish_js_deduplicates_by_source_and_id(nc: Nats) -> None:
    stream, subject = unique("CLIENT"), unique("client.js.")
    await workqueue(nc, stream, subject)
    client = Client(nc)
    first = await client.publish_js(order_event(1), subject)
    again = await client.publish_js(order_event(1, data={"n": "changed"}), subject)
    other_source = await client.publish_js(order_event(1, source="/elsewhere"), subject)
    explicit = await client.publish_js(order_event(1), subject, msg_id="custom-1", stream=stream)
    assert first.stream == stream
    assert not first.duplicate
    assert again.duplicate
    assert not other_source.duplicate
    assert not explicit.duplicate
    info = await nc.jetstream().stream_info(stream)
    assert info.state.messages == 3
    stored = await nc.jetstream().get_msg(stream, first.seq)
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == dedupe_id(order_event(1))


async def test_publish_js_errors(nc: Nats) -> None:
    client = Client(nc)
    with pytest.raises(DeliveryError, match="no JetStream stream captures"):
        await client.publish_js(order_event(1), unique("nostream."))
    stream, subject = unique("CLIENT"), unique("client.js.")
    await workqueue(nc, stream, subject)
    with pytest.raises(DeliveryError, match="JetStream publish"):
        await client.publish_js(order_event(1), subject, stream="NOT_THAT_ONE")


async def test_publish_js_many_pipelines_and_is_safe_to_resend(nc: Nats) -> None:
    stream, subject = unique("CLIENT"), unique("client.many.")
    await workqueue(nc, stream, subject)
    client = Client(nc, mode=Mode.BINARY)
    batch = [(order_event(n), subject) for n in range(500)]
    acks = await client.publish_js_many(batch)
    assert [a.seq for a in acks] == list(range(1, 501))
    again = await client.publish_js_many(batch)
    assert all(a.duplicate for a in again)
    info = await nc.jetstream().stream_info(stream)
    assert info.state.messages == 500


async def test_publish_js_many_reports_events_not_stored(nc: Nats) -> None:
    stream, subject = unique("CLIENT"), unique("client.many.")
    await workqueue(nc, stream, subject)
    batch = [(order_event(1), subject), (order_event(2), unique("nostream."))]
    with pytest.raises(DeliveryError, match="1 of 2 events not stored"):
        await Client(nc).publish_js_many(batch, timeout=5)


async def test_connect_failure_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServerError, match=f"cannot connect to nats://127.0.0.1:{port}"):
        await Client.connect(f"nats://127.0.0.1:{port}", connect_timeout=0.5)


async def test_close_keeps_a_borrowed_connection_open(nc: Nats) -> None:
    client = Client(nc)
    await client.publish(order_event(1), unique("client.borrowed."))
    await client.close()
    assert nc.is_connected
