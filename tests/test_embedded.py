"""The embedded server: ports, stores, clean stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from cerouter.errors import PortInUseError, ServerError
from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig

pytestmark = pytest.mark.nats


def test_two_servers_cannot_share_a_jetstream_store(tmp_path: Path) -> None:
    config = ServerConfig(port=RANDOM_PORT, store_dir=tmp_path)
    with (
        EmbeddedServer(config),
        pytest.raises(ServerError, match="is in use by another embedded server"),
    ):
        EmbeddedServer(config).start()
    with EmbeddedServer(config) as again:  # the lock goes with the server
        assert again.running


def test_a_taken_port_is_a_clear_error(nats_server: EmbeddedServer) -> None:
    with pytest.raises(PortInUseError, match=f"port {nats_server.port} on 127.0.0.1 is already"):
        EmbeddedServer(ServerConfig(port=nats_server.port)).start()


def test_stop_ends_the_process_and_is_idempotent(tmp_path: Path) -> None:
    server = EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=tmp_path))
    server.start()
    pid = server.pid
    assert pid is not None
    server.stop()
    server.stop()
    assert not server.running
    assert not Path(f"/proc/{pid}").exists()  # exited and reaped
