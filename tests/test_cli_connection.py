"""`publish` and `sub` take the connection settings `run` takes: token, user/password, .creds,
TLS, or routes.yaml's nats section; checked against real nats-servers that demand them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig
from tests.cli_helpers import DEAD_URL, cli
from tests.helpers import CliProcess

pytestmark = pytest.mark.nats

TOKEN = "s3cret-token"
EVENT = ("--type", "com.example.ping", "--source", "/tests", "--id", "p-1")


def server_with(tmp_path: Path, *args: str) -> EmbeddedServer:
    return EmbeddedServer(
        ServerConfig(port=RANDOM_PORT, store_dir=tmp_path / "js", extra_args=args)
    )


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with server_with(tmp_path, "--auth", TOKEN) as server:
        yield server


@pytest.fixture
def user_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    with server_with(tmp_path, "--user", "alice", "--pass", "wonderland") as server:
        yield server


def sub_and_publish(
    tmp_path: Path, url: str, *auth: str, env: dict[str, str] | None = None
) -> None:
    """`sub` with ``auth`` receives what `publish` with ``auth`` (and ``env``) sends."""
    sub = CliProcess(
        "sub", "auth.demo", "--count", "1", "--timeout", "20", "-s", url, *auth, cwd=tmp_path
    )
    try:
        sub.wait_for_stderr("listening on auth.demo")
        published = cli("publish", "auth.demo", *EVENT, "-s", url, *auth, cwd=tmp_path, env=env)
        assert published.returncode == 0, published.stderr
        code, out, err = sub.finish()
    finally:
        sub.kill()
    assert code == 0, err
    assert json.loads(out)["id"] == "p-1"


def test_publish_and_sub_with_the_right_token(tmp_path: Path, token_server: EmbeddedServer) -> None:
    sub_and_publish(tmp_path, token_server.url, "--token", TOKEN)


@pytest.mark.parametrize("command", ["publish", "sub"])
@pytest.mark.parametrize("auth", [["--token", "wrong"], []], ids=["wrong", "none"])
def test_a_wrong_or_missing_token_is_one_line(
    tmp_path: Path, token_server: EmbeddedServer, command: str, auth: list[str]
) -> None:
    args = [*EVENT] if command == "publish" else ["--timeout", "5"]
    result = cli(command, "auth.demo", *args, "-s", token_server.url, *auth, cwd=tmp_path)
    assert result.returncode == 1
    hint = (
        "the server refused the credentials: check the token, user/password or .creds file"
        if auth
        else "the server wants credentials and none were given: a token, user/password or "
        ".creds file; the token of cerouter's own server is read from its store directory, "
        "--store-dir or CEROUTER_STORE_DIR, default .cerouter/jetstream"
    )
    assert result.stderr == (
        f"cerouter {command}: cannot connect to {token_server.url}: nats: 'Authorization "
        f"Violation' ({hint})\n"
    )


def test_the_token_may_come_from_the_environment(
    tmp_path: Path, token_server: EmbeddedServer
) -> None:
    result = cli(
        "publish", "auth.demo", *EVENT, "-s", token_server.url, cwd=tmp_path,
        env={"CEROUTER_NATS_TOKEN": TOKEN},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_routes_yaml_nats_section_gives_url_and_token(
    tmp_path: Path, token_server: EmbeddedServer
) -> None:
    (tmp_path / "routes.yaml").write_text(
        f"version: 1\nnats:\n  urls: {token_server.url}\n  token: ${{PING_TOKEN}}\nroutes: []\n",
        encoding="utf-8",
    )
    env = {"PING_TOKEN": TOKEN}
    result = cli("publish", "auth.demo", *EVENT, "--routes", "routes.yaml", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    # an option wins over the file
    result = cli(
        "publish", "auth.demo", *EVENT, "--routes", "routes.yaml", "--token", "wrong",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Authorization Violation" in result.stderr


def test_publish_and_sub_with_user_and_password(
    tmp_path: Path, user_server: EmbeddedServer
) -> None:
    sub_and_publish(tmp_path, user_server.url, "--user", "alice", "--password", "wonderland")
    wrong = cli(
        "publish", "auth.demo", *EVENT, "-s", user_server.url, "--user", "alice",
        "--password", "looking-glass", cwd=tmp_path,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert wrong.stderr.count("\n") == 1
    assert "Authorization Violation" in wrong.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--token", "t", "--user", "u", "--password", "p"],
            "use one authentication method, not --token and --user",
        ),
        (["--user", "u"], "--user and --password go together"),
        (["--creds", "missing.creds"], "--creds missing.creds: no such file"),
        (["--tls-ca", "missing.pem"], "--tls-ca missing.pem: no such file"),
        (["--routes", "missing.yaml"], "missing.yaml: cannot read: No such file or directory"),
    ],
)
def test_connection_options_are_checked_before_connecting(
    tmp_path: Path, args: list[str], message: str
) -> None:
    for command in (["publish", "auth.demo", *EVENT], ["sub", "auth.demo"]):
        result = cli(*command, "-s", DEAD_URL, *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"cerouter {command[0]}: {message}\n"


# --------------------------------------------------------------------------- TLS


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(where: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=cerouter test CA", cwd=where)  # fmt: skip
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    for name in ("server", "client"):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=where)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext",
                cwd=where)  # fmt: skip


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_publish_and_sub_over_mutual_tls(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certificates(certs)
    tls_server = server_with(
        tmp_path, "--tlsverify", "--tlscert", str(certs / "server.pem"),
        "--tlskey", str(certs / "server.key"), "--tlscacert", str(certs / "ca.pem"),
    )  # fmt: skip
    tls = [
        "--tls-ca", str(certs / "ca.pem"), "--tls-cert", str(certs / "client.pem"),
        "--tls-key", str(certs / "client.key"),
    ]  # fmt: skip
    with tls_server:
        url = tls_server.url
        sub_and_publish(tmp_path, url, *tls)
        no_client_cert = cli("publish", "auth.demo", *EVENT, "-s", url, *tls[:2], cwd=tmp_path)
    assert no_client_cert.returncode == 1
    assert no_client_cert.stderr.startswith(f"cerouter publish: cannot connect to {url}")
    assert no_client_cert.stderr.count("\n") == 1, no_client_cert.stderr
    # (the server's "certificate required" may arrive after the handshake, as a lost connection)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_server_certificate_from_an_unknown_ca_is_a_tls_error(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certificates(certs)
    tls_server = server_with(
        tmp_path, "--tls", "--tlscert", str(certs / "server.pem"),
        "--tlskey", str(certs / "server.key"),
    )  # fmt: skip
    with tls_server:
        url = tls_server.url
        publish = ("publish", "auth.demo", *EVENT, "-s", url)
        # a CA file that did not sign the server's certificate, then the one that did
        untrusted = cli(*publish, "--tls-ca", str(certs / "server.pem"), cwd=tmp_path)
        trusted = cli(*publish, "--tls-ca", str(certs / "ca.pem"), cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert untrusted.returncode == 1
    assert untrusted.stderr.count("\n") == 1
    assert (
        "(the TLS handshake failed: check the CA, client certificate and key)" in untrusted.stderr
    )


# --------------------------------------------------------------------------- reconnecting


def test_sub_says_when_the_connection_drops_and_comes_back(tmp_path: Path) -> None:
    store = tmp_path / "js"
    first = EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=store))
    first.start()
    port, url = first.port, first.url
    sub = CliProcess("sub", "re.demo", "--count", "2", "--timeout", "60", "-s", url, cwd=tmp_path)
    second = EmbeddedServer(ServerConfig(port=port, store_dir=store))
    try:
        sub.wait_for_stderr(f"listening on re.demo at {url}")
        published = cli("publish", "re.demo", *EVENT, "-s", url, cwd=tmp_path)
        assert published.returncode == 0, published.stderr
        sub.wait_for_stderr("received on re.demo")
        first.stop()
        assert sub.wait_for_stderr("connection to") == (
            f"cerouter sub: connection to {url} lost; reconnecting"
        )
        second.start()  # the same port and store: the server is back
        assert sub.wait_for_stderr("reconnected") == f"cerouter sub: reconnected to {url}"
        again = cli("publish", "re.demo", *EVENT[:-1], "p-2", "-s", url, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        code, out, err = sub.finish()
    finally:
        sub.kill()
        first.stop()
        second.stop()
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["p-1", "p-2"]
    assert "Traceback" not in err
    assert err.count("connection to") == 1
    assert err.count("reconnected") == 1


WORKER_APP = """
from cerouter.worker import WorkerApp

app = WorkerApp("authed")


@app.handler("com.example.ping", queue="authed")
async def handle(event):
    print("handled", event.get_id(), flush=True)
"""


def test_worker_takes_the_same_connection_settings(
    tmp_path: Path, token_server: EmbeddedServer
) -> None:
    (tmp_path / "authed_worker.py").write_text(WORKER_APP)
    refused = cli("worker", "authed_worker:app", "-s", token_server.url, cwd=tmp_path)
    assert refused.returncode == 1
    assert "Authorization Violation" in refused.stderr
    worker = CliProcess(
        "worker", "authed_worker:app", "-s", token_server.url, "--token", TOKEN,
        "--log-format", "json", cwd=tmp_path,
    )  # fmt: skip
    try:
        worker.wait_for_stderr('"worker ready"')
        published = cli(
            "publish", "work.authed", *EVENT, "-s", token_server.url, "--token", TOKEN,
            cwd=tmp_path,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        worker.proc.send_signal(2)  # SIGINT
        code, out, err = worker.finish()
    finally:
        worker.kill()
    assert code == 0, err
    assert "handled p-1" in out
