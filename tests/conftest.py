"""Shared fixtures: a real nats-server per test module, started by cerouter's own EmbeddedServer."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from hypothesis import HealthCheck, settings
from nats.aio.client import Client

from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig

# Hypothesis times examples with the wall clock; on a loaded 2-core machine a slow draw or a
# scheduler pause is not a bug, so neither the per-example deadline nor the too_slow health
# check applies.  The other health checks (filter_too_much, data_too_large, ...) point at badly
# written strategies whatever the load, so they stay on.  Generation stays random (derandomize
# off): each run explores new inputs, and a failure prints its seed and blob to reproduce it.
# "dev" is the default; .ci/run selects "ci" (HYPOTHESIS_PROFILE=ci), which also keeps no example
# database: every CI run starts from a fresh checkout, so the printed blob is what reproduces.
settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("ci", settings.get_profile("dev"), database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _without_the_users_cerouter_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's ``CEROUTER_*`` variables (``CEROUTER_NATS_URL`` naming their own server) must not
    redirect a test, in-process or in a CLI subprocess (those inherit ``os.environ``)."""
    for name in [name for name in os.environ if name.startswith("CEROUTER_")]:
        monkeypatch.delenv(name)


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
