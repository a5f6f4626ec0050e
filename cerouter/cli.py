"""The ``cerouter`` command line: a thin typer layer over the package's functions."""

from __future__ import annotations

import typer

from cerouter import cli_nats, cli_routing, cli_run, cli_validation, cli_worker

app = typer.Typer(
    name="cerouter",
    help="A CloudEvents-native event router on NATS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

cli_nats.register(app)
cli_run.register(app)
cli_validation.register(app)
cli_routing.register(app)
cli_worker.register(app)
