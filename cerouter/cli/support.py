"""Shared pieces of the CLI: one-line errors and common options."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from cerouter.nats.connection import DEFAULT_URL, URL_ENVVAR

USAGE_ERROR = 2

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
