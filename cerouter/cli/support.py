"""Shared pieces of the CLI: one-line errors and common options."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from cerouter.config.model import NatsSettings, TlsSettings
from cerouter.errors import CerouterError
from cerouter.log import get_logger, json_lines
from cerouter.nats.connection import DEFAULT_URL, URL_ENVVAR, has_auth
from cerouter.nats.embedded import RANDOM_PORT
from cerouter.nats.local_auth import DEFAULT_STORE_DIR, STORE_DIR_ENVVAR, local_token

USAGE_ERROR = 2
MAX_PORT = 65535
_CONNECTION = "Connection"

NatsUrlOption = Annotated[
    list[str] | None,
    typer.Option(
        "--nats-url",
        "-s",
        envvar=URL_ENVVAR,
        help=f"NATS server URL (repeat for a cluster). Default: {DEFAULT_URL}.",
        show_default=False,
        rich_help_panel=_CONNECTION,
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
            ctx.command_path.partition(" ")[2] or ctx.info_name or "",  # "cerouter run" -> "run"
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


ServerStoreDirOption = Annotated[
    Path,
    typer.Option(
        "--store-dir",
        envvar=STORE_DIR_ENVVAR,
        help="The embedded server's JetStream store; its token (auth.token) is kept there.",
    ),
]
"""``--store-dir`` of the commands that start the embedded server (``run``, ``server``). Use as
``store_dir: ServerStoreDirOption = DEFAULT_STORE_DIR``."""

StoreDirOption = Annotated[
    Path,
    typer.Option(
        "--store-dir",
        envvar=STORE_DIR_ENVVAR,
        help="Store of the cerouter server on this machine: with no credentials given, its "
        "token authenticates to a server on a loopback URL.",
        rich_help_panel=_CONNECTION,
    ),
]
"""``--store-dir`` of the commands that connect (``publish``, ``sub``, ``worker``): where to find
the local server's token (:mod:`cerouter.nats.local_auth`)."""

NoAuthOption = Annotated[
    bool,
    typer.Option(
        "--no-auth",
        help="Start the embedded server without authentication (a throw-away dev server: "
        "anyone on this machine may read and delete everything).",
    ),
]


def nats_urls(given: list[str] | None) -> list[str]:
    """The URLs to use: the ones given, else the embedded server's default URL."""
    return list(given) if given else [DEFAULT_URL]


# --------------------------------------------------------------------------- connection


def _connection_option(name: str, envvar: str, help: str) -> Any:
    return typer.Option(
        name, envvar=envvar, help=help, show_default=False, rich_help_panel=_CONNECTION
    )


NatsRoutesOption = Annotated[
    Path | None,
    typer.Option(
        "--routes",
        help="Take the connection settings from this routes.yaml's nats section "
        "(options given here win).",
        show_default=False,
        rich_help_panel=_CONNECTION,
    ),
]
CredsOption = Annotated[
    Path | None,
    _connection_option("--creds", "CEROUTER_NATS_CREDS", "NATS credentials file (.creds)."),
]
TokenOption = Annotated[
    str | None,
    _connection_option("--token", "CEROUTER_NATS_TOKEN", "NATS token (prefer the variable)."),
]
UserOption = Annotated[
    str | None, _connection_option("--user", "CEROUTER_NATS_USER", "NATS user name.")
]
PasswordOption = Annotated[
    str | None,
    _connection_option("--password", "CEROUTER_NATS_PASSWORD", "NATS password (with --user)."),
]
TlsCaOption = Annotated[
    Path | None,
    _connection_option("--tls-ca", "CEROUTER_NATS_TLS_CA", "CA file to verify the server."),
]
TlsCertOption = Annotated[
    Path | None,
    _connection_option("--tls-cert", "CEROUTER_NATS_TLS_CERT", "Client certificate (TLS)."),
]
TlsKeyOption = Annotated[
    Path | None,
    _connection_option("--tls-key", "CEROUTER_NATS_TLS_KEY", "Client certificate's key (TLS)."),
]


def nats_settings(
    command: str,
    *,
    urls: list[str] | None,
    routes: Path | None = None,
    creds: Path | None = None,
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    tls_ca: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    name: str | None = None,
    store_dir: Path = DEFAULT_STORE_DIR,
) -> NatsSettings:
    """The connection settings of a command from its options (see ``CredsOption`` and co.).

    Starts from routes.yaml's ``nats`` section when ``routes`` is given (``${ENV}`` resolved),
    else the defaults. Given URLs replace the file's; any of ``creds``, ``token``, ``user``
    replaces the file's authentication (one method only); each TLS file replaces the file's.
    ``name`` is the client name the server shows. No URL anywhere: the embedded server's
    default. No credentials anywhere: the token in ``store_dir`` when every URL is on this
    machine (:func:`cerouter.nats.local_auth.local_token`). A problem is a one-line usage error.
    """
    base = NatsSettings()
    if routes is not None:
        from cerouter.config.load import load_config

        try:
            base = load_config(routes, check_schemas=False).nats
        except CerouterError as exc:
            fail(command, str(exc), USAGE_ERROR)
    changes: dict[str, object] = {}
    if urls:
        changes["urls"] = tuple(urls)
    if name is not None:
        changes["name"] = name
    methods = [
        flag
        for flag, value in (("--creds", creds), ("--token", token), ("--user", user))
        if value is not None
    ]
    if len(methods) > 1:
        fail(command, f"use one authentication method, not {' and '.join(methods)}", USAGE_ERROR)
    if (user is None) != (password is None):
        fail(command, "--user and --password go together", USAGE_ERROR)
    if methods:
        changes.update(credentials=creds, token=token, user=user, password=password)
    for flag, file in (("--creds", creds), ("--tls-ca", tls_ca), ("--tls-cert", tls_cert),
                       ("--tls-key", tls_key)):  # fmt: skip
        if file is not None and not file.is_file():
            fail(command, f"{flag} {file}: no such file", USAGE_ERROR)
    if tls_ca or tls_cert or tls_key:
        tls = base.tls or TlsSettings()
        tls = TlsSettings(tls_ca or tls.ca, tls_cert or tls.cert, tls_key or tls.key)
        if tls.key is not None and tls.cert is None:
            fail(command, "--tls-key needs --tls-cert", USAGE_ERROR)
        changes["tls"] = tls
    settings = dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    if not settings.urls:
        settings = dataclasses.replace(settings, urls=(DEFAULT_URL,))
    if not has_auth(settings):
        try:
            token = local_token(settings.urls, store_dir)
        except CerouterError as exc:
            fail(command, str(exc))
        settings = dataclasses.replace(settings, token=token)
    return settings


def fail(command: str, message: str, code: int = 1) -> NoReturn:
    """Print ``cerouter COMMAND: message`` as one line on stderr and exit with ``code``.

    Once the command chose JSON logs (``--log-format json``), the line is a JSON log line too
    (level ``error``, logger ``cerouter.COMMAND``), so that stderr stays JSON only.
    """
    one_line = " ".join(message.split())
    if json_lines():
        get_logger(f"cerouter.{command}").error(one_line, exit_code=code)
    else:
        print(f"cerouter {command}: {one_line}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """Print a diagnostic line on stderr (stdout is reserved for data)."""
    print(message, file=sys.stderr, flush=True)
