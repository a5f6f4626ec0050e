"""``cerouter run``: the router service, on the embedded nats-server or an existing cluster.

The rule for "embedded or join": name a server (``--nats-url``/``-s``, ``CEROUTER_NATS_URL``, or
``nats.urls`` in routes.yaml) and cerouter joins it, whatever the URL; name none and it starts
its own nats-server on 127.0.0.1 (``--port``, default 4222), which only clients presenting the
token in its store (``--store-dir``) may use, unless ``--no-auth``. Joining a server on this
machine with no credentials in routes.yaml, the router presents that token too
(:mod:`cerouter.nats.local_auth`).
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from cerouter import __version__
from cerouter.cli.support import (
    NatsUrlOption,
    NoAuthOption,
    PortOption,
    ServerStoreDirOption,
    fail,
)
from cerouter.config.build_http import ListenError, check_exposure, parse_listen
from cerouter.config.load import load_router_config
from cerouter.config.model import HttpSettings, RouterConfig
from cerouter.errors import CerouterError, ConfigError
from cerouter.log import LogFormat, LogLevel, configure_logging, get_logger
from cerouter.nats.connection import has_auth
from cerouter.nats.embedded import DEFAULT_HOST, DEFAULT_PORT, ServerConfig
from cerouter.nats.local_auth import DEFAULT_STORE_DIR, ensure_token, local_token
from cerouter.service.core import RouterOptions
from cerouter.service.serve import serve
from cerouter.tracing import sdk_provider
from cerouter.validation.registry import SchemaRegistry

log = get_logger("cerouter")


def register(app: typer.Typer) -> None:
    """Add ``run`` to the main app."""
    app.command("run")(run)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop where it is installed (measured: less CPU per event), else asyncio."""
    try:
        import uvloop
    except ImportError:  # Windows, or a platform without wheels
        asyncio.run(main)
    else:
        uvloop.run(main)


def run(
    ctx: typer.Context,
    routes: Annotated[Path, typer.Option(help="The routes file.")] = Path("routes.yaml"),
    nats_url: NatsUrlOption = None,
    port: PortOption = DEFAULT_PORT,
    store_dir: ServerStoreDirOption = DEFAULT_STORE_DIR,
    no_auth: NoAuthOption = False,
    watch: Annotated[
        bool, typer.Option(help="Reload when routes.yaml or a schema changes.")
    ] = False,
    max_hops: Annotated[
        int, typer.Option(min=1, help="Dead-letter a message forwarded this often.")
    ] = 8,
    log_values: Annotated[
        bool,
        typer.Option(help="Quote event values in dead-letter reasons and logs (may be secrets)."),
    ] = False,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="HOST:PORT",
            help="Serve the HTTP gateway there (POST /events, GET /events/stream, probes); "
            "overrides http.listen in routes.yaml. Port 0 picks a free one.",
        ),
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            metavar="HOST:PORT",
            help="Serve GET /metrics (Prometheus), /healthz and /readyz there. The gateway "
            "serves /metrics too; the same HOST:PORT as --http means only the gateway's.",
        ),
    ] = None,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            envvar="CEROUTER_TRACE",
            help="Send OpenTelemetry traces over OTLP/HTTP (needs cerouter[otel]); the "
            "standard OTEL_* variables configure it (OTEL_EXPORTER_OTLP_ENDPOINT, "
            "OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, ...).",
        ),
    ] = False,
    log_format: Annotated[LogFormat, typer.Option(help="Log line format.")] = LogFormat.AUTO,
    log_level: Annotated[LogLevel, typer.Option(help="Lowest level logged.")] = LogLevel.INFO,
) -> None:
    """Route CloudEvents as routes.yaml says (SIGHUP reloads it; Ctrl-C stops cleanly).

    Name a server (--nats-url, CEROUTER_NATS_URL or nats.urls in routes.yaml) and it joins it;
    name none and it starts its own nats-server with JetStream on 127.0.0.1:4222, the URL
    `publish`, `sub` and `worker` use by default. Its clients must present the token kept in
    the store (made on the first start); cerouter commands run from this directory find it.
    """
    configure_logging(log_format, log_level)
    try:
        config, registry = load_router_config(routes)
    except ConfigError as exc:
        fail("run", str(exc), 2)
    if http is not None:
        config = _with_http(config, http)
    metrics_at = None
    if metrics is not None:
        try:
            metrics_at = parse_listen(metrics)
        except ListenError as exc:
            fail("run", f"--metrics: {exc}", 2)
    urls = tuple(nats_url or config.nats.urls)
    if urls:
        for flag in ("port", "no_auth"):
            source = ctx.get_parameter_source(flag)
            if source is not None and source.name != "DEFAULT":
                fail(
                    "run",
                    f"--{flag.replace('_', '-')} is for the embedded server, but a NATS URL was "
                    "given (--nats-url, CEROUTER_NATS_URL or nats.urls in routes.yaml), so "
                    "cerouter joins that server",
                    2,
                )
    try:
        if urls:
            embedded = None
            token = None if has_auth(config.nats) else local_token(urls, store_dir)
        else:
            token = None if no_auth else ensure_token(store_dir)
            embedded = ServerConfig(DEFAULT_HOST, port, store_dir, token=token)
    except CerouterError as exc:
        fail("run", str(exc))
    provider = None
    if trace:
        try:
            provider = sdk_provider()
        except CerouterError as exc:
            fail("run", f"--trace: {exc}", 2)
    options = RouterOptions(
        urls=urls or None, max_hops=max_hops, log_values=log_values, tracer_provider=provider
    )
    try:
        run_loop(_serve(routes, config, registry, options, embedded, token, watch, metrics_at))
    except ConfigError as exc:  # the gateway's tokens file or variable, read as it starts
        fail("run", str(exc), 2)
    except CerouterError as exc:
        fail("run", str(exc).splitlines()[0])
    except KeyboardInterrupt:  # a second Ctrl-C while draining
        raise typer.Exit(130) from None
    finally:
        if provider is not None:
            provider.shutdown()  # the spans still batched go out before the process ends


def _with_http(config: RouterConfig, listen: str) -> RouterConfig:
    """``config`` with the gateway listening on ``listen`` (``--http``)."""
    try:
        host, port = parse_listen(listen)
    except ListenError as exc:
        fail("run", f"--http: {exc}", 2)
    settings = replace(config.http or HttpSettings(), host=host, port=port)
    if (problem := check_exposure(settings)) is not None:
        fail("run", f"--http: {problem}", 2)
    return replace(config, http=settings)


async def _serve(
    path: Path,
    config: RouterConfig,
    registry: SchemaRegistry | None,
    options: RouterOptions,
    embedded: ServerConfig | None,
    token: str | None,
    watch: bool,
    metrics: tuple[str, int] | None,
) -> None:
    if embedded is not None and embedded.token is None:
        log.warning("embedded nats-server without authentication (--no-auth)")
    async with serve(
        config, registry, options, embedded=embedded, token=token, reload_from=path,
        watch=watch, metrics=metrics,
    ) as service:  # fmt: skip
        log.info(
            "cerouter ready",
            version=__version__,
            pid=os.getpid(),
            routes=len(config.routes),
            path=str(path),
            url=service.url,
            embedded=service.server is not None,
            http=service.gateway.url if service.gateway is not None else None,
            metrics=service.metrics_url,
        )
        # Start-up objects (modules, config, schemas) are never garbage: out of the collector's
        # way, full collections take ~3 ms in all instead of pauses of up to 49 ms (p99).
        gc.collect()
        gc.freeze()
        await service.wait()
        lost = service.lost
    if lost:
        raise CerouterError(
            "the NATS connection closed for good and cannot come back; exiting so that a "
            "supervisor restarts cerouter"
        )
