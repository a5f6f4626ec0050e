"""Test helpers: waiting on conditions with deadlines, driving the real CLI as a subprocess."""

from __future__ import annotations

import asyncio
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CEROUTER = str(Path(sys.executable).parent / "cerouter")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now (for a server that must be told its port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_shop(directory: Path) -> Path:
    """The example (routes.yaml and schemas/) copied into ``directory``; returns it."""
    shutil.copy(REPO / "routes.yaml", directory / "routes.yaml")
    shutil.copytree(REPO / "schemas", directory / "schemas")
    return directory


def wait_until(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def run_cli(
    *args: str, input: bytes | None = None, timeout: float = 30.0, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cerouter ARGS`` to completion and capture its output.

    It runs in ``cwd``, else in an empty directory of its own: never in the directory pytest was
    started from, where a user's routes.yaml or running router's store may be.
    """
    with tempfile.TemporaryDirectory(prefix="cerouter-cli-") as own:
        return subprocess.run(
            [CEROUTER, *args],
            input=input.decode() if input is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=cwd or own,
        )


class CliProcess:
    """A long-running ``cerouter`` command whose stderr lines can be awaited.

    Like :func:`run_cli` it runs in ``cwd``, else in an empty directory of its own.
    """

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self._own = tempfile.TemporaryDirectory(prefix="cerouter-cli-")
        self.proc = subprocess.Popen(
            [CEROUTER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=cwd or self._own.name,
        )
        self.stderr_lines: list[str] = []
        self._buffer = b""

    def wait_for_stderr(self, text: str, timeout: float = 15.0) -> str:
        """Read stderr until a line containing ``text`` appears; return that line."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stderr, selectors.EVENT_READ)
        try:
            while True:
                for line in self.stderr_lines:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no stderr line with {text!r}; got {self.stderr_lines}")
                if selector.select(remaining):
                    chunk = os.read(self.proc.stderr.fileno(), 65536)
                    if not chunk:
                        raise AssertionError(
                            f"process ended before printing {text!r}; stderr: {self.stderr_lines}"
                        )
                    self._buffer += chunk
                    *lines, self._buffer = self._buffer.split(b"\n")
                    self.stderr_lines += [x.decode() for x in lines]
        finally:
            selector.close()

    async def wait_for_stderr_async(self, text: str, within: float = 15.0) -> str:
        """:meth:`wait_for_stderr` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for_stderr, text, within)

    def finish(self, timeout: float = 20.0) -> tuple[int, str, str]:
        """Wait for the process to exit; return (exit code, stdout, rest of stderr)."""
        out, err = self.proc.communicate(timeout=timeout)
        rest = (self._buffer + err).decode()
        return self.proc.returncode, out.decode(), "\n".join([*self.stderr_lines, rest])

    def kill(self) -> None:
        """Stop the process if it still runs; remove its own directory."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._own.cleanup()
