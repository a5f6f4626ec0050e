"""Nothing acked that was not delivered: a failed flush retries the events it covered."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client

from cerouter.service.stats import Outcome
from tests.routerkit import Inbox, event, eventually, running_router, write_routes

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress:
  jetstream:
    - {stream: EVENTS, durable: routers, ack_wait: 5s, max_deliver: 5}
streams:
  - {name: EVENTS, subjects: [events.>]}
routes:
  - name: notify
    match: {type: com.example.thing}
    to: {subject: out.things}
"""


async def test_a_failed_flush_is_a_retry_not_an_ack(
    tmp_path: Path, nc: Client, nats_url: str
) -> None:
    routes = write_routes(tmp_path, ROUTES)
    out = await Inbox.on(nc, "out.things")
    async with running_router(nats_url, routes, retry_initial=0.05, retry_max=0.1) as router:
        real_flush = router.nc.flush
        failures: list[int] = []

        async def flush_failing_once(timeout: int = 10) -> None:  # noqa: ASYNC109 - nats-py's
            if not failures:
                failures.append(1)
                # As when the connection drops between publishing and flushing.
                raise ConnectionResetError("connection lost before the flush")
            await real_flush(timeout=timeout)

        router.nc.flush = flush_failing_once  # type: ignore[method-assign]
        await nc.jetstream().publish(
            "events.one",
            orjson.dumps(event("com.example.thing", id_="f-1", data={"n": 1})),
            headers={"Content-Type": "application/cloudevents+json"},
        )

        async def routed() -> bool:
            return router.stats.outcomes[Outcome.ROUTED] == 1

        await eventually(routed, what="the event routed after its retry")
        assert failures == [1]
        assert router.stats.outcomes[Outcome.RETRIED] == 1

        async def acked() -> bool:
            info = await nc.jetstream().consumer_info("EVENTS", "routers")
            return bool(info.num_ack_pending == 0 and info.num_pending == 0)

        await eventually(acked, what="the event acked")
        # At least once: the first attempt's publish may have left before the flush failed.
        assert 1 <= len(await out.wait(1)) <= 2
