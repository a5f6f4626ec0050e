"""Shared fixtures: a real nats-server per test module, started by cerouter's own EmbeddedServer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A real nats-server with JetStream on a random port and a temporary store."""
    store = tmp_path_factory.mktemp("jetstream")
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=store)) as server:
        yield server


@pytest.fixture
def nats_url(request: pytest.FixtureRequest) -> str:
    """The URL tests talk to: the module's server, or a server of the test's own when the
    module is marked ``fresh_server`` (clean JetStream state for every test)."""
    if request.node.get_closest_marker("fresh_server") is not None:
        server: EmbeddedServer = request.getfixturevalue("fresh_server")
    else:
        server = request.getfixturevalue("nats_server")
    return server.url


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
