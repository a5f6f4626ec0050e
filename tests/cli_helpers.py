"""Running the installed ``cerouter`` in a directory of the test's own, with extra variables."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import CEROUTER

# Refusals happen before connecting: nothing listens on port 1.
DEAD_URL = "nats://127.0.0.1:1"


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cerouter ARGS`` in ``cwd`` (never the repository) and capture its output."""
    return subprocess.run(
        [CEROUTER, *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
    )
