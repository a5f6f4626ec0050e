"""`cerouter server`, `publish` and `sub` against a real nats-server, bytes on the wire checked."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.nats.connection import full_flush
from cerouter.nats.embedded import EmbeddedServer
from tests.helpers import CliProcess, run_cli

pytestmark = pytest.mark.nats


async def capture(nc: Client, subject: str) -> tuple[asyncio.Queue[Msg], object]:
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        await queue.put(msg)

    sub = await nc.subscribe(subject, cb=on_msg)
    await full_flush(nc)
    return queue, sub


async def publish_cli(*args: str) -> None:
    result = await asyncio.to_thread(run_cli, "publish", *args)
    assert result.returncode == 0, result.stderr


async def test_structured_publish_is_spec_exact_on_the_wire(nc: Client, nats_url: str) -> None:
    queue, _ = await capture(nc, "wire.structured")
    await publish_cli(
        "wire.structured", "--type", "com.example.order.created", "--source", "/shop",
        "--id", "o-1", "--time", "2026-01-02T03:04:05Z", "--data", '{"total": 5}',
        "--ext", "tenant=acme", "-s", nats_url,
    )  # fmt: skip
    msg = await asyncio.wait_for(queue.get(), 10)
    assert msg.headers == {"Content-Type": "application/cloudevents+json"}
    assert orjson.loads(msg.data) == {
        "specversion": "1.0", "id": "o-1", "source": "/shop", "type": "com.example.order.created",
        "time": "2026-01-02T03:04:05Z", "tenant": "acme", "data": {"total": 5},
    }  # fmt: skip


async def test_binary_publish_is_spec_exact_on_the_wire(nc: Client, nats_url: str) -> None:
    queue, _ = await capture(nc, "wire.binary")
    await publish_cli(
        "wire.binary", "--mode", "binary", "--type", "com.example.note", "--source", "/notes",
        "--id", "n-1", "--time", "2026-01-02T03:04:05+02:00", "--datacontenttype", "text/plain",
        "--data", "Euro € 😀", "--ext", "label=Euro € 😀", "-s", nats_url,
    )  # fmt: skip
    msg = await asyncio.wait_for(queue.get(), 10)
    assert msg.headers == {
        "ce-specversion": "1.0",
        "ce-id": "n-1",
        "ce-source": "/notes",
        "ce-type": "com.example.note",
        "ce-time": "2026-01-02T03:04:05+02:00",
        "ce-datacontenttype": "text/plain",
        "ce-label": "Euro%20%E2%82%AC%20%F0%9F%98%80",
    }
    assert msg.data == "Euro € 😀".encode()


async def test_sub_prints_events_from_both_modes_and_skips_garbage(
    nc: Client, nats_url: str
) -> None:
    sub = CliProcess("sub", "demo.>", "--count", "3", "--timeout", "20", "-s", nats_url)
    try:
        await asyncio.to_thread(sub.wait_for_stderr, "listening on demo.>")
        await publish_cli(
            "demo.a",
            "--type",
            "t.one",
            "--source",
            "/s",
            "--id",
            "1",
            "--data",
            "[1]",
            "-s",
            nats_url,
        )
        await nc.publish("demo.bad", b"\xff not an event")
        await nc.flush()
        await publish_cli(
            "demo.b", "--mode", "binary", "--type", "t.two", "--source", "/s", "--id", "2",
            "--data", '{"k": "v"}', "-s", nats_url,
        )  # fmt: skip
        code, out, err = await asyncio.to_thread(sub.finish)
    finally:
        sub.kill()
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["id"], e["type"], e["data"]) for e in events] == [
        ("1", "t.one", [1]),
        ("2", "t.two", {"k": "v"}),
    ]
    assert "received on demo.a in structured mode" in err
    assert "received on demo.b in binary mode" in err
    assert "demo.bad: not a CloudEvent" in err


def test_sub_times_out_with_a_clear_error(nats_url: str) -> None:
    result = run_cli("sub", "nobody.home", "--count", "1", "--timeout", "0.5", "-s", nats_url)
    assert result.returncode == 1
    assert "timed out after 0.5s with 0 of 1 messages" in result.stderr


def test_publish_without_a_server_is_one_line_and_non_zero() -> None:
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli(
        "publish", "x", "--type", "t", "--source", "s", "-s", f"nats://127.0.0.1:{port}"
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"cerouter publish: cannot connect to nats://127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{oops"], "--data is not valid JSON"),
        (["--ext", "Bad=1"], "--ext 'Bad=1': expected name=value"),
        (["--ext", "id=1"], "'id' is not an extension"),
        (["--time", "tomorrow"], "is not an RFC 3339 timestamp"),
        (["--data-file", "/does/not/exist"], "cannot read /does/not/exist"),
    ],
)
def test_publish_rejects_bad_input_before_connecting(args: list[str], message: str) -> None:
    result = run_cli("publish", "x", "--type", "t", "--source", "s", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_server_command_runs_a_real_server_until_sigterm(tmp_path: Path) -> None:
    server = CliProcess("server", "--port", "-1", "--store-dir", f"{tmp_path}/js", cwd=tmp_path)
    try:
        ready = server.wait_for_stderr("nats-server running at nats://127.0.0.1:")
        url = ready.split("running at ", 1)[1].split()[0]
        published = run_cli(  # from the server's directory: its token is found
            "publish", "ping", "--type", "t", "--source", "s", "-s", url,
            "--store-dir", f"{tmp_path}/js", cwd=tmp_path,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        server.proc.send_signal(signal.SIGTERM)
        code, _, err = server.finish()
    finally:
        server.kill()
    assert code == 0
    assert "nats-server stopped" in err


def test_server_command_reports_a_taken_port(nats_server: EmbeddedServer, tmp_path: Path) -> None:
    result = run_cli(
        "server", "--port", str(nats_server.port), "--store-dir", str(tmp_path / "js"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert f"port {nats_server.port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
