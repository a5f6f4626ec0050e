"""The embedded server is locked with a token; cerouter's own clients find it, others do not.

`cerouter run` and `cerouter server` make a random token on the first start (``auth.token`` in
the store, mode 0600) and start nats-server with it; `publish`, `sub`, `worker`, `run` joining a
server and `cerouter.client` read it from the store when they talk to a server on this machine
with no credentials of their own. `--no-auth` is the explicit way out for a throw-away server.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as Nats

from cerouter.cli.support import nats_settings
from cerouter.client import Client
from cerouter.config.load import load_router_config
from cerouter.errors import ServerError
from cerouter.nats.connection import DEFAULT_URL
from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig
from cerouter.nats.local_auth import STORE_DIR_ENVVAR, ensure_token, local_token, read_token
from cerouter.service.serve import serve
from tests.cli_helpers import cli
from tests.helpers import CliProcess
from tests.routerkit import eventually

pytestmark = pytest.mark.nats

REPO = Path(__file__).resolve().parents[1]
EVENTS = REPO / "examples" / "events"


async def _quiet(_: Exception) -> None:
    return None


async def plain_connect(url: str, **options: str) -> Nats:
    """A nats-py client that tries once (a refusal raises instead of retrying)."""
    return await nats.connect(
        url, allow_reconnect=False, max_reconnect_attempts=1, error_cb=_quiet, **options
    )


def token_file(directory: Path) -> Path:
    """Where `cerouter run` started in ``directory`` keeps its token by default."""
    return directory / ".cerouter" / "jetstream" / "auth.token"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the example: routes.yaml and schemas/ in a directory of their own."""
    shutil.copy(REPO / "routes.yaml", tmp_path / "routes.yaml")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    return tmp_path


def start(*args: str, cwd: Path) -> tuple[CliProcess, str]:
    """`cerouter run ARGS` in ``cwd`` on a free port; the process and its URL once ready."""
    proc = CliProcess("run", "--port", "-1", "--log-format", "json", *args, cwd=cwd)
    try:
        ready = json.loads(proc.wait_for_stderr('"cerouter ready"'))
    except BaseException:
        proc.kill()
        raise
    return proc, str(ready["url"])


def stop(proc: CliProcess) -> str:
    proc.proc.send_signal(signal.SIGTERM)
    code, _, err = proc.finish()
    assert code == 0, err
    return err


@pytest.fixture
def router(shop: Path) -> Iterator[str]:
    """`cerouter run` as the README starts it (defaults, from the shop directory): its URL."""
    proc, url = start(cwd=shop)
    try:
        yield url
        stop(proc)
    finally:
        proc.kill()


async def test_run_refuses_clients_without_its_token(router: str, shop: Path) -> None:
    for options in ({}, {"token": "guess"}):
        with pytest.raises(Exception, match="Authorization Violation"):
            await plain_connect(router, **options)
    nc = await plain_connect(router, token=token_file(shop).read_text().strip())
    await nc.close()
    assert stat.S_IMODE(token_file(shop).stat().st_mode) == 0o600


async def test_publish_sub_worker_and_the_client_from_the_same_directory_just_work(
    router: str, shop: Path
) -> None:
    # The walk-through: no credentials anywhere, every command run where `cerouter run` runs.
    sub = CliProcess("sub", "alerts.>", "--count", "1", "--timeout", "20", "-s", router, cwd=shop)
    worker = CliProcess(
        "worker", str(REPO / "examples" / "billing_worker.py"), "-s", router, cwd=shop
    )
    try:
        await sub.wait_for_stderr_async("listening on alerts.>")
        await worker.wait_for_stderr_async("worker ready")
        published = cli(
            "publish", "events.shop", "--event", str(EVENTS / "payment-failed.json"),
            "-s", router, cwd=shop,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        code, out, err = await asyncio.to_thread(sub.finish)
        assert code == 0, err
        assert json.loads(out)["type"] == "com.example.payment.failed"

        order = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, str(REPO / "examples" / "publish_order.py")],
            capture_output=True, text=True, timeout=30, cwd=shop,
            env={**os.environ, "CEROUTER_NATS_URL": router},
        )  # fmt: skip
        assert order.returncode == 0, order.stderr
        nc = await plain_connect(router, token=token_file(shop).read_text().strip())
        try:
            js = nc.jetstream()

            async def billed() -> bool:  # the work queue took it and the worker acked it
                state = (await js.stream_info("BILLING")).state
                return state.last_seq >= 1 and state.messages == 0

            await eventually(billed, what="the order billed and acked")
        finally:
            await nc.close()
        worker.proc.send_signal(signal.SIGTERM)
        code, out, err = await asyncio.to_thread(worker.finish)
        assert code == 0, err
        assert "billed order" in out
    finally:
        sub.kill()
        worker.kill()


def test_given_credentials_win_over_the_store(router: str, shop: Path) -> None:
    result = cli(
        "publish", "events.shop", "--type", "t", "--source", "/s", "-s", router,
        "--token", "guess", cwd=shop,
    )  # fmt: skip
    assert result.returncode == 1
    assert "the server refused the credentials" in result.stderr


def test_a_client_elsewhere_is_told_where_the_token_is(router: str, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = ("publish", "events.shop", "--type", "t", "--source", "/s", "-s", router)
    result = cli(*args, cwd=elsewhere)
    assert result.returncode == 1
    assert "the server wants credentials and none were given" in result.stderr
    assert "--store-dir" in result.stderr
    store = str(token_file(tmp_path).parent)
    assert cli(*args, "--store-dir", store, cwd=elsewhere).returncode == 0
    assert cli(*args, cwd=elsewhere, env={STORE_DIR_ENVVAR: store}).returncode == 0


async def test_no_auth_lets_a_plain_client_in(shop: Path) -> None:
    proc, url = start("--no-auth", cwd=shop)
    try:
        nc = await plain_connect(url)
        await nc.close()
        err = stop(proc)
    finally:
        proc.kill()
    assert "without authentication (--no-auth)" in err
    assert not token_file(shop).exists()


def test_no_auth_with_a_url_is_a_usage_error(shop: Path) -> None:
    result = cli("run", "--no-auth", "-s", "nats://127.0.0.1:1", cwd=shop)
    assert result.returncode == 2
    assert "--no-auth is for the embedded server" in result.stderr


async def test_server_command_is_locked_the_same_way(tmp_path: Path) -> None:
    server = CliProcess("server", "--port", "0", cwd=tmp_path)
    try:
        line = await server.wait_for_stderr_async("nats-server running at ")
        url = line.split(" running at ")[1].split()[0]
        with pytest.raises(Exception, match="Authorization Violation"):
            await plain_connect(url)
        where = await server.wait_for_stderr_async("clients authenticate with the token in")
        assert ".cerouter/jetstream/auth.token" in where
        published = cli("publish", "ping", "--type", "t", "--source", "/s", "-s", url, cwd=tmp_path)
        assert published.returncode == 0, published.stderr
        server.proc.send_signal(signal.SIGTERM)
        code, _, err = await asyncio.to_thread(server.finish)
        assert code == 0, err
    finally:
        server.kill()
    open_server = CliProcess("server", "--port", "0", "--no-auth", cwd=tmp_path)
    try:
        line = await open_server.wait_for_stderr_async("nats-server running at ")
        nc = await plain_connect(line.split(" running at ")[1].split()[0])
        await nc.close()
    finally:
        open_server.kill()


def test_a_token_file_others_can_read_stops_the_start(shop: Path) -> None:
    store = token_file(shop).parent
    ensure_token(store)
    token_file(shop).chmod(0o644)
    result = cli("run", "--port", "0", cwd=shop)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "can be read by other users (mode 0644)" in result.stderr
    assert "chmod 600" in result.stderr


async def test_run_joining_a_local_server_presents_its_token(shop: Path, tmp_path: Path) -> None:
    # `cerouter server` in one place, `cerouter run -s URL` joining it from another.
    store = tmp_path / "server-store"
    config = ServerConfig(port=RANDOM_PORT, store_dir=store, token=ensure_token(store))
    with EmbeddedServer(config) as server:
        proc, url = start_joined(shop, server.url, "--store-dir", str(store))
        try:
            assert url == server.url
            stop(proc)
        finally:
            proc.kill()


def start_joined(shop: Path, url: str, *args: str) -> tuple[CliProcess, str]:
    proc = CliProcess("run", "-s", url, "--log-format", "json", *args, cwd=shop)
    try:
        ready = json.loads(proc.wait_for_stderr('"cerouter ready"'))
    except BaseException:
        proc.kill()
        raise
    return proc, str(ready["url"])


@pytest.fixture
def locked_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    store = tmp_path / "store"
    config = ServerConfig(port=RANDOM_PORT, store_dir=store, token=ensure_token(store))
    with EmbeddedServer(config) as server:
        yield server


async def test_the_client_finds_the_token_like_the_cli(
    locked_server: EmbeddedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = locked_server.store_dir
    async with await Client.connect(locked_server.url, store_dir=store) as client:
        await client.flush()
    monkeypatch.setenv(STORE_DIR_ENVVAR, str(store))
    async with await Client.connect(locked_server.url) as client:
        await client.flush()
    with pytest.raises(ServerError, match="the server wants credentials"):
        await Client.connect(locked_server.url, store_dir=tmp_path / "no-store")
    with pytest.raises(ServerError, match="refused the credentials"):
        await Client.connect(locked_server.url, token="guess")


async def test_serve_connects_the_router_with_the_embedded_servers_token(
    tmp_path: Path,
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text("version: 1\nroutes: []\n")
    token = ensure_token(tmp_path / "store")
    config, registry = load_router_config(routes)
    embedded = ServerConfig(port=RANDOM_PORT, store_dir=tmp_path / "store", token=token)
    async with serve(
        config, registry, embedded=embedded, reload_from=routes, signals=False
    ) as service:
        before = service.router.config.nats
        assert await service.reload()
        # The reloaded configuration authenticates the same way: no "nats settings changed".
        assert service.router.config.nats == before
        with pytest.raises(Exception, match="Authorization Violation"):
            await plain_connect(service.url)


def test_the_token_is_made_once_private_and_reused(tmp_path: Path) -> None:
    store = tmp_path / "new" / "store"
    token = ensure_token(store)
    assert len(token) >= 32
    assert stat.S_IMODE((store / "auth.token").stat().st_mode) == 0o600
    assert ensure_token(store) == token == read_token(store)
    assert [p.name for p in store.iterdir()] == ["auth.token"]  # no drafts left behind
    (store / "auth.token").write_text("\n")
    with pytest.raises(ServerError, match="is empty"):
        ensure_token(store)


@pytest.mark.parametrize(
    ("urls", "offered"),
    [
        (["nats://127.0.0.1:4222"], True),
        (["nats://localhost:4222", "127.0.0.2:4223"], True),
        (["tls://[::1]:4222"], True),
        (["nats://10.1.2.3:4222"], False),
        (["nats://nats.example.com:4222"], False),
        (["nats://127.0.0.1:4222", "nats://10.1.2.3:4222"], False),
        (["nats://other@127.0.0.1:4222"], False),
        (["nats://alice:pw@localhost:4222"], False),
    ],
)
def test_the_token_only_goes_to_servers_on_this_machine(
    tmp_path: Path, urls: list[str], offered: bool
) -> None:
    token = ensure_token(tmp_path)
    assert local_token(urls, tmp_path) == (token if offered else None)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_the_token_is_not_on_the_servers_command_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    token = ensure_token(store)
    server = EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=store, token=token))
    with server:
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert b"nats-server" in cmdline
        assert token.encode() not in cmdline  # `ps` shows the command line to every user
    assert sorted(p.name for p in store.iterdir()) == [".cerouter.lock", "auth.token", "jetstream"]


def test_no_url_anywhere_means_the_embedded_servers_address(tmp_path: Path) -> None:
    # publish and sub used to get no URL at all here (nothing to connect to, or a crash).
    settings = nats_settings("publish", urls=None, store_dir=tmp_path / "no-store")
    assert (settings.urls, settings.token) == ((DEFAULT_URL,), None)
    token = ensure_token(tmp_path / "store")
    assert nats_settings("sub", urls=None, store_dir=tmp_path / "store").token == token
