"""``cerouter worker MODULE:APP``: run a :class:`~cerouter.worker.WorkerApp` until Ctrl-C.

``MODULE`` is a dotted module name importable from the current directory (``billing`` or
``examples.billing_worker``) or a path to a ``.py`` file; ``APP`` is the attribute holding the
app (default ``app``). SIGINT or SIGTERM drains the worker (handlers in progress finish, durable
events not yet started go back to the queue) and exits 0.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from cerouter import __version__
from cerouter.cli.support import (
    CredsOption,
    NatsRoutesOption,
    NatsUrlOption,
    PasswordOption,
    StoreDirOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
    TokenOption,
    UserOption,
    fail,
    nats_settings,
)
from cerouter.config.build_http import ListenError, parse_listen
from cerouter.errors import CerouterError
from cerouter.log import LogFormat, LogLevel, configure_logging, get_logger
from cerouter.nats.local_auth import DEFAULT_STORE_DIR
from cerouter.tracing import sdk_provider
from cerouter.worker import Worker, WorkerApp

COMMAND = "worker"

log = get_logger("cerouter.worker")


def register(app: typer.Typer) -> None:
    """Add ``worker`` to the main app."""
    app.command(COMMAND)(worker)


def worker(
    target: Annotated[
        str, typer.Argument(metavar="MODULE:APP", help="Module (or .py file) and app attribute.")
    ],
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Events each handler runs at once (for handlers that set none)."),
    ] = None,
    nats_url: NatsUrlOption = None,
    routes: NatsRoutesOption = None,
    creds: CredsOption = None,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    tls_ca: TlsCaOption = None,
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    store_dir: StoreDirOption = DEFAULT_STORE_DIR,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            metavar="HOST:PORT",
            help="Serve GET /metrics (Prometheus), /healthz and /readyz there (port 0: any).",
        ),
    ] = None,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            envvar="CEROUTER_TRACE",
            help="Send OpenTelemetry traces (a span per handler call) over OTLP/HTTP (needs "
            "cerouter[otel]); the standard OTEL_* variables configure it.",
        ),
    ] = False,
    log_format: Annotated[LogFormat, typer.Option(help="Log line format.")] = LogFormat.AUTO,
    log_level: Annotated[
        LogLevel, typer.Option(help="Lowest level logged (debug: also each ignored event).")
    ] = LogLevel.INFO,
) -> None:
    """Run a worker app: consume its queues until Ctrl-C, then drain and exit.

    MODULE is a module importable from here, or a .py file; APP defaults to `app`.
    """
    # The worker's own logs go to stderr; stdout stays the handlers' (they may print data).
    configure_logging(log_format, log_level)
    try:
        app = load_app(target)
    except CerouterError as exc:
        fail(COMMAND, str(exc))
    metrics_at = None
    if metrics is not None:
        try:
            metrics_at = parse_listen(metrics)
        except ListenError as exc:
            fail(COMMAND, f"--metrics: {exc}", 2)
    settings = nats_settings(
        COMMAND, urls=nats_url, routes=routes, creds=creds, token=token, user=user,
        password=password, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
        name=f"cerouter-worker-{app.name}", store_dir=store_dir,
    )  # fmt: skip

    def ready(running: Worker) -> None:
        queues = ", ".join(
            f"{q.name} ({'durable' if q.durable else 'core'}, {q.subject})" for q in running.queues
        )
        where = running.nc.connected_url.geturl() if running.nc.connected_url else ""
        served = {"metrics": running.metrics.url} if running.metrics.url is not None else {}
        log.info(
            "worker ready", app=app.name, url=where, queues=queues, version=__version__,
            pid=os.getpid(), **served,
        )  # fmt: skip

    provider = None
    if trace:
        try:
            provider = sdk_provider(f"cerouter-worker-{app.name}")
        except CerouterError as exc:
            fail(COMMAND, f"--trace: {exc}", 2)
    try:
        serving = app.serve(
            settings=settings, concurrency=concurrency, on_ready=ready, metrics=metrics_at,
            tracer_provider=provider,
        )  # fmt: skip
        stats = asyncio.run(serving)
    except CerouterError as exc:
        fail(COMMAND, str(exc))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        fail(COMMAND, "interrupted", 130)
    finally:
        if provider is not None:
            provider.shutdown()  # the spans still batched go out before the process ends
    log.info(
        "worker stopped", app=app.name, handled=stats.handled, failed=stats.failed,
        dead_lettered=stats.dead_lettered, ignored=stats.ignored,
    )  # fmt: skip


def load_app(target: str) -> WorkerApp:
    """Import ``MODULE[:ATTR]`` (current directory first on ``sys.path``) and return the app."""
    module_name, _, attr = target.partition(":")
    attr = attr or "app"
    if not module_name:
        raise CerouterError(f"{target!r}: expected MODULE:APP, e.g. billing_worker:app")
    module = _import(module_name)
    try:
        found = getattr(module, attr)
    except AttributeError:
        raise CerouterError(f"module {module.__name__!r} has no attribute {attr!r}") from None
    if not isinstance(found, WorkerApp):
        raise CerouterError(
            f"{module.__name__}:{attr} is a {type(found).__name__}, not a cerouter WorkerApp"
        )
    return found


def _import(name: str) -> ModuleType:
    # Like `python -m`: the current directory is importable, so `cerouter worker billing:app`
    # finds ./billing.py.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if name.endswith(".py") or os.sep in name:
        return _import_file(Path(name))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise CerouterError(f"cannot import module {name!r}: not found") from None
        raise CerouterError(f"cannot import module {name!r}: {exc}") from None
    except Exception as exc:
        raise CerouterError(f"cannot import module {name!r}: {type(exc).__name__}: {exc}") from None


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise CerouterError(f"cannot import {str(path)!r}: no such file")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise CerouterError(f"cannot import {str(path)!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CerouterError(f"cannot import {str(path)!r}: {type(exc).__name__}: {exc}") from None
    return module


def main() -> None:
    """Run ``worker`` as a standalone command (``python -m cerouter.cli_worker``)."""
    standalone = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    standalone.command()(worker)
    standalone()


if __name__ == "__main__":
    main()
