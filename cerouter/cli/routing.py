"""CLI commands for routing: ``cerouter routes check|schema`` and ``cerouter explain``.

Registered on the main app by :mod:`cerouter.cli`. Diagnostics go to stderr, one per line as
``file:line: key.path: message`` (warnings: ``file:line: warning: key.path: message``); data
(the schema, the explanation, the check summary) goes to stdout.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cerouter.cli.support import fail, note
from cerouter.config.load import check_config
from cerouter.config.structure import routes_schema_text
from cerouter.errors import CerouterError

DEFAULT_ROUTES = Path("routes.yaml")

routes_app = typer.Typer(
    name="routes",
    help="Check routes.yaml and print its JSON Schema.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def register(app: typer.Typer) -> None:
    """Add ``routes check``, ``routes schema`` and ``explain`` to the main app."""
    app.add_typer(routes_app, name="routes")
    app.command("explain")(explain)


@routes_app.command("check")
def check(
    routes: Annotated[Path, typer.Argument(help="The routes file.")] = DEFAULT_ROUTES,
    no_env: Annotated[
        bool,
        typer.Option("--no-env", help="Do not resolve ${ENV} references (CI without secrets)."),
    ] = False,
) -> None:
    """Load routes.yaml fully (schemas included) and print errors and lint warnings.

    Exit status: 1 on errors, 0 when valid (warnings or not), 2 when the file cannot be read.
    """
    from cerouter.config.lint import lint

    try:  # a file that is not there is a usage error, not a broken configuration
        with routes.open("rb"):
            pass
    except OSError as exc:
        fail("routes check", f"{routes}: cannot read: {exc.strerror}", 2)
    result = check_config(routes, resolve_env=not no_env)
    for error in result.errors:
        note(str(error))
    if result.config is None:
        n = len(result.errors)
        note(f"{routes}: {n} error{'s' if n != 1 else ''}")
        raise typer.Exit(1)
    warnings = [*result.warnings, *lint(result.config, result.registry)]
    warnings.sort(key=lambda w: w.line or 0)
    for warning in warnings:
        note(warning.format(str(routes)))
    config = result.config
    declared = sum(1 for s in config.streams if not s.implicit)
    schemas = len(result.registry) if result.registry is not None else 0
    summary = f"{routes}: ok: {len(config.routes)} routes, {declared} streams, {schemas} schemas"
    if warnings:
        summary += f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
    print(summary)


@routes_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of routes.yaml (for editor completion)."""
    sys.stdout.write(routes_schema_text())


def explain(
    event_file: Annotated[Path, typer.Argument(help="A structured-mode JSON event ('-': stdin).")],
    routes: Annotated[
        Path, typer.Option("--routes", "-r", help="The routes file.")
    ] = DEFAULT_ROUTES,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Show offline what the router would do with an event, and why.

    Prints the envelope and schema verdict, each route's deciding condition, and the deliveries.

    Exit status: 0 routed, 1 dead-lettered or dropped, 2 usage error.
    """
    from cerouter.ops.explain import dumps, explain_payload
    from cerouter.pipeline import Pipeline
    from cerouter.validation.registry import SchemaRegistry

    result = check_config(routes, resolve_env=False)
    if result.config is None:
        first = result.errors[0] if result.errors else "invalid routes file"
        fail("explain", str(first), 2)
    try:
        payload = sys.stdin.buffer.read() if str(event_file) == "-" else event_file.read_bytes()
    except OSError as exc:
        fail("explain", f"{event_file}: cannot read: {exc.strerror}", 2)
    try:
        registry = result.registry or SchemaRegistry.load(result.config.schemas)
        x = explain_payload(
            Pipeline(result.config, registry, include_values=True),  # your own event
            payload,
            source="stdin" if str(event_file) == "-" else str(event_file),
        )
    except CerouterError as exc:
        fail("explain", str(exc), 2)
    if as_json:
        print(dumps(x))
    else:
        print(x.to_text())
    raise typer.Exit(0 if x.outcome == "routed" else 1)
