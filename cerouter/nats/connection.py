"""Connecting to NATS: one place that turns URLs and options into a nats-py client."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from typing import Any

import nats
from nats.aio.client import Client

from cerouter.config.model import NatsSettings, TlsSettings
from cerouter.errors import ServerError

DEFAULT_URL = "nats://127.0.0.1:4222"
URL_ENVVAR = "CEROUTER_NATS_URL"


async def _quiet(_: Exception) -> None:
    # nats-py logs every connection error itself; callers report failures in their own words.
    return None


def _cannot_connect(urls: Sequence[str], exc: Exception) -> ServerError:
    detail = str(exc) or type(exc).__name__
    return ServerError(
        f"cannot connect to {', '.join(urls)}: {detail} "
        "(is a server running? start one with `cerouter server` or `cerouter run`)"
    )


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
        raise _cannot_connect(urls, exc) from None


def _tls_context(tls: TlsSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.cert is not None:
        context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    return context


async def connect_service(
    settings: NatsSettings,
    *,
    urls: Sequence[str] | None = None,
    on_event: Callable[[str, str], None] | None = None,
) -> Client:
    """Connect a long-running service: reconnect forever with backoff, report each state change.

    ``on_event(state, detail)`` is called with ``disconnected``, ``reconnected``, ``closed`` and
    ``error``, so the caller logs them in its own structured way.
    """
    report = on_event or (lambda state, detail: None)

    async def disconnected() -> None:
        report("disconnected", "")

    async def reconnected() -> None:
        report("reconnected", str(nc.connected_url.geturl() if nc.connected_url else ""))

    async def closed() -> None:
        report("closed", "")

    async def error(exc: Exception) -> None:
        # Before the first connection, failures end in one ServerError below instead.
        if nc.is_connected or nc.is_reconnecting:
            report("error", str(exc) or type(exc).__name__)

    options: dict[str, Any] = {
        "servers": list(urls or settings.urls),
        "name": settings.name,
        "connect_timeout": settings.connect_timeout,
        "allow_reconnect": True,
        # nats-py's bound also applies to the first connection, where -1 would retry forever:
        # fail fast at start-up with one retry, then lift the bound (below) once connected.
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0.5,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "closed_cb": closed,
        "error_cb": error,
    }
    if settings.credentials is not None:
        options["user_credentials"] = str(settings.credentials)
    if settings.token is not None:
        options["token"] = settings.token
    if settings.user is not None:
        options["user"] = settings.user
        options["password"] = settings.password
    if settings.tls is not None:
        options["tls"] = _tls_context(settings.tls)
    nc = Client()
    try:
        await nc.connect(**options)
    except Exception as exc:  # nats-py raises several unrelated types for "cannot connect"
        raise _cannot_connect(options["servers"], exc) from None
    nc.options["max_reconnect_attempts"] = -1  # a router outlives any server restart
    return nc


async def full_flush(nc: Client) -> None:
    """Return once the server has processed every command sent on ``nc`` so far.

    ``Client.flush()`` alone does not promise that for a subscription just made: nats-py 2.16
    writes its PING straight to the socket, ahead of the SUB still queued for its flusher task,
    so the PONG can come back before the server registered the subscription (and a message
    another connection publishes then is lost).  The flusher has written the SUB by the time
    that PONG is read, so a second PING goes out behind it and its PONG comes back after it.
    """
    await nc.flush()
    await nc.flush()
