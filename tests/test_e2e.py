"""End to end through the CLI: `cerouter run` on the example routes.yaml routes the example events.

This is the README's walk-through, driven as a user would: the example files are copied to a
fresh directory, `cerouter run` starts its embedded server there, `cerouter publish --event`
sends the example events from the same directory (so it finds the server's token in the default
store, `.cerouter/jetstream`, as a user's would), and a nats-py client with that token checks
where each one went.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.binding import from_message
from tests.helpers import CliProcess, copy_shop, free_port, run_cli
from tests.routerkit import Inbox, stream_messages

pytestmark = pytest.mark.nats

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "examples" / "events"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the example: routes.yaml and schemas/ in a directory of their own."""
    return copy_shop(tmp_path)


class RunningRouter:
    def __init__(self, proc: CliProcess, url: str, directory: Path) -> None:
        self.proc = proc
        self.url = url
        self.dir = directory

    @property
    def token(self) -> str:
        """The embedded server's token, where `cerouter run` keeps it by default."""
        return (self.dir / ".cerouter" / "jetstream" / "auth.token").read_text().strip()


@pytest.fixture
async def router(shop: Path) -> AsyncIterator[RunningRouter]:
    # Its own directory, store and port (-1: the server picks a free one, named in the ready
    # line), so a router the user runs from the README (127.0.0.1:4222) is no obstacle.
    proc = CliProcess("run", "--port", "-1", "--log-format", "json", cwd=shop)
    try:
        ready = await asyncio.to_thread(proc.wait_for_stderr, '"cerouter ready"')
        yield RunningRouter(proc, json.loads(ready)["url"], shop)
    finally:
        if proc.proc.poll() is None:
            proc.proc.send_signal(signal.SIGTERM)
            code, _, err = await asyncio.to_thread(proc.finish)
            assert code == 0, err
        proc.kill()


@pytest.fixture
async def client(router: RunningRouter) -> AsyncIterator[Client]:
    nc = await nats.connect(router.url, token=router.token)
    yield nc
    await nc.close()


async def publish_file(router: RunningRouter, name: str, *extra: str) -> None:
    result = await asyncio.to_thread(
        run_cli, "publish", "events.shop", "--event", str(EVENTS / name), "-s", router.url,
        *extra, cwd=router.dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


async def test_a_valid_order_reaches_every_destination(
    router: RunningRouter, client: Client
) -> None:
    async def reserve(msg: Msg) -> None:
        order = from_message(msg.headers, msg.data)
        reply = {
            "specversion": "1.0",
            "id": "r-1",
            "source": "/inventory",
            "type": "com.example.inventory.reserved",
            "data": {"order": order.get_id()},
        }
        await msg.respond(orjson.dumps(reply))

    await client.subscribe("inventory.reserve", cb=reserve)
    reports = await Inbox.on(client, "reports.eur.orders")
    await publish_file(router, "order-created.json", "--mode", "binary")
    [report] = await reports.wait(1)
    [audit] = await stream_messages(client, "AUDIT", count=1)
    [order] = await stream_messages(client, "ORDERS", count=1)
    [work] = await stream_messages(client, "BILLING", count=1)
    sent = orjson.loads((EVENTS / "order-created.json").read_bytes())
    assert report.headers is not None
    assert report.headers["ce-id"] == sent["id"]  # same mode as received: binary
    assert audit.subject == "audit.com_example_order_created"
    assert orjson.loads(audit.data)["id"] == sent["id"]  # mode: structured
    assert order.headers is not None
    assert order.headers["ce-type"] == "com.example.order.created"  # mode: binary
    assert work.subject == "work.billing"
    assert from_message(work.headers, work.data).get_data() == sent["data"]


async def test_invalid_unrouted_and_undeliverable_events_are_dead_lettered(
    router: RunningRouter, client: Client
) -> None:
    await publish_file(router, "order-created-invalid.json")
    # `cerouter publish` refuses an event without an id, so this one goes out as raw bytes.
    await client.publish(
        "events.shop",
        (EVENTS / "order-paid-invalid.json").read_bytes(),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    unknown = await asyncio.to_thread(
        run_cli, "publish", "events.shop", "--type", "org.unknown.thing", "--source", "/x",
        "-s", router.url, cwd=router.dir,
    )  # fmt: skip
    assert unknown.returncode == 0
    await publish_file(router, "order-created.json")  # nobody answers inventory.reserve
    letters = await stream_messages(client, "DEADLETTER", count=4)
    by_subject = {m.subject: m for m in letters}
    assert set(by_subject) == {
        "deadletter.schema", "deadletter.envelope", "deadletter.unrouted", "deadletter.delivery",
    }  # fmt: skip
    schema = by_subject["deadletter.schema"]
    assert schema.headers is not None
    assert "data/items/0/price: is less than the minimum of 0" in schema.headers["cerouter-reason"]
    # publish --event re-encodes the file compactly; the router keeps those bytes untouched
    assert orjson.loads(schema.data) == orjson.loads(
        (EVENTS / "order-created-invalid.json").read_bytes()
    )
    envelope = by_subject["deadletter.envelope"]
    assert envelope.headers is not None
    assert "id: must not be empty" in envelope.headers["cerouter-reason"]
    delivery = by_subject["deadletter.delivery"]
    assert delivery.headers is not None
    assert delivery.headers["cerouter-route"] == "bill-new-orders"
    assert "no responders" in delivery.headers["cerouter-reason"]


async def test_the_readme_walk_through(router: RunningRouter) -> None:
    sub = CliProcess(
        "sub", "alerts.>", "deadletter.>", "--count", "2", "--timeout", "20", "-s", router.url,
        cwd=router.dir,
    )  # fmt: skip
    try:
        await asyncio.to_thread(sub.wait_for_stderr, "listening on alerts.> deadletter.>")
        await publish_file(router, "payment-failed.json", "--mode", "binary")
        await sub.wait_for_stderr_async("received on alerts.payments")
        await publish_file(router, "order-created-invalid.json")
        code, out, err = await asyncio.to_thread(sub.finish)
    finally:
        sub.kill()
    assert code == 0, err
    alert, letter = (orjson.loads(line) for line in out.splitlines())
    assert alert["type"] == "com.example.payment.failed"
    assert "received on alerts.payments in structured mode" in err  # the route says structured
    assert letter["id"] == "0b7f4c2e-9d3a-4e61-8f25-7a1c3e5d9b42"
    assert (
        "received on deadletter.schema in structured mode (dead letter, schema: "
        "data/customer/email" in err
    )


async def test_sighup_reloads_and_a_broken_file_keeps_the_old_routes(
    router: RunningRouter, client: Client, shop: Path
) -> None:
    routes = shop / "routes.yaml"
    routes.write_text(routes.read_text().replace("alerts.payments", "alerts.oncall"))
    router.proc.proc.send_signal(signal.SIGHUP)
    await asyncio.to_thread(router.proc.wait_for_stderr, "configuration reloaded")
    oncall = await Inbox.on(client, "alerts.oncall")
    await publish_file(router, "payment-failed.json")
    await oncall.wait(1)

    routes.write_text(routes.read_text().replace("version: 1", "version: 2"))
    router.proc.proc.send_signal(signal.SIGHUP)
    line = await asyncio.to_thread(router.proc.wait_for_stderr, "reload rejected")
    assert "routes.yaml" in line
    await publish_file(router, "payment-failed.json")
    await oncall.wait(2)  # still routed by the last good configuration


def test_run_reports_a_broken_routes_file_in_one_line(shop: Path) -> None:
    (shop / "routes.yaml").write_text(
        "version: 1\nroutes:\n  - name: x\n    match: {type: a}\n    to: {subjet: b}\n"
    )
    result = run_cli(
        "run", "--routes", str(shop / "routes.yaml"), "--port", str(free_port()),
        "--store-dir", str(shop / "js"), cwd=shop,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert (
        "routes.yaml:5: routes[0].to: unknown key 'subjet' (did you mean 'subject'?)"
        in result.stderr
    )


def test_run_reports_a_taken_port(shop: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run_cli(
            "run", "--routes", str(shop / "routes.yaml"), "--port", str(port),
            "--store-dir", str(shop / "js"), cwd=shop,
        )  # fmt: skip
    assert result.returncode == 1
    assert (
        f"port {port} on 127.0.0.1 is already in use (choose another with --port)" in result.stderr
    )


async def test_watch_reloads_when_routes_yaml_changes(shop: Path) -> None:
    proc = CliProcess(
        "run", "--port", "-1", "--store-dir", str(shop / "js"), "--watch", "--log-format", "json",
        cwd=shop,
    )  # fmt: skip
    try:
        await proc.wait_for_stderr_async("cerouter ready")
        routes = shop / "routes.yaml"
        routes.write_text(routes.read_text().replace("alerts.payments", "alerts.oncall"))
        line = await proc.wait_for_stderr_async("configuration reloaded")
        assert '"routes": 8' in line
        proc.proc.send_signal(signal.SIGTERM)
        code, _, err = await asyncio.to_thread(proc.finish)
        assert code == 0, err
    finally:
        proc.kill()
