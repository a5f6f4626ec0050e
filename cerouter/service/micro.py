"""The router as a NATS micro service: ``cerouter top`` (and ``nats micro``) ask it for stats.

Every router registers the service ``cerouter`` (nats-py's :mod:`nats.micro`, so ``nats micro ls``,
``nats micro info cerouter`` and ``nats micro stats cerouter`` list it) with one endpoint,
``stats``, on the subject :data:`STATS_SUBJECT`: a request with any body is answered with the
JSON snapshot of :func:`~cerouter.service.stats.stats_snapshot`. Routers share the micro
service's queue group, so one request is answered by one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service

from cerouter import __version__

SERVICE_NAME = "cerouter"
STATS_SUBJECT = "cerouter.stats"
"""Where the ``stats`` endpoint listens (``cerouter top`` requests it)."""


async def start_stats_service(nc: Client, snapshot: Callable[[], dict[str, Any]]) -> Service:
    """Register the ``cerouter`` service on ``nc``; stop it with ``await service.stop()``."""

    async def stats(request: Request) -> None:
        await request.respond(orjson.dumps(snapshot()))

    service = await add_service(
        nc,
        name=SERVICE_NAME,
        version=__version__,
        description="cerouter: a CloudEvents router",
    )
    await service.add_endpoint(name="stats", subject=STATS_SUBJECT, handler=stats)
    return service
