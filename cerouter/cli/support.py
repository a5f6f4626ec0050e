"""Shared pieces of the CLI: one-line errors and common options."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from cerouter.nats.connection import DEFAULT_URL, URL_ENVVAR
from cerouter.nats.embedded import RANDOM_PORT

USAGE_ERROR = 2
MAX_PORT = 65535

NatsUrlOption = Annotated[
    list[str] | None,
    typer.Option(
        "--nats-url",
        "-s",
        envvar=URL_ENVVAR,
        help=f"NATS server URL (repeat for a cluster). Default: {DEFAULT_URL}.",
        show_default=False,
    ),
]


def _check_port(ctx: typer.Context, value: int) -> int:
    # 0 (the sockets convention) and -1 (nats-server's) both ask for a free port; nats-server
    # itself would read 0 as "the default port", so 0 is passed on as -1.
    if ctx.resilient_parsing:  # shell completion
        return value
    if value in (0, RANDOM_PORT):
        return RANDOM_PORT
    if not 1 <= value <= MAX_PORT:
        fail(
            ctx.info_name or "cerouter",
            f"--port {value}: a port is 1 to {MAX_PORT} (or 0 for a free one)",
            USAGE_ERROR,
        )
    return value


PortOption = Annotated[
    int,
    typer.Option(
        "--port",
        callback=_check_port,
        help=f"The embedded nats-server's client port, 1 to {MAX_PORT} (0: a free one).",
    ),
]
"""``--port`` for commands that start the embedded server: outside 1..65535 is a usage error;
0 (or -1) picks a free port, which the command prints. Use as
``port: PortOption = DEFAULT_PORT`` (``cerouter.nats.embedded.DEFAULT_PORT``)."""


def nats_urls(given: list[str] | None) -> list[str]:
    """The URLs to use: the ones given, else the embedded server's default URL."""
    return list(given) if given else [DEFAULT_URL]


def fail(command: str, message: str, code: int = 1) -> NoReturn:
    """Print ``cerouter COMMAND: message`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(message.split())
    print(f"cerouter {command}: {one_line}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """Print a diagnostic line on stderr (stdout is reserved for data)."""
    print(message, file=sys.stderr, flush=True)
