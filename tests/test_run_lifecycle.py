"""The service lifecycle through the real CLI: embedded or join, signals, JSON-only logs.

Each test runs in a directory of its own, with its own store and a random port, so a router the
user is running from the clone (README walk-through) does not disturb it.
"""

from __future__ import annotations

import json
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig
from tests.helpers import CliProcess, copy_shop, free_port, run_cli

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.nats


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return copy_shop(tmp_path)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=tmp_path / "js")) as running:
        yield running


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line parsed as JSON (fails on any line that is not)."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def stop(proc: CliProcess, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    proc.proc.send_signal(sig)
    code, _, stderr = proc.finish()
    return code, stderr


def test_no_url_starts_the_embedded_server(shop: Path) -> None:
    port = free_port()
    proc = CliProcess(
        "run", "--port", str(port), "--store-dir", str(shop / "js"), "--log-format", "json",
        cwd=shop,
    )  # fmt: skip
    try:
        ready = json.loads(proc.wait_for_stderr('"cerouter ready"'))
        assert ready["embedded"] is True
        assert ready["url"] == f"nats://127.0.0.1:{port}"
        code, stderr = stop(proc)
    finally:
        proc.kill()
    assert code == 0, stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_named_server_is_joined_even_at_the_default_address(
    shop: Path, server: EmbeddedServer, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server listens where it does; naming its URL means "join it", never "start one there".
    args = ["run", "--log-format", "json"]
    if how == "flag":
        args += ["-s", server.url]
    else:
        monkeypatch.setenv("CEROUTER_NATS_URL", server.url)
    proc = CliProcess(*args, cwd=shop)
    try:
        ready = json.loads(proc.wait_for_stderr('"cerouter ready"'))
        assert ready["embedded"] is False
        assert ready["url"] == server.url
        code, stderr = stop(proc)
    finally:
        proc.kill()
    assert code == 0, stderr
    assert not (shop / ".cerouter").exists(), "no embedded store when joining"


def test_routes_yaml_urls_are_joined(shop: Path, server: EmbeddedServer) -> None:
    text = (shop / "routes.yaml").read_text()
    (shop / "routes.yaml").write_text(text.replace("nats:\n", f"nats:\n  urls: {server.url}\n"))
    proc = CliProcess("run", "--log-format", "json", cwd=shop)
    try:
        ready = json.loads(proc.wait_for_stderr('"cerouter ready"'))
        assert (ready["embedded"], ready["url"]) == (False, server.url)
        code, stderr = stop(proc)
    finally:
        proc.kill()
    assert code == 0, stderr


def test_port_with_a_url_is_a_usage_error(shop: Path, server: EmbeddedServer) -> None:
    result = run_cli(
        "run", "--routes", str(shop / "routes.yaml"), "-s", server.url, "--port", "5",
        "--log-format", "console",
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("cerouter run: --port is for the embedded server")


@pytest.mark.parametrize("port", ["70000", "65536", "-5"])
def test_a_port_outside_the_range_is_a_usage_error(shop: Path, port: str) -> None:
    result = run_cli("run", "--routes", str(shop / "routes.yaml"), "--port", port)
    assert result.returncode == 2
    assert "already in use" not in result.stderr
    assert "--port" in result.stderr


@pytest.mark.parametrize(("option", "value"), [("--log-level", "verbose"), ("--log-format", "xml")])
def test_log_options_are_choices(shop: Path, option: str, value: str) -> None:
    result = run_cli("run", "--routes", str(shop / "routes.yaml"), option, value)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert option in result.stderr


def test_sigterm_during_start_up_drains_and_exits_0(shop: Path) -> None:
    port = free_port()
    proc = CliProcess(
        "run", "--port", str(port), "--store-dir", str(shop / "js"), "--log-format", "json",
        cwd=shop,
    )  # fmt: skip
    try:
        # The first line comes before the router is connected, let alone ready.
        first = json.loads(proc.wait_for_stderr('"embedded nats-server started"'))
        assert first["logger"] == "cerouter.service"
        code, stderr = stop(proc)
    finally:
        proc.kill()
    assert code == 0, stderr
    events = [line["event"] for line in json_lines(stderr)]
    assert "router stopped" in events


def test_json_logs_are_json_only_with_logger_and_no_empty_fields(shop: Path) -> None:
    port = free_port()
    proc = CliProcess(
        "run", "--port", str(port), "--store-dir", str(shop / "js"), "--log-format", "json",
        cwd=shop,
    )  # fmt: skip
    try:
        proc.wait_for_stderr('"cerouter ready"')
        published = run_cli(  # the embedded server's token: found in the store
            "publish", "-s", f"nats://127.0.0.1:{port}", "events.shop", "--type", "org.nobody",
            "--source", "/me", "--data", '{"x": 1}', "--store-dir", str(shop / "js"), cwd=shop,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        proc.wait_for_stderr('"dead-lettered"')
        code, stderr = stop(proc)
    finally:
        proc.kill()
    assert code == 0, stderr
    lines = json_lines(stderr)
    assert all(line.get("logger", "").startswith("cerouter") for line in lines)
    assert all(None not in line.values() and "" not in line.values() for line in lines)
    ready = next(line for line in lines if line["event"] == "cerouter ready")
    assert {"version", "pid"} <= ready.keys()
    letter = next(line for line in lines if line["event"] == "dead-lettered")
    assert (letter["ce_type"], letter["ce_source"], letter["reason"]) == (
        "org.nobody",
        "/me",
        "unrouted",
    )


WORKER_APP = """
    from cerouter.worker import WorkerApp

    app = WorkerApp("gone")

    @app.handler("*", queue="gone")
    async def handle(event):
        return None
"""


def test_worker_stopped_after_its_server_went_away_exits_0(tmp_path: Path) -> None:
    (tmp_path / "gone_worker.py").write_text(textwrap.dedent(WORKER_APP))
    server = EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=tmp_path / "js"))
    server.start()
    try:
        proc = CliProcess(
            "worker", "gone_worker:app", "-s", server.url, "--log-format", "json", cwd=tmp_path
        )
        try:
            proc.wait_for_stderr('"worker ready"')
            server.stop()
            proc.wait_for_stderr('"nats disconnected"')
            code, stderr = stop(proc, signal.SIGINT)
        finally:
            proc.kill()
    finally:
        server.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    events = [line["event"] for line in json_lines(stderr)]
    assert "worker stopped" in events


def test_fatal_errors_are_json_lines_when_logs_are(tmp_path: Path) -> None:
    result = run_cli("run", "--log-format", "json", "--routes", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    [line] = json_lines(result.stderr)
    assert (line["level"], line["logger"]) == ("error", "cerouter.run")
    assert "nope.yaml" in line["event"]


def test_a_garbage_creds_file_is_one_line_not_a_missing_module(tmp_path: Path) -> None:
    creds = tmp_path / "user.creds"
    creds.write_text("not a creds file\n")
    config = ServerConfig(port=RANDOM_PORT, store_dir=tmp_path / "js", extra_args=("--auth", "t"))
    with EmbeddedServer(config) as server:
        result = run_cli(
            "publish", "demo.x", "--type", "t", "--source", "/s", "--id", "1", "-s", server.url,
            "--creds", str(creds),
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "nkeys" not in result.stderr
