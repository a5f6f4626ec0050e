"""``cerouter run``: the router service, on the embedded nats-server or an existing cluster."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from cerouter.cli.support import NatsUrlOption, fail, note
from cerouter.config.load import check_config
from cerouter.config.model import DEFAULT_NATS_URL, RouterConfig
from cerouter.errors import CerouterError, ConfigError
from cerouter.log import configure_logging
from cerouter.nats.embedded import DEFAULT_HOST, DEFAULT_PORT, EmbeddedServer, ServerConfig
from cerouter.service.router import Router, RouterOptions
from cerouter.validation.registry import SchemaRegistry

log = structlog.get_logger("cerouter")


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


def load(path: Path) -> tuple[RouterConfig, SchemaRegistry | None]:
    """Load routes.yaml and its schemas; raise the first :class:`ConfigError`."""
    result = check_config(path)
    if result.errors:
        raise result.errors[0]
    assert result.config is not None  # no errors means a config was built
    return result.config, result.registry


def run(
    routes: Annotated[Path, typer.Option(help="The routes file.")] = Path("routes.yaml"),
    nats_url: NatsUrlOption = None,
    port: Annotated[int, typer.Option(help="Embedded server's client port.")] = DEFAULT_PORT,
    store_dir: Annotated[Path, typer.Option(help="Embedded server's JetStream store.")] = Path(
        ".cerouter/jetstream"
    ),
    watch: Annotated[
        bool, typer.Option(help="Reload when routes.yaml or a schema changes.")
    ] = False,
    max_hops: Annotated[int, typer.Option(help="Dead-letter a message forwarded this often.")] = 8,
    log_format: Annotated[str, typer.Option(help="auto, json or console.")] = "auto",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Route CloudEvents as routes.yaml says (SIGHUP reloads it; Ctrl-C stops cleanly).

    With no --nats-url (and no nats.urls in routes.yaml) it starts its own nats-server with
    JetStream on 127.0.0.1:4222, the URL `publish`, `sub` and `worker` use by default.
    """
    if log_format not in ("auto", "json", "console"):
        fail("run", f"--log-format {log_format!r}: expected auto, json or console", 2)
    configure_logging(log_format, log_level)  # type: ignore[arg-type]
    try:
        config, registry = load(routes)
    except ConfigError as exc:
        fail("run", str(exc), 2)
    # The default URL means "the embedded server", wherever it was written; any other URL
    # means an existing server or cluster.
    external = tuple(nats_url or config.nats.urls) != (DEFAULT_NATS_URL,)
    if external and port != DEFAULT_PORT:
        fail(
            "run",
            "--port is for the embedded server, but a NATS URL was given (--nats-url, "
            "CEROUTER_NATS_URL or nats.urls in routes.yaml), so cerouter connects there instead",
            2,
        )
    server = None if external else EmbeddedServer(ServerConfig(DEFAULT_HOST, port, store_dir))
    options = RouterOptions(
        urls=tuple(nats_url) if external and nats_url else None, max_hops=max_hops
    )
    try:
        # Taken right after loading, so a change made while the router starts is not missed.
        baseline = _fingerprint(routes, config.schemas.directory) if watch else None
        run_loop(_serve(routes, config, registry, options, server, baseline))
    except CerouterError as exc:
        fail("run", str(exc).splitlines()[0])
    except KeyboardInterrupt:  # a second Ctrl-C while draining
        raise typer.Exit(130) from None


async def _serve(
    path: Path,
    config: RouterConfig,
    registry: SchemaRegistry | None,
    options: RouterOptions,
    server: EmbeddedServer | None,
    baseline: Fingerprint | None,
) -> None:
    if server is not None:
        await server.__aenter__()
        options = RouterOptions(**{**options.__dict__, "urls": (server.url,)})
        note(f"embedded nats-server at {server.url} (JetStream store: {server.store_dir})")
    try:
        router = Router(config, registry, options)
        await router.start()
        try:
            url = router.nc.connected_url.geturl() if router.nc.connected_url else "?"
            ready = f"cerouter routing {len(config.routes)} routes from {path}; publish to {url}"
            await _wait(router, path, baseline, ready)
        finally:
            await router.stop()
    finally:
        if server is not None:
            await server.__aexit__(None, None, None)


async def _wait(router: Router, path: Path, baseline: Fingerprint | None, ready: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reload = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    note(ready)  # only now: a SIGHUP or SIGTERM sent on seeing this line must not kill us
    watcher = (
        asyncio.create_task(_watch(path, router, reload, baseline))
        if baseline is not None
        else None
    )
    try:
        while not stop.is_set():
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(reload.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if reload.is_set() and not stop.is_set():
                reload.clear()
                await _reload(router, path)
    finally:
        if watcher is not None:
            watcher.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    log.info("stopping: draining in-flight events")


async def _reload(router: Router, path: Path) -> None:
    try:
        config, registry = await asyncio.to_thread(load, path)
        await router.reload(config, registry)
    except Exception as exc:  # whatever went wrong, the running configuration must survive
        log.error(
            "reload rejected; the previous configuration stays in force",
            error=str(exc) or type(exc).__name__,
        )


Fingerprint = tuple[tuple[str, float], ...]


def _fingerprint(path: Path, schemas: Path) -> Fingerprint:
    files = (
        [path, *sorted(p for p in schemas.rglob("*") if p.is_file())]
        if schemas.is_dir()
        else [path]
    )
    out: list[tuple[str, float]] = []
    for file in files:
        with contextlib.suppress(OSError):
            out.append((str(file), file.stat().st_mtime))
    return tuple(out)


async def _watch(path: Path, router: Router, reload: asyncio.Event, last: Fingerprint) -> None:
    # Polling keeps this dependency-free; a change is picked up within a second.
    while True:
        await asyncio.sleep(1.0)
        now = _fingerprint(path, router.config.schemas.directory)
        if now != last:
            last = now
            reload.set()
