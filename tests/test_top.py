"""The router's stats over NATS (the micro service ``cerouter``), ``cerouter top --once``, and
the live page's HTTP endpoints without a browser (``tests/test_gateway_ui.py`` has the browser).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import aconnect_sse
from nats.aio.client import Client

from cerouter.gateway.auth import Authenticator, Principal
from cerouter.gateway.principal import ANONYMOUS
from tests.helpers import run_cli
from tests.routerkit import event, publish, running_gateway, running_router, write_routes

pytestmark = [pytest.mark.nats]

ROUTES = """
ingress:
  core: {subjects: [in.>], queue: cerouter}
streams:
  - {name: FEED, subjects: [feed.>]}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {stream: FEED, subject: feed.things}
"""
GATEWAY = ROUTES + "http:\n  listen: 127.0.0.1:0\n"
STRUCTURED = {"content-type": "application/cloudevents+json"}


async def request_json(nc: Client, subject: str) -> Any:
    reply = await nc.request(subject, b"", timeout=5.0)
    return orjson.loads(reply.data)


async def routed(nc: Client, count: int) -> dict[str, Any]:
    """The stats snapshot once ``count`` events were routed (bounded wait)."""
    async with asyncio.timeout(10.0):
        while True:
            snapshot: dict[str, Any] = await request_json(nc, "cerouter.stats")
            if snapshot["outcomes"]["routed"] >= count:
                return snapshot
            await asyncio.sleep(0.05)


@pytest.mark.fresh_server
async def test_the_router_is_a_micro_service_answering_stats(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    async with running_router(nats_url, write_routes(tmp_path, ROUTES)):
        ping = await request_json(nc, "$SRV.PING.cerouter")
        assert ping["name"] == "cerouter"
        assert ping["type"] == "io.nats.micro.v1.ping_response"
        info = await request_json(nc, "$SRV.INFO.cerouter")
        assert [(e["name"], e["subject"]) for e in info["endpoints"]] == [
            ("stats", "cerouter.stats")
        ]
        for i in range(3):
            await publish(nc, "in.x", event(id_=str(i), data={"n": i}))
        await publish(nc, "in.x", event("com.example.nobody", id_="lost"))
        snapshot = await routed(nc, 3)
        assert snapshot["routes"] == [
            {
                "name": "things",
                "match": 'exact type="com.example.thing"',
                "to": ["stream FEED feed.things"],
                "deliveries": 3,
                "failures": 0,
            }
        ]
        assert snapshot["deadletter_stream"] == "DEADLETTER"
        async with asyncio.timeout(10.0):
            while snapshot["deadletter_reasons"] != {"unrouted": 1}:
                snapshot = await request_json(nc, "cerouter.stats")
        stats = await request_json(nc, "$SRV.STATS.cerouter")
        assert stats["endpoints"][0]["num_requests"] >= 1


async def requests_served(nc: Client) -> int:
    """How many requests the ``stats`` endpoint answered (its micro service stats say)."""
    stats = await request_json(nc, "$SRV.STATS.cerouter")
    served: int = stats["endpoints"][0]["num_requests"]
    return served


def rows(out: str) -> dict[str, list[str]]:
    """The body rows of rich's tables, by their first cell."""
    cells = [[c.strip() for c in line.strip("│").split("│")] for line in out.splitlines()]
    return {row[0]: row[1:] for row in cells if len(row) > 1}


@pytest.mark.fresh_server
async def test_top_once_prints_routes_counters_and_rates(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    async with running_router(nats_url, write_routes(tmp_path, ROUTES)):
        for i in range(2):
            await publish(nc, "in.x", event(id_=str(i), data={"n": i}))
        await routed(nc, 2)
        asked = await requests_served(nc)
        top = asyncio.create_task(
            asyncio.to_thread(run_cli, "top", "--once", "--interval", "2s", "--nats-url", nats_url)
        )
        async with asyncio.timeout(
            15.0
        ):  # top took its first snapshot: publish during its interval
            while True:
                if await requests_served(nc) > asked:
                    break
                await asyncio.sleep(0.02)
        for i in range(2, 6):
            await publish(nc, "in.x", event(id_=str(i), data={"n": i}))
        result = await top
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"cerouter top: {nats_url}, dead letters in DEADLETTER\n")
    table = rows(out)
    match, to, deliveries, rate, failed = table["things"]
    assert (match, to, failed) == ('exact type="com.example.thing"', "stream FEED feed.things", "0")
    assert 2 < int(deliveries) <= 6
    assert table["received"][0] == deliveries
    assert 0.0 < float(rate) <= 4 / 1.9
    assert table["routed"][1] == rate
    assert table["dropped"] == ["0", "0.0"]


def test_top_without_a_router_says_so(nats_url: str) -> None:
    result = run_cli("top", "--once", "--interval", "100ms", "--nats-url", nats_url)
    assert result.returncode == 1
    assert "no cerouter router answers" in result.stderr
    result = run_cli("top", "--interval", "soon")
    assert result.returncode == 2
    assert "--interval" in result.stderr


@pytest.mark.fresh_server
async def test_the_live_page_endpoints(
    nats_url: str, nc: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_gateway(nats_url, write_routes(tmp_path, GATEWAY)) as service:
        assert service.gateway is not None
        url = service.gateway.url
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as http:
            root = await http.get("/?token=t")
            assert (root.status_code, root.headers["location"]) == (307, "/ui?token=t")
            page = await http.get("/ui")
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert '<script src="/ui/app.js"' in page.text
            script = await http.get("/ui/app.js")
            assert script.headers["content-type"] == "text/javascript; charset=utf-8"
            assert "innerHTML" not in script.text
            assert (await http.get("/ui/style.css")).status_code == 200
            assert (await http.get("/ui/secrets.txt")).status_code == 404
            body = orjson.dumps(event(id_="1", data={"n": 1}))
            assert (await http.post("/events", content=body, headers=STRUCTURED)).is_success
            frames = []
            async with aconnect_sse(http, "GET", "/ui/stats") as source:
                async for frame in source.aiter_sse():
                    frames.append(frame)
                    if frame.event == "stats" and orjson.loads(frame.data)["outcomes"]["routed"]:
                        break
            assert orjson.loads(frames[-1].data)["routes"][0]["deliveries"] == 1

            def authenticate(
                self: Authenticator, authorization: str | None, query_token: str | None = None
            ) -> Principal | None:
                return ANONYMOUS if query_token == "good" else None

            monkeypatch.setattr(Authenticator, "authenticate", authenticate)
            assert (await http.get("/ui")).status_code == 401
            assert (await http.get("/ui/stats")).status_code == 401
            assert (await http.get("/ui?token=good")).status_code == 200
            assert (await http.get("/ui/app.js")).status_code == 200  # no data in it
