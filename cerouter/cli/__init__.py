"""The ``cerouter`` command line: one module per command group, each a thin layer."""

import signal
import sys

_LONG_RUNNING = frozenset({"run", "worker", "server"})


def _stop_before_start(signum: int, frame: object) -> None:
    # Nothing has started yet, so there is nothing to drain: a clean exit, not death by -15.
    # The command installs its own handlers (draining ones) before it starts anything.
    raise SystemExit(0)


if len(sys.argv) > 1 and sys.argv[1] in _LONG_RUNNING:
    # Before the imports below, which take a good part of a second on a loaded machine.
    signal.signal(signal.SIGTERM, _stop_before_start)

from cerouter.cli.main import app  # noqa: E402 - after the early signal handler, on purpose

__all__ = ["app"]
