"""CLI commands for validation: ``cerouter validate`` and ``cerouter schemas check|list``.

Registered on the main app by :mod:`cerouter.cli`. Results (per event lines, the schema table,
``--json`` documents) go to stdout; diagnostics go to stderr, one per line. Exit codes:
0 all valid, 1 something invalid, 2 a usage error (unreadable file, input that is not JSON,
schemas that do not load, a bad routes file).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import orjson
import typer

from cerouter.errors import CerouterError, SchemaLoadError
from cerouter.validation.registry import SchemaRegistry, SchemasSettings
from cerouter.validation.report import one_line
from cerouter.validation.validator import EventValidator

USAGE_ERROR = 2
INVALID = 1
DEFAULT_SCHEMAS = Path("schemas")

schemas_app = typer.Typer(
    name="schemas",
    help="Check and list the JSON Schemas that validate event data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def register(app: typer.Typer) -> None:
    """Add ``validate`` and ``schemas check|list`` to the main app."""
    app.command("validate")(validate)
    app.add_typer(schemas_app, name="schemas")


# --------------------------------------------------------------------------- options

SchemasOption = Annotated[
    Path | None,
    typer.Option(
        "--schemas",
        help="Schema directory (default: the routes file's, else ./schemas when it exists).",
        show_default=False,
    ),
]
RoutesOption = Annotated[
    Path | None,
    typer.Option(
        "--routes",
        help="routes.yaml whose schemas section (directory, types, unknown) applies.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _fail(command: str, message: str, code: int = USAGE_ERROR) -> NoReturn:
    """``cerouter COMMAND: message`` on stderr, one line per line of ``message``; exit ``code``."""
    for line in message.splitlines() or [""]:
        print(f"cerouter {command}: {one_line(line)}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def _settings(
    command: str, directory: Path | None, routes: Path | None, *, required: bool
) -> SchemasSettings | None:
    """The schema settings from the options; ``None`` when there are no schemas to load."""
    settings = SchemasSettings()
    if routes is not None:
        from cerouter.config.load import load_config

        try:  # the schemas are loaded (and their problems reported) here, not by the config
            settings = load_config(routes, check_schemas=False).schemas
        except CerouterError as exc:
            _fail(command, str(exc))
    if directory is not None:
        settings = SchemasSettings(directory, settings.types, settings.unknown)
    if not settings.directory.exists():
        if required or directory is not None or routes is not None:
            _fail(command, f"schema directory {settings.directory} not found")
        return None
    if not settings.directory.is_dir():
        _fail(command, f"{settings.directory} is not a directory")
    return settings


def _load(command: str, settings: SchemasSettings) -> SchemaRegistry:
    try:
        return SchemaRegistry.load(settings)
    except SchemaLoadError as exc:
        _fail(command, str(exc))


# --------------------------------------------------------------------------- validate


@dataclass(frozen=True, slots=True)
class _Input:
    name: str  # file name, or "<stdin>"
    events: list[Any]


class _InputError(Exception):
    """An input that cannot be read as events (a usage error)."""


def validate(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="FILE|-",
            help="Structured JSON events: one event, a JSON array (batch) or JSON lines. "
            "'-' or nothing reads stdin.",
            show_default=False,
        ),
    ] = None,
    schemas: SchemasOption = None,
    routes: RoutesOption = None,
    unknown: Annotated[
        str | None,
        typer.Option(
            "--unknown",
            metavar="allow|reject",
            help="Event types without a schema: allow (default) or reject.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check events against the CloudEvents rules and their data schemas.

    Prints 'event <id>: ok' or one line per problem, such as
    'event <id>: data/items/0/price: -3 is less than the minimum of 0'.
    Exit 0 when all events are valid, 1 when any is invalid, 2 on usage errors.
    """
    if unknown not in (None, "allow", "reject"):
        _fail("validate", f"--unknown must be 'allow' or 'reject', not {unknown!r}")
    if not files and sys.stdin.isatty():
        _fail("validate", "no input: give event files, or pipe events to stdin ('-')")
    inputs: list[_Input] = []
    for name in files or ["-"]:
        try:
            inputs.append(_read_input(name))
        except _InputError as exc:
            _fail("validate", str(exc))
    settings = _settings("validate", schemas, routes, required=False)
    registry = None
    if settings is not None:
        if unknown is not None:
            policy: Literal["allow", "reject"] = "reject" if unknown == "reject" else "allow"
            settings = SchemasSettings(settings.directory, settings.types, policy)
        registry = _load("validate", settings)
    elif unknown == "reject":
        _fail("validate", "--unknown reject needs schemas, and ./schemas does not exist")
    else:
        print(
            "cerouter validate: no ./schemas directory: checking envelopes only",
            file=sys.stderr,
            flush=True,
        )
    validator = EventValidator(registry)
    results: list[dict[str, Any]] = []
    all_ok = True
    several = len(inputs) > 1
    for given in inputs:
        for index, event in enumerate(given.events, 1):
            report = validator.check_json(event)
            all_ok = all_ok and report.ok
            attributes = (
                {k: v for k, v in event.items() if isinstance(v, str)}
                if isinstance(event, dict)
                else {}
            )
            event_id = attributes.get("id")
            if as_json:
                schema = validator.schema_for(attributes)
                results.append(
                    {
                        "file": given.name,
                        "index": index,
                        "id": event_id if isinstance(event_id, str) else None,
                        "type": attributes.get("type"),
                        "schema": None if schema is None else schema.id,
                        "ok": report.ok,
                        "problems": report.to_json(),
                    }
                )
                continue
            label = event_id if isinstance(event_id, str) and event_id else f"#{index}"
            prefix = f"{given.name}: " if several else ""
            if report.ok:
                print(f"{prefix}event {one_line(label)}: ok")
            for problem in report.problems:
                print(f"{prefix}event {one_line(label)}: {one_line(str(problem))}")
    if as_json:
        sys.stdout.write(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()
    if not all_ok:
        raise typer.Exit(INVALID)


def _read_input(name: str) -> _Input:
    label = "<stdin>" if name == "-" else name
    try:
        raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise _InputError(f"cannot read {label}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _InputError(f"{label}: not UTF-8 text (byte {exc.start})") from None
    return _Input(label, _parse_events(text, label))


def _parse_events(text: str, label: str) -> list[Any]:
    """One JSON event, a JSON array of events, or JSON lines (one event per line)."""
    if not text.strip():
        raise _InputError(f"{label}: no events (the input is empty)")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as whole:
        lines = text.splitlines()
        first = next(line for line in lines if line.strip())
        try:
            orjson.loads(first)
        except orjson.JSONDecodeError:  # not JSON lines either: report the document's error
            raise _InputError(
                f"{label}:{whole.lineno}:{whole.colno}: not JSON: {whole.msg}"
            ) from None
        events = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise _InputError(
                    f"{label}:{number}:{exc.colno}: not JSON (JSON lines: one event per line): "
                    f"{exc.msg}"
                ) from None
        return events
    return document if isinstance(document, list) else [document]


# --------------------------------------------------------------------------- schemas


DirArgument = Annotated[
    Path | None,
    typer.Argument(
        metavar="[DIR]",
        help="Schema directory (default: the routes file's, else ./schemas).",
        show_default=False,
    ),
]


@schemas_app.command("check")
def schemas_check(directory: DirArgument = None, routes: RoutesOption = None) -> None:
    """Load every schema: metaschema, $refs, duplicate $ids, type mappings.

    Prints each problem as 'file: message' on stderr and exits 1; exits 0 when all load.
    """
    settings = _settings("schemas check", directory, routes, required=True)
    assert settings is not None  # required=True exits instead
    try:
        registry = SchemaRegistry.load(settings)
    except SchemaLoadError as exc:
        problems = str(exc).splitlines()
        for problem in problems:
            print(one_line(problem), file=sys.stderr)
        count = len(problems)
        print(
            f"{settings.directory}: {count} problem{'s' if count != 1 else ''}",
            file=sys.stderr,
            flush=True,
        )
        raise typer.Exit(INVALID) from None
    types = sum(1 for entry in registry.entries() if entry.type is not None)
    print(
        f"{settings.directory}: ok: {len(registry)} schema{'s' if len(registry) != 1 else ''}, "
        f"{types} event type{'s' if types != 1 else ''} mapped"
    )


@schemas_app.command("list")
def schemas_list(
    directory: DirArgument = None, routes: RoutesOption = None, as_json: JsonOption = False
) -> None:
    """Show which schema each event type maps to (and schemas no type maps to)."""
    settings = _settings("schemas list", directory, routes, required=True)
    assert settings is not None  # required=True exits instead
    registry = _load("schemas list", settings)
    rows = [
        {
            "type": entry.type,
            "schema": entry.schema.id,
            "file": entry.schema.relpath,
            "draft": entry.schema.draft,
            "declared_by": entry.declared_by or None,
        }
        for entry in registry.entries()
    ]
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = [("TYPE", "SCHEMA", "FILE", "DECLARED BY")] + [
        (
            row["type"] or "-",
            row["schema"],
            row["file"],
            row["declared_by"] or "-",
        )
        for row in rows
    ]
    widths = [max(len(str(r[i])) for r in table) for i in range(3)]
    for row in table:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, str(row[3])]).rstrip())
