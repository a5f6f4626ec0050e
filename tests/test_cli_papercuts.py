"""Paper cuts of the command line: --version, shell completion, port and file usage errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from nats.aio.client import Client

from tests.cli_helpers import DEAD_URL, cli
from tests.helpers import CEROUTER, CliProcess


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"cerouter {version('cerouter')}\n"
    assert result.stderr == ""


def test_show_completion_prints_a_script_for_the_calling_shell(tmp_path: Path) -> None:
    # Run from bash (the trailing `true` stops bash from exec-ing cerouter in its place), so
    # the shell detection finds bash as the parent.
    result = subprocess.run(
        ["bash", "-c", f"{CEROUTER} --show-completion; true"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "complete -o default -F _cerouter_completion cerouter" in result.stdout
    assert "_CEROUTER_COMPLETE=complete_bash" in result.stdout


def test_completion_completes_commands_and_subcommands(tmp_path: Path) -> None:
    # What the installed script asks the program: the words so far, the index of the one to
    # complete.
    def complete(words: str, index: int) -> list[str]:
        env = {"_CEROUTER_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        result = cli(cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("cerouter pub", 1) == ["publish"]
    assert complete("cerouter routes ", 2) == ["check", "schema"]


def test_install_completion_writes_into_home_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        ["bash", "-c", f"{CEROUTER} --install-completion; true"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    assert "bash completion installed in" in result.stdout
    assert "_cerouter_completion" in (home / ".bash_completions" / "cerouter.sh").read_text()
    assert ".bash_completions/cerouter.sh" in (home / ".bashrc").read_text()


@pytest.mark.parametrize("port", ["70000", "65536", "-5"])
def test_a_port_out_of_range_is_a_one_line_usage_error(tmp_path: Path, port: str) -> None:
    result = cli("server", "--port", port, "--store-dir", str(tmp_path / "js"), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"cerouter server: --port {port}: a port is 1 to 65535 (or 0 for a free one)\n"
    )
    assert not (tmp_path / "js").exists()  # refused before anything started


@pytest.mark.nats
def test_port_0_starts_the_server_on_a_free_port(tmp_path: Path) -> None:
    server = CliProcess("server", "--port", "0", "--store-dir", str(tmp_path / "js"), cwd=tmp_path)
    try:
        line = server.wait_for_stderr("nats-server running at ")
        url = line.split(" running at ")[1].split()[0]
        port = int(url.rsplit(":", 1)[1])
        assert port not in (0, 4222)
        published = cli(
            "publish", "ping", "--type", "t", "--source", "/s", "-s", url,
            "--store-dir", str(tmp_path / "js"), cwd=tmp_path,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        server.proc.send_signal(signal.SIGTERM)
        code, _, err = server.finish()
    finally:
        server.kill()
    assert code == 0, err


@pytest.mark.parametrize(
    ("subject", "problem"),
    [
        ("events.>", "subject 'events.>' must not contain the wildcard '>'"),
        ("events.*", "subject 'events.*' must not contain the wildcard '*'"),
        ("events..demo", "subject 'events..demo' has an empty token"),
        ("events.", "subject 'events.' has an empty token"),
        ("events demo", "subject 'events demo' contains whitespace or a non-ASCII character"),
        ("", "a subject must be a non-empty string"),
    ],
)
def test_publish_refuses_a_wildcard_or_invalid_subject(
    tmp_path: Path, subject: str, problem: str
) -> None:
    result = cli("publish", subject, "--type", "t", "--source", "/s", "-s", DEAD_URL, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        f"cerouter publish: {problem} (publish to a literal subject such as events.demo)\n"
    )


def test_sub_refuses_an_invalid_pattern(tmp_path: Path) -> None:
    result = cli("sub", "events.>.x", "-s", DEAD_URL, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "cerouter sub: subject 'events.>.x': '>' may only be the last token\n"


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"specversion": "1.0", "type": "t", "source": "/s"}, "has no 'id'"),
        ({"specversion": "1.0", "type": "t", "source": "/s", "id": ""}, "has an empty 'id'"),
        ({"specversion": "1.0", "type": "t", "source": "/s", "id": 7}, "has a non-string 'id'"),
    ],
)
def test_publish_refuses_an_event_file_without_an_id(
    tmp_path: Path, event: dict[str, object], problem: str
) -> None:
    (tmp_path / "e.json").write_text(json.dumps(event), encoding="utf-8")
    result = cli("publish", "events.demo", "--event", "e.json", "-s", DEAD_URL, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"cerouter publish: e.json: the event {problem}")
    assert result.stderr.count("\n") == 1


def test_publish_refuses_an_empty_id_option(tmp_path: Path) -> None:
    result = cli(
        "publish", "events.demo", "--type", "t", "--source", "/s", "--id", "", "-s", DEAD_URL,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr == "cerouter publish: --id is empty; every CloudEvent needs a non-empty id\n"
    )


@pytest.mark.nats
async def test_publish_sends_an_otherwise_invalid_event_file_as_written(
    tmp_path: Path, nc: Client, nats_url: str
) -> None:
    # Only the id is required: an event without a source still goes out, to test the router.
    raw = b'{"specversion": "1.0", "id": "x-1", "type": "t"}'
    (tmp_path / "e.json").write_bytes(raw)
    sub = await nc.subscribe("papercuts.invalid")
    await nc.flush()
    result = await asyncio.to_thread(
        cli, "publish", "papercuts.invalid", "--event", "e.json", "-s", nats_url, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "published x-1 to papercuts.invalid (structured mode)\n"
    msg = await sub.next_msg(timeout=10)
    assert json.loads(msg.data) == json.loads(raw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["routes", "check"], "cerouter routes check: routes.yaml: cannot read: No such file"),
        (
            ["routes", "check", "nope.yaml"],
            "cerouter routes check: nope.yaml: cannot read: No such",
        ),
        (["routes", "check", "adir"], "cerouter routes check: adir: cannot read: Is a directory"),
        (["explain", "e.json"], "cerouter explain: routes.yaml: cannot read: No such file"),
        (
            ["explain", "nope.json", "--routes", "r.yaml"],
            "cerouter explain: nope.json: cannot read",
        ),
    ],
)
def test_a_missing_file_is_a_one_line_usage_error(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "r.yaml").write_text("version: 1\nroutes: []\n", encoding="utf-8")
    (tmp_path / "e.json").write_text('{"specversion": "1.0"}', encoding="utf-8")
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["sub", "x", "--count", "many"],
            "cerouter sub: Invalid value for '--count': Input should be a valid integer, unable "
            "to parse string as an integer (see cerouter sub --help)",
        ),
        (
            ["server", "--port", "abc"],
            "cerouter server: Invalid value for '--port': Input should be a valid integer, "
            "unable to parse string as an integer (see cerouter server --help)",
        ),
        (["sub"], "cerouter sub: Missing argument 'subjects' (see cerouter sub --help)"),
        (["--bogus"], "cerouter: No such option: --bogus (see cerouter --help)"),
        (
            ["routes", "chek"],
            "cerouter routes: No such command 'chek'. Did you mean 'check', 'schema'? "
            "(see cerouter routes --help)",
        ),
    ],
)
def test_a_usage_error_from_the_parser_is_one_line(
    tmp_path: Path, args: list[str], line: str
) -> None:
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_a_command_group_alone_still_prints_its_help(tmp_path: Path) -> None:
    result = cli("routes", cwd=tmp_path)
    assert "Usage: cerouter routes [OPTIONS] COMMAND [ARGS]..." in result.stdout + result.stderr
    assert "check" in result.stdout + result.stderr
