"""Operating the router: sharing load, reloading, surviving a server restart."""

from __future__ import annotations

import socket
from pathlib import Path

import nats
import orjson
import pytest
from nats.aio.client import Client

from cerouter.binding import from_message
from cerouter.config.load import load_router_config as load
from cerouter.errors import ConfigError
from cerouter.nats.embedded import EmbeddedServer, ServerConfig
from tests.routerkit import Inbox, event, publish, running_router, write_routes

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress:
  core: {subjects: [in.>], queue: routers}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: out.a}
"""


async def test_two_routers_in_one_queue_group_deliver_each_event_once(
    nc: Client, nats_url: str, tmp_path: Path
) -> None:
    routes = write_routes(tmp_path, ROUTES)
    out = await Inbox.on(nc, "out.a")
    async with running_router(nats_url, routes) as one, running_router(nats_url, routes) as two:
        await nc.flush()  # see routerkit.publish: make both routers' subscriptions visible
        for i in range(400):
            await nc.publish(
                "in.x", _thing(i), headers={"Content-Type": "application/cloudevents+json"}
            )
        await nc.flush()
        msgs = await out.wait(400)
        shares = (one.stats.outcomes["routed"], two.stats.outcomes["routed"])
    ids = [from_message(m.headers, m.data).get_id() for m in msgs]
    assert sorted(map(int, ids)) == list(range(400))  # each exactly once
    assert sum(shares) == 400
    assert min(shares) > 0  # both took a share


async def test_reload_swaps_routes_and_rejects_a_broken_file(
    nc: Client, nats_url: str, tmp_path: Path
) -> None:
    routes = write_routes(tmp_path, ROUTES)
    a, b = await Inbox.on(nc, "out.a"), await Inbox.on(nc, "out.b")
    async with running_router(nats_url, routes) as router:
        await publish(nc, "in.x", event(data={"n": 1}))
        await a.wait(1)
        routes.write_text(routes.read_text().replace("out.a", "out.b"))
        await router.reload(*load(routes))
        await publish(nc, "in.x", event(id_="2", data={"n": 1}))
        await b.wait(1)
        routes.write_text(routes.read_text().replace("subject: out.b", "subjet: out.c"))
        with pytest.raises(ConfigError, match=r"routes.yaml:\d+: .*unknown key 'subjet'"):
            load(routes)
        # the router still runs the last good configuration
        await publish(nc, "in.x", event(id_="3", data={"n": 1}))
        await b.wait(2)
    assert len(a.messages) == 1


async def test_router_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ServerConfig(port=port, store_dir=tmp_path / "js")
    routes = write_routes(tmp_path, ROUTES)
    server = EmbeddedServer(config)
    server.start()
    try:
        async with running_router(server.url, routes) as router:
            server.stop()
            server.start()
            client = await nats.connect(server.url)
            try:
                out = await Inbox.on(client, "out.a")
                # Publish until the reconnected router answers (it resubscribes on reconnect).
                for i in range(200):
                    await publish(client, "in.x", event(id_=str(i), data={"n": 1}))
                    try:
                        await out.wait(1, within=0.1)
                        break
                    except AssertionError:
                        continue
                assert out.messages, "the router never came back"
                assert router.nc.is_connected
            finally:
                await client.close()
    finally:
        server.stop()


def _thing(i: int) -> bytes:
    return orjson.dumps(event(id_=str(i), data={"n": i}))
