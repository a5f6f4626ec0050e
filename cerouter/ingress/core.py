"""Core NATS ingress: subjects consumed in a queue group, so N routers share the load.

At-most-once, as core NATS is: an :class:`~cerouter.types.Inbound` from here has no settler, so
the router cannot retry it; what fails is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cerouter.config.model import CoreIngress as CoreSpec
from cerouter.ingress.base import InboundHandler
from cerouter.types import Inbound

SYSTEM_PREFIXES = ("$JS.", "$SYS.", "$KV.", "$O.", "$SRV.")


def reply_to(reply: str) -> str | None:
    """A producer's reply subject, when it is one cerouter may answer on.

    Never a system subject: answering ``$JS.API.STREAM.DELETE.X`` with the router's
    permissions would do what the producer could not.
    """
    if not reply or reply.startswith(SYSTEM_PREFIXES):
        return None
    return reply


class CoreIngress:
    """Subscribe the declared subjects in the queue group and hand each message over."""

    def __init__(self, nc: Client, spec: CoreSpec, handle: InboundHandler) -> None:
        self.name = f"core {spec.queue}"
        self.spec = spec
        self._nc = nc
        self._handle = handle
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        """Subscribe every subject."""
        for subject in self.spec.subjects:
            sub = await self._nc.subscribe(subject, queue=self.spec.queue, cb=self._on_message)
            self._subs.append(sub)

    async def _on_message(self, msg: Msg) -> None:
        await self._handle(Inbound(msg.subject, msg.headers, msg.data, reply_to(msg.reply)))

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109 - a shutdown budget
        """Drain, not unsubscribe: messages already buffered for us are still routed."""
        drains = [asyncio.ensure_future(self._drain(sub)) for sub in self._subs]
        if drains:
            await asyncio.wait(drains, timeout=timeout)

    @staticmethod
    async def _drain(sub: Subscription) -> None:
        with contextlib.suppress(Exception):  # a closing connection has nothing left to drain
            await sub.drain()  # type: ignore[no-untyped-call]
