"""Process lifecycle shared by the router and the workers: signals and one shutdown deadline.

SIGINT and SIGTERM request a stop, SIGHUP a reload. Handlers are installed before anything
starts, so a signal that arrives during start-up is not lost (nor does it kill the process
with -15): it is acted on as soon as start-up completes. Shutdown runs its phases under one
:class:`Deadline`, not a budget per phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal


class Deadline:
    """A point in time on the running loop's clock; :meth:`left` is the budget that remains."""

    def __init__(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._at = self._loop.time() + seconds

    def left(self, floor: float = 0.0) -> float:
        """Seconds until the deadline (at least ``floor``)."""
        return max(floor, self._at - self._loop.time())


class Lifecycle:
    """Stop and reload requests, from signals or from code."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.reload = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def install_signals(self, *, reload: bool = False) -> None:
        """SIGINT/SIGTERM set :attr:`stop`; SIGHUP (when ``reload``) sets :attr:`reload`."""
        loop = asyncio.get_running_loop()
        wanted = [(signal.SIGINT, self.stop), (signal.SIGTERM, self.stop)]
        if reload:
            wanted.append((signal.SIGHUP, self.reload))
        for sig, event in wanted:
            # Not on the main thread (or not on Unix): the owner stops us through `stop`.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, event.set)
                self._installed.append(sig)

    def remove_signals(self) -> None:
        """Give the signals back to their default handlers."""
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()
