"""``cerouter run --metrics`` and ``cerouter worker --metrics`` as real processes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from cerouter import __version__
from tests.helpers import CliProcess, copy_shop, run_cli
from tests.metricskit import parse, value
from tests.test_worker_cli import WorkerProcess, write_app
from tests.test_worker_support import order_event, publisher, unique

pytestmark = pytest.mark.nats


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=15)


@pytest.mark.parametrize(
    ("flags", "on_gateway"),
    [
        (["--metrics", "127.0.0.1:0"], False),
        (["--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0"], True),
        (["--http", "127.0.0.1:0", "--metrics", "localhost:0"], False),
    ],
    ids=["metrics-only", "same-as-http", "second-server"],
)
def test_run_metrics_serves_prometheus_text_and_probes(
    tmp_path: Path, flags: list[str], on_gateway: bool
) -> None:
    shop = copy_shop(tmp_path)
    proc = CliProcess(
        "run", "--port", "0", "--store-dir", str(shop / "js"), *flags, "--log-format", "json",
        cwd=shop,
    )  # fmt: skip
    try:
        ready = json.loads(proc.wait_for_stderr('"cerouter ready"'))
        url = ready["metrics"]
        assert url.endswith("/metrics")
        http = ready.get("http")
        assert (http is not None and url.startswith(http)) == on_gateway
        response = get(url)
        assert response.status_code == 200
        samples = parse(response.text)
        assert value(samples, "cerouter_build_info", version=__version__) == 1
        assert value(samples, "cerouter_events_total", outcome="routed") == 0
        base = url.removesuffix("/metrics")
        assert get(f"{base}/readyz").status_code == 200
        assert get(f"{base}/healthz").status_code == 200
        proc.proc.send_signal(signal.SIGTERM)
        code, _, stderr = proc.finish()
    finally:
        proc.kill()
    assert code == 0, stderr


def test_run_metrics_rejects_a_bad_address(tmp_path: Path) -> None:
    result = run_cli("run", "--metrics", "nowhere", cwd=copy_shop(tmp_path))
    assert result.returncode == 2
    assert "--metrics: 'nowhere' is not host:port" in result.stderr


async def test_worker_metrics_serves_the_workers_counters(tmp_path: Path, nats_url: str) -> None:
    queue = unique("cli")
    write_app(tmp_path, queue, False)
    proc = WorkerProcess(
        "demo_worker:app", "--nats-url", nats_url, "--metrics", "127.0.0.1:0",
        "--log-format", "json", cwd=tmp_path,
    )  # fmt: skip
    try:
        url = json.loads(proc.wait_for("stderr", '"worker ready"'))["metrics"]
        async with publisher(nats_url) as client:
            await client.publish(order_event(1), f"work.{queue}")
        proc.wait_for("stdout", "handled o-1")
        async with httpx.AsyncClient(timeout=15) as http:
            samples = parse((await http.get(url)).text)
        assert value(samples, "cerouter_worker_handled_total", queue=queue) == 1
        proc.proc.send_signal(signal.SIGINT)
        code, _, stderr = proc.finish()
    finally:
        proc.kill()
    assert code == 0, stderr
