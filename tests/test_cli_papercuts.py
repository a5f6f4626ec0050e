"""Paper cuts of the command line: --version, shell completion, port and file usage errors."""

from __future__ import annotations

import os
import signal
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.helpers import CEROUTER, CliProcess


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cerouter`` in ``cwd`` (never the repository) and capture its output."""
    return subprocess.run(
        [CEROUTER, *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
    )


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
        published = cli("publish", "ping", "--type", "t", "--source", "/s", "-s", url, cwd=tmp_path)
        assert published.returncode == 0, published.stderr
        server.proc.send_signal(signal.SIGTERM)
        code, _, err = server.finish()
    finally:
        server.kill()
    assert code == 0, err
