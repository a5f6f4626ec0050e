"""POST /events: every content mode in, the same pipeline, and a status the producer can act on.

Real nats-server, real uvicorn on loopback, httpx as the producer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.binding import decode
from cerouter.delivery.deadletter import parse_deadletter
from cerouter.service.serve import Service
from tests.routerkit import (
    Inbox,
    event,
    eventually,
    running_gateway,
    stream_count,
    stream_messages,
    write_routes,
)

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress: {core: {subjects: [in.>]}}
streams:
  - {name: OUT, subjects: [out.>], duplicate_window: 5m}
  - {name: GONE, subjects: [gone.>]}
schemas:
  types: {com.example.thing: thing.json}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: things.out}
  - name: stored
    match: {type: com.example.stored}
    to: {stream: OUT, subject: out.stored}
  - name: reencoded
    match: {type: com.example.reencoded}
    to: {subject: reencoded.out, mode: structured}
  - name: ask
    match: {type: com.example.question}
    to: {request: answers.here, timeout: 2s}
  - name: lost
    match: {type: com.example.lost}
    to: {stream: GONE, subject: gone.x}
http:
  listen: 127.0.0.1:0
  limits: {max_body: 2KiB}
  batch: {max_events: 3}
  webhook: {allowed_origins: [good.example]}
"""

STRUCTURED = {"content-type": "application/cloudevents+json"}


def binary_headers(
    type_: str = "com.example.thing", id_: str = "1", **extra: str
) -> dict[str, str]:
    """HTTP binary-mode headers of an event."""
    return {
        "ce-specversion": "1.0",
        "ce-id": id_,
        "ce-source": "/test",
        "ce-type": type_,
        "content-type": "application/json",
        **extra,
    }


@pytest.fixture
async def gateway(nats_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    async with running_gateway(nats_url, write_routes(tmp_path, ROUTES)) as service:
        yield service


@pytest.fixture
async def http(gateway: Service) -> AsyncIterator[httpx.AsyncClient]:
    assert gateway.gateway is not None
    async with httpx.AsyncClient(base_url=gateway.gateway.url, timeout=15.0) as client:
        yield client


async def post(http: httpx.AsyncClient, body: dict[str, Any] | bytes, **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = kw.pop("headers", STRUCTURED)
    return await http.post("/events", content=content, headers=headers, **kw)


async def deadletters(nc: Client, count: int = 1) -> list[Msg]:
    return await stream_messages(nc, "DEADLETTER", count=count)


# --------------------------------------------------------------------------- modes in


async def test_structured_event_is_routed_and_answered_202(
    http: httpx.AsyncClient, nc: Client
) -> None:
    inbox = await Inbox.on(nc, "things.out")
    body = event(data={"n": 1})
    response = await post(http, body)
    assert response.status_code == 202, response.text
    assert response.json() == {"outcome": "routed", "routes": ["things"]}
    (msg,) = await inbox.wait(1)
    assert orjson.loads(msg.data) == body  # the same pipeline, the same forward-unchanged rule


async def test_binary_event_keeps_its_mode_and_content_type(
    http: httpx.AsyncClient, nc: Client
) -> None:
    inbox = await Inbox.on(nc, "things.out")
    headers = binary_headers(**{"ce-subject": "caf%C3%A9%20bar"})
    response = await post(http, b'{"n": 2}', headers=headers)
    assert response.status_code == 202, response.text
    (msg,) = await inbox.wait(1)
    forwarded = decode(msg.headers, msg.data)
    assert forwarded.attributes["subject"] == "café bar"  # percent-decoded by the NATS decoder
    assert forwarded.datacontenttype == "application/json"  # Content-Type is datacontenttype
    assert orjson.loads(msg.data) == {"n": 2}


async def test_binary_quoted_values_are_unquoted(http: httpx.AsyncClient, nc: Client) -> None:
    inbox = await Inbox.on(nc, "reencoded.out")
    headers = binary_headers("com.example.reencoded", **{"ce-subject": '"a \\"b\\""'})
    response = await post(http, b"{}", headers=headers)
    assert response.status_code == 202, response.text
    (msg,) = await inbox.wait(1)
    assert orjson.loads(msg.data)["subject"] == 'a "b"'


async def test_invalid_percent_encoding_is_400_and_dead_lettered(
    http: httpx.AsyncClient, nc: Client
) -> None:
    headers = binary_headers(**{"ce-source": "/x%C0%A0"})
    response = await post(http, b"{}", headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["reason"] == "binding"
    assert "not valid UTF-8" in problem["detail"]
    (letter,) = await deadletters(nc)
    assert parse_deadletter(letter.headers, letter.data).reason == "binding"


async def test_repeated_ce_header_is_400(http: httpx.AsyncClient) -> None:
    headers = [*binary_headers().items(), ("ce-type", "com.example.other")]
    response = await http.post("/events", content=b"{}", headers=headers)
    assert response.status_code == 400
    assert "more than once" in response.json()["detail"]


# --------------------------------------------------------------------------- rejections


async def test_schema_failure_is_400_with_a_json_pointer_per_problem(
    http: httpx.AsyncClient, nc: Client
) -> None:
    response = await post(http, event(data={"n": -1}))
    assert response.status_code == 400
    problem = response.json()
    assert problem["reason"] == "schema"
    assert problem["status"] == 400
    assert [p["pointer"] for p in problem["problems"]] == ["/data/n"]
    (letter,) = await deadletters(nc)
    assert parse_deadletter(letter.headers, letter.data).reason == "schema"


async def test_envelope_failures_name_each_attribute(http: httpx.AsyncClient) -> None:
    body = {"specversion": "1.0", "source": "/test", "type": "com.example.thing", "time": "soon"}
    response = await post(http, body)
    assert response.status_code == 400
    pointers = {p["pointer"] for p in response.json()["problems"]}
    assert {"/id", "/time"} <= pointers


async def test_unrouted_is_404_and_says_it_was_dead_lettered(
    http: httpx.AsyncClient, nc: Client
) -> None:
    response = await post(http, event("com.example.nobody"))
    assert response.status_code == 404
    assert response.json()["reason"] == "unrouted"
    assert "dead-lettered" in response.json()["detail"]
    (letter,) = await deadletters(nc)
    assert parse_deadletter(letter.headers, letter.data).reason == "unrouted"


async def test_unrouted_drop_policy_is_202_dropped(nats_url: str, tmp_path: Path) -> None:
    routes = write_routes(tmp_path, ROUTES + "unrouted: drop\n")
    async with running_gateway(nats_url, routes) as service:
        assert service.gateway is not None
        async with httpx.AsyncClient(base_url=service.gateway.url) as client:
            response = await post(client, event("com.example.nobody"))
    assert response.status_code == 202
    assert response.json()["outcome"] == "dropped"


async def test_over_the_body_limit_is_413(http: httpx.AsyncClient) -> None:
    response = await post(http, event(data={"n": 1, "pad": "x" * 4096}))
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


async def test_chunked_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    response = await http.post("/events", content=chunks(), headers=STRUCTURED)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"content-type": "text/plain"}, b"hello"),
        ({}, b"{}"),
        ({"content-type": "application/cloudevents+xml"}, b"<event/>"),
    ],
)
async def test_not_a_cloudevent_is_415(
    http: httpx.AsyncClient, headers: dict[str, str], body: bytes
) -> None:
    response = await http.post("/events", content=body, headers=headers)
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


async def test_destination_that_does_not_acknowledge_is_503_with_retry_after(
    gateway: Service, http: httpx.AsyncClient, nc: Client
) -> None:
    await nc.jetstream().delete_stream("GONE")
    response = await post(http, event("com.example.lost"))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["failures"][0]["route"] == "lost"
    # A retry is the producer's: nothing was dead-lettered.
    assert await stream_count(nc, "DEADLETTER") == 0


# --------------------------------------------------------------------------- idempotence


async def test_retried_post_does_not_duplicate_in_a_stream(
    http: httpx.AsyncClient, nc: Client
) -> None:
    body = event("com.example.stored", id_="retry-1", data={"n": 1})
    first = await post(http, body)
    second = await post(http, body)
    assert (first.status_code, second.status_code) == (202, 202)
    assert await stream_count(nc, "OUT") == 1


async def test_reused_id_with_other_content_is_409(http: httpx.AsyncClient, nc: Client) -> None:
    assert (await post(http, event("com.example.stored", id_="c", data={"n": 1}))).is_success
    response = await post(http, event("com.example.stored", id_="c", data={"n": 2}))
    assert response.status_code == 409
    assert response.json()["reason"] == "conflict"
    assert await stream_count(nc, "OUT") == 1


# --------------------------------------------------------------------------- request routes


CE_JSON = {"Content-Type": "application/cloudevents+json"}


async def responder(nc: Client, answer: bytes, headers: dict[str, str]) -> None:
    async def reply(msg: Msg) -> None:
        await nc.publish(msg.reply, answer, headers=headers)

    await nc.subscribe("answers.here", cb=reply)
    await nc.flush()


ANSWER = event("com.example.answer", id_="a-1", data={"ok": True})


async def test_request_route_answers_200_with_the_reply_event(
    http: httpx.AsyncClient, nc: Client
) -> None:
    await responder(nc, orjson.dumps(ANSWER), CE_JSON)
    response = await post(http, event("com.example.question"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/cloudevents+json"
    assert response.json() == ANSWER


async def test_binary_request_gets_a_binary_reply(http: httpx.AsyncClient, nc: Client) -> None:
    await responder(nc, orjson.dumps(ANSWER), CE_JSON)
    response = await post(http, b"{}", headers=binary_headers("com.example.question"))
    assert response.status_code == 200, response.text
    assert response.headers["ce-id"] == "a-1"
    assert response.headers["ce-type"] == "com.example.answer"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"ok": True}


async def test_request_route_without_responder_is_503(http: httpx.AsyncClient) -> None:
    response = await post(http, event("com.example.question"))
    assert response.status_code == 503
    assert "no responders" in response.json()["failures"][0]["detail"]


# --------------------------------------------------------------------------- batch


async def test_batch_answers_each_entry(http: httpx.AsyncClient, nc: Client) -> None:
    inbox = await Inbox.on(nc, "things.out")
    batch = [event(id_="b1", data={"n": 1}), event(id_="b2", data={"n": -5}), "not an event"]
    response = await http.post(
        "/events",
        content=orjson.dumps(batch),
        headers={"content-type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 207
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == [202, 400, 400]
    await inbox.wait(1)
    await eventually(lambda: _count(nc, "DEADLETTER", 2), what="both bad entries dead-lettered")


async def _count(nc: Client, stream: str, n: int) -> bool:
    return await stream_count(nc, stream) >= n


async def test_batch_over_max_events_is_413(http: httpx.AsyncClient) -> None:
    batch = [event(id_=str(i), data={"n": i}) for i in range(4)]
    response = await http.post(
        "/events",
        content=orjson.dumps(batch),
        headers={"content-type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 413
    assert "limit of 3" in response.json()["detail"]


async def test_batch_that_is_not_an_array_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/events",
        content=b'{"a": 1}',
        headers={"content-type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 400


async def test_batch_mode_is_opt_in(nats_url: str, tmp_path: Path) -> None:
    routes = write_routes(tmp_path, ROUTES.replace("  batch: {max_events: 3}\n", ""))
    async with running_gateway(nats_url, routes) as service:
        assert service.gateway is not None
        async with httpx.AsyncClient(base_url=service.gateway.url) as client:
            response = await client.post(
                "/events",
                content=b"[]",
                headers={"content-type": "application/cloudevents-batch+json"},
            )
    assert response.status_code == 415
    assert "not enabled" in response.json()["detail"]


# --------------------------------------------------------------------------- handshake, probes


async def test_webhook_handshake_allows_a_listed_origin(http: httpx.AsyncClient) -> None:
    response = await http.options("/events", headers={"WebHook-Request-Origin": "good.example"})
    assert response.status_code == 200
    assert response.headers["webhook-allowed-origin"] == "good.example"


async def test_webhook_handshake_refuses_another_origin(http: httpx.AsyncClient) -> None:
    response = await http.options("/events", headers={"WebHook-Request-Origin": "evil.example"})
    assert response.status_code == 403


async def test_probes(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).status_code == 200
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"router": True, "nats": True, "accepting": True}


# --------------------------------------------------------------------------- shutdown


async def test_in_flight_request_gets_its_answer_during_shutdown(
    nats_url: str, tmp_path: Path, nc: Client
) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def slow(msg: Msg) -> None:
        arrived.set()
        await release.wait()
        await nc.publish(msg.reply, orjson.dumps(ANSWER), headers=CE_JSON)

    await nc.subscribe("answers.here", cb=slow)
    await nc.flush()
    routes = write_routes(tmp_path, ROUTES)
    async with running_gateway(nats_url, routes) as service:
        assert service.gateway is not None
        client = httpx.AsyncClient(base_url=service.gateway.url, timeout=15.0)
        request = asyncio.ensure_future(post(client, event("com.example.question")))
        await asyncio.wait_for(arrived.wait(), 10)
        stopping = service.gateway.ctx.stopping

        async def release_once_stopping() -> None:
            await stopping.wait()
            release.set()

        releaser = asyncio.ensure_future(release_once_stopping())
        # Leaving the block stops the service while the request is still waiting for its reply.
    await releaser
    response = await asyncio.wait_for(request, 15)
    await client.aclose()
    assert response.status_code == 200


async def test_refused_for_its_size_is_502_and_dead_lettered(
    nats_url: str, tmp_path: Path, nc: Client
) -> None:
    # An extension written as a ce- header in binary mode is over JetStream's 64 KiB header
    # limit: no retry can change that, so it is dead-lettered (too-large), not a 503.
    routes = write_routes(
        tmp_path,
        """
streams:
  - {name: OUT, subjects: [out.>]}
routes:
  - name: binary
    match: {type: com.example.big}
    to: {stream: OUT, subject: out.big, mode: binary}
http:
  listen: 127.0.0.1:0
  limits: {max_body: 256KiB}
""",
    )
    async with running_gateway(nats_url, routes) as service:
        assert service.gateway is not None
        async with httpx.AsyncClient(base_url=service.gateway.url, timeout=15) as client:
            response = await post(client, event("com.example.big", pad="x" * 70_000))
        assert response.status_code == 502, response.text
        assert response.json()["reason"] == "too-large"
        (letter,) = await deadletters(nc)
        assert parse_deadletter(letter.headers, letter.data).reason == "too-large"
        assert await stream_count(nc, "OUT") == 0
