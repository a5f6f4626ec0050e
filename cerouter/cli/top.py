"""``cerouter top``: a router's counters and rates, refreshed in place, read over NATS.

It requests the router's micro service endpoint ``stats`` (:mod:`cerouter.service.micro`) every
``--interval`` and renders what the live page shows: the routes with their deliveries, failures
and rates, the outcomes, the dead-letter reasons. ``--once`` prints one table (rates over one
interval) and exits: for scripts and tests. Several routers share the service's queue group, so
each request is answered by one of them (its counters are its own).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import typer
from nats.aio.client import Client
from nats.errors import NoRespondersError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cerouter.cli.support import (
    CredsOption,
    NatsRoutesOption,
    NatsUrlOption,
    PasswordOption,
    StoreDirOption,
    TokenOption,
    UserOption,
    fail,
    nats_settings,
)
from cerouter.config.model import NatsSettings
from cerouter.config.values import parse_duration
from cerouter.errors import CerouterError
from cerouter.nats.connection import connect_once
from cerouter.nats.local_auth import DEFAULT_STORE_DIR
from cerouter.service.micro import STATS_SUBJECT

REQUEST_TIMEOUT = 2.0

Snapshot = dict[str, Any]


def register(app: typer.Typer) -> None:
    """Add ``top`` to the main app."""
    app.command("top")(top)


def top(
    interval: Annotated[
        str, typer.Option(help="Time between two refreshes (1s, 500ms...).")
    ] = "1s",
    once: Annotated[
        bool, typer.Option("--once", help="Print one table (rates over one interval) and exit.")
    ] = False,
    nats_url: NatsUrlOption = None,
    routes: NatsRoutesOption = None,
    creds: CredsOption = None,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
    store_dir: StoreDirOption = DEFAULT_STORE_DIR,
) -> None:
    """Show a running router's routes, counters and rates, refreshed in place (Ctrl-C quits)."""
    try:
        seconds = parse_duration(interval)
    except ValueError as exc:
        fail("top", f"--interval: {exc}", 2)
    if seconds <= 0:
        fail("top", "--interval must be more than 0", 2)
    settings = nats_settings(
        "top", urls=nats_url, routes=routes, creds=creds, token=token, user=user,
        password=password, name="cerouter-top", store_dir=store_dir,
    )  # fmt: skip
    try:
        asyncio.run(_top(settings, seconds, once))
    except CerouterError as exc:
        fail("top", str(exc))
    except KeyboardInterrupt:
        pass


async def _top(settings: NatsSettings, seconds: float, once: bool) -> None:
    nc = await connect_once(settings)
    try:
        where = nc.connected_url.geturl() if nc.connected_url else ""
        previous = await request_stats(nc, where)
        if once:
            await asyncio.sleep(seconds)
            console = Console(width=None if Console().is_terminal else 160)
            console.print(render(await request_stats(nc, where), previous, where))
            return
        with Live(render(previous, None, where), auto_refresh=False) as live:
            while True:
                await asyncio.sleep(seconds)
                current = await request_stats(nc, where)
                live.update(render(current, previous, where), refresh=True)
                previous = current
    finally:
        await nc.close()


async def request_stats(nc: Client, where: str) -> Snapshot:
    """One snapshot from whichever router answers on :data:`STATS_SUBJECT`."""
    try:
        reply = await nc.request(STATS_SUBJECT, b"", timeout=REQUEST_TIMEOUT)
    except NoRespondersError:
        raise CerouterError(f"no cerouter router answers on {where} ({STATS_SUBJECT})") from None
    except TimeoutError:
        raise CerouterError(f"no stats from {where} within {REQUEST_TIMEOUT:g}s") from None
    snapshot: Snapshot = orjson.loads(reply.data)
    return snapshot


def _rate(now: int, before: int | None, seconds: float) -> str:
    if before is None or seconds <= 0:
        return "-"
    return f"{(now - before) / seconds:.1f}"


def render(snapshot: Snapshot, previous: Snapshot | None, where: str) -> Group:
    """The tables of one snapshot, with rates against ``previous`` (``-`` without one)."""
    seconds = snapshot["time"] - previous["time"] if previous is not None else 0.0
    old_routes = {r["name"]: r for r in previous["routes"]} if previous is not None else {}
    old_outcomes: dict[str, int] = previous["outcomes"] if previous is not None else {}
    routes = Table(title="routes", title_justify="left")
    for name in ("route", "match", "destinations"):
        routes.add_column(name)
    for name in ("deliveries", "/s", "failed"):
        routes.add_column(name, justify="right")
    for route in snapshot["routes"]:
        before = old_routes.get(route["name"], {}).get("deliveries")
        routes.add_row(
            Text(route["name"]),
            Text(route["match"]),
            Text("\n".join(route["to"])),
            str(route["deliveries"]),
            _rate(route["deliveries"], before, seconds),
            str(route["failures"]),
        )
    outcomes = Table(title="outcomes", title_justify="left")
    outcomes.add_column("outcome")
    outcomes.add_column("events", justify="right")
    outcomes.add_column("/s", justify="right")
    for name, n in snapshot["outcomes"].items():
        outcomes.add_row(name, str(n), _rate(n, old_outcomes.get(name), seconds))
    reasons = Table(title="dead letters", title_justify="left")
    reasons.add_column("reason")
    reasons.add_column("events", justify="right")
    for name, n in snapshot["deadletter_reasons"].items():
        reasons.add_row(Text(name), str(n))
    header = Text(f"cerouter top: {where}, dead letters in {snapshot['deadletter_stream']}")
    return Group(header, routes, outcomes, reasons)
