"""Connecting to NATS: one place that turns URLs and options into a nats-py client."""

from __future__ import annotations

from collections.abc import Sequence

import nats
from nats.aio.client import Client

from cerouter.errors import ServerError

DEFAULT_URL = "nats://127.0.0.1:4222"
URL_ENVVAR = "CEROUTER_NATS_URL"


async def _quiet(_: Exception) -> None:
    # nats-py logs every connection error itself; callers report failures in their own words.
    return None


async def connect_once(urls: Sequence[str], *, name: str, connect_timeout: float = 2.0) -> Client:
    """Connect for a short-lived command: no reconnects, a clear error when nobody answers."""
    try:
        return await nats.connect(
            servers=list(urls),
            name=name,
            connect_timeout=connect_timeout,
            allow_reconnect=False,
            # 0 would mean "forever" in nats-py; 1 tries each server once more, then gives up.
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=_quiet,
        )
    except Exception as exc:  # nats-py raises several unrelated types for "cannot connect"
        where = ", ".join(urls)
        detail = str(exc) or type(exc).__name__
        raise ServerError(
            f"cannot connect to {where}: {detail} "
            "(is a server running? start one with `cerouter server` or `cerouter run`)"
        ) from None
