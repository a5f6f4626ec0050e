"""The ``cerouter`` command line: a thin typer layer over the package's functions."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from cerouter.cli import broker, routing, run, validation, worker

app = typer.Typer(
    name="cerouter",
    help="A CloudEvents-native event router on NATS.",
    no_args_is_help=True,
    # --install-completion / --show-completion (bash, zsh, fish, PowerShell).
    add_completion=True,
    pretty_exceptions_enable=False,
)


def package_version() -> str:
    """The installed distribution's version (the one ``pip`` knows), not a copy in the code."""
    try:
        return version("cerouter")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        print(f"cerouter {package_version()}")
        raise typer.Exit(0)


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """A CloudEvents-native event router on NATS."""


broker.register(app)
run.register(app)
validation.register(app)
routing.register(app)
worker.register(app)
