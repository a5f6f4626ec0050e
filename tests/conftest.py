"""Shared fixtures: a real nats-server per test module, started by cerouter's own EmbeddedServer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from cerouter.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A real nats-server with JetStream on a random port and a temporary store."""
    store = tmp_path_factory.mktemp("jetstream")
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=store)) as server:
        yield server


@pytest.fixture
def nats_url(nats_server: EmbeddedServer) -> str:
    """The URL of the module's server."""
    return nats_server.url


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A plain nats-py client connected to the module's server."""
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A nats-server of the test's own (starts in tens of milliseconds), for tests that need a
    clean JetStream or that stop and restart the server."""
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=tmp_path / "js")) as server:
        yield server
