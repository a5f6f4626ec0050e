"""``cerouter worker MODULE:APP`` as a real process: runs, handles, drains on SIGINT, exits 0.

Through the real ``cerouter`` CLI once ``cli_worker.register(app)`` is in ``cerouter/cli.py``;
until then through ``python -m cerouter.cli_worker`` (the same command function).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cerouter import cli
from tests.helpers import CEROUTER
from tests.test_worker_support import order_event, publisher, unique, workqueue

pytestmark = pytest.mark.nats

REGISTERED = any(c.name == "worker" for c in cli.app.registered_commands)
COMMAND = [CEROUTER, "worker"] if REGISTERED else [sys.executable, "-m", "cerouter.cli.worker"]

APP_MODULE = """
from cloudevents.core.v1.event import CloudEvent
from cerouter.worker import WorkerApp

app = WorkerApp("demo", drain_timeout=5)
not_an_app = 42


@app.handler("com.example.order.*", queue="{queue}", durable={durable})
async def handle(event: CloudEvent) -> None:
    print("handled", event.get_id(), flush=True)
"""


class WorkerProcess:
    """``cerouter worker ...`` in a subprocess whose stdout and stderr lines can be awaited."""

    def __init__(self, *args: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [*COMMAND, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._buffers = {"stdout": b"", "stderr": b""}

    def wait_for(self, stream: str, text: str, timeout: float = 15.0) -> str:
        """Read until a line of ``stream`` contains ``text``; return it."""
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ, "stdout")
            selector.register(self.proc.stderr, selectors.EVENT_READ, "stderr")
            while True:
                for line in self.lines[stream]:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {stream} line with {text!r}; got {self.lines}")
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
                    if not chunk:
                        raise AssertionError(f"process ended before {text!r}: {self.lines}")
                    name = str(key.data)
                    self._buffers[name] += chunk
                    *lines, self._buffers[name] = self._buffers[name].split(b"\n")
                    self.lines[name] += [x.decode() for x in lines]

    def finish(self, timeout: float = 20.0) -> tuple[int, str, str]:
        """Wait for exit; return (code, all stdout, all stderr)."""
        out, err = self.proc.communicate(timeout=timeout)
        stdout = "\n".join([*self.lines["stdout"], (self._buffers["stdout"] + out).decode()])
        stderr = "\n".join([*self.lines["stderr"], (self._buffers["stderr"] + err).decode()])
        return self.proc.returncode, stdout, stderr

    def kill(self) -> None:
        """Stop the process if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )


def write_app(tmp_path: Path, queue: str, durable: bool) -> None:
    source = APP_MODULE.format(queue=queue, durable=durable)
    (tmp_path / "demo_worker.py").write_text(textwrap.dedent(source))


@pytest.mark.parametrize(
    ("target", "durable"),
    [("demo_worker:app", False), ("demo_worker.py:app", True), ("demo_worker", False)],
    ids=["module-core", "file-durable", "default-attribute"],
)
async def test_worker_command_handles_events_and_drains_on_sigint(
    tmp_path: Path, nats_url: str, target: str, durable: bool
) -> None:
    queue = unique("cli")
    write_app(tmp_path, queue, durable)
    if durable:
        async with publisher(nats_url) as client:
            await workqueue(client.nc, unique("WORK"), f"work.{queue}")
    proc = WorkerProcess(
        target, "--nats-url", nats_url, "--concurrency", "4", "--log-format", "json",
        cwd=tmp_path,
    )  # fmt: skip
    try:
        ready = json.loads(proc.wait_for("stderr", '"worker ready"'))
        kind = "durable" if durable else "core"
        assert f"{queue} ({kind}, work.{queue})" in ready["queues"]
        assert ready["logger"] == "cerouter.worker"
        assert {"version", "pid", "timestamp", "level"} <= ready.keys()
        async with publisher(nats_url) as client:
            for n in range(3):
                if durable:
                    await client.publish_js(order_event(n), f"work.{queue}")
                else:
                    await client.publish(order_event(n), f"work.{queue}")
        for n in range(3):
            proc.wait_for("stdout", f"handled o-{n}")
        proc.proc.send_signal(signal.SIGINT)
        code, _, stderr = proc.finish()
    finally:
        proc.kill()
    assert code == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # JSON only
    stopped = next(line for line in lines if line["event"] == "worker stopped")
    assert (stopped["handled"], stopped["failed"], stopped["dead_lettered"]) == (3, 0, 0)
    assert all(line.get("logger") for line in lines)
    assert not [line for line in lines if None in line.values() or "" in line.values()]


def test_worker_command_reports_a_bad_target_in_one_line(tmp_path: Path) -> None:
    # The other target errors are covered in-process (tests/test_worker_spec.py, load_app).
    result = run("no_such_module:app", "--log-format", "console", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "cerouter worker: cannot import module 'no_such_module': not found"
    ]


def test_worker_command_reports_an_unreachable_server(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_app(tmp_path, "x", False)
    url = f"nats://127.0.0.1:{port}"
    result = run("demo_worker:app", "--nats-url", url, "--log-format", "console", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"cerouter worker: cannot connect to nats://127.0.0.1:{port}")
