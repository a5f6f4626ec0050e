"""The ``cerouter`` command line: a thin typer layer over the package's functions."""

from __future__ import annotations

import typer

from cerouter.cli import broker, routing, run, validation, worker

app = typer.Typer(
    name="cerouter",
    help="A CloudEvents-native event router on NATS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

broker.register(app)
run.register(app)
validation.register(app)
routing.register(app)
worker.register(app)
