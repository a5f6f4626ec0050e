"""What the gateway's endpoints share: settings, the router's intake, NATS, and the stop signal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js.client import JetStreamContext

from cerouter.config.model import HttpSettings, StreamSpec
from cerouter.gateway.auth import Authenticator
from cerouter.gateway.counters import GatewayMetrics
from cerouter.ingress.base import SubmitHandler
from cerouter.ingress.http import ReplyInbox


@dataclass(frozen=True)
class GatewayContext:
    """Built once per gateway; endpoints find it on ``request.app.state.ctx``.

    ``submit`` is the router core's batch intake; ``ready`` what the readiness probe reports
    of the router; ``stopping`` is set when shutdown begins (streams end, probes turn 503);
    ``streams`` are routes.yaml's streams by name (the ones an SSE client may read).
    ``metrics`` holds the gateway's own counters (SSE endpoints count their streams there);
    ``snapshot`` the router's counters for the live page (:mod:`cerouter.gateway.live`).
    """

    settings: HttpSettings
    submit: SubmitHandler
    nc: Client
    js: JetStreamContext
    ready: Callable[[], bool]
    inbox: ReplyInbox
    auth: Authenticator
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1000))
    streams: Mapping[str, StreamSpec] = field(default_factory=dict)
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    snapshot: Callable[[], Mapping[str, Any]] | None = None
    feeds_nc: Client | None = None

    @property
    def feeds(self) -> tuple[Client, JetStreamContext]:
        """The connection event streams read through: one of their own when given, so that
        many clients replaying a stream at once cannot make the server drop the router's
        connection as a slow consumer."""
        if self.feeds_nc is None:
            return self.nc, self.js
        return self.feeds_nc, self.feeds_nc.jetstream()

    @property
    def max_body(self) -> int:
        """The largest body accepted: ``limits.max_body``, else the server's ``max_payload``."""
        return self.settings.limits.max_body or self.nc.max_payload

    @property
    def slots_in_use(self) -> int:
        """Requests holding one of the ``limits.max_inflight`` slots now (being routed)."""
        # asyncio.Semaphore shows its count only as _value; reading it is all /metrics needs.
        return max(0, self.settings.limits.max_inflight - self.slots._value)
