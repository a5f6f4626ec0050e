"""The ``cerouter`` command line: a thin typer layer over the package's functions."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cerouter.cli import broker, routing, run, top, validation, worker

try:  # typer 0.2x vendors click
    from typer._click import Context
    from typer._click.exceptions import NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer, on click itself
    from click import Context  # type: ignore[import-not-found, no-redef, assignment, unused-ignore]
    from click.exceptions import (  # type: ignore[import-not-found, no-redef, assignment, unused-ignore]
        NoArgsIsHelpError,
        UsageError,
    )


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    # typer draws a usage error as a box of several lines; cerouter's errors are one line each:
    # `cerouter sub: Invalid value for '--count': ...`, exit 2.
    try:
        yield
    except NoArgsIsHelpError:
        raise  # `cerouter routes` alone prints the help
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "cerouter"
        message = " ".join(exc.format_message().split()).rstrip(".")
        print(f"{where}: {message} (see {where} --help)", file=sys.stderr, flush=True)
        raise typer.Exit(exc.exit_code) from None


class _Group(TyperGroup):
    """The root command group: usage errors, at any depth, as one line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any
    ) -> Context:
        with _one_line_usage_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="cerouter",
    cls=_Group,
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
top.register(app)
