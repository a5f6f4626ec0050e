"""The router's Prometheus metrics: a collector over :class:`~cerouter.service.stats.Stats`.

The hot path only adds to plain ints in ``Stats``; :class:`RouterCollector` reads them when
``/metrics`` is scraped. JetStream state (consumer lag, dead-letter stream depth) needs a
request to the server, so :class:`JetStreamWatch` asks every ``metrics_interval`` seconds in a
task of its own and a scrape reads its cache: a scrape never waits for NATS.

Labels are bounded by the configuration (route names, schema files, streams and durables) or
by closed sets (outcomes, reasons, destination kinds, ingress kinds, modes): never an event's
id, subject or source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from nats.js.client import JetStreamContext
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from cerouter.binding import DecodedEvent
from cerouter.log import get_logger
from cerouter.metrics import build_info, counter, gauge, histogram, with_zeros
from cerouter.pipeline import Pipeline, Rejection
from cerouter.service.stats import Outcome, Stats
from cerouter.types import Reason, Stage

log = get_logger("cerouter.metrics")

NO_SCHEMA = "(none)"
"""The ``schema`` label of a data failure with no schema (``schemas.unknown: reject``)."""

OUTCOMES = (
    Outcome.ROUTED,
    Outcome.DROPPED,
    Outcome.DEADLETTERED,
    Outcome.RETRIED,
    Outcome.ABANDONED,
    Outcome.DELIVERY_FAILED,
    Outcome.DEADLETTER_FAILED,
)
"""The ``outcome`` label of ``cerouter_events_total`` (``received`` has a metric of its own)."""

ROUTER_REASONS = tuple(str(r) for r in Reason if r is not Reason.HANDLER)


def failed_schema(
    pipeline: Pipeline, event: DecodedEvent | None, rejection: Rejection
) -> str | None:
    """The schema file a rejection's data failed (``None``: not a data failure).

    The rare path, for a rejected event only: the pipeline stays pure and reports no schema,
    so it is looked up again here, as the pipeline found it (a route's ``schema:`` first).
    """
    report = rejection.report
    if event is None or report is None or all(p.stage != Stage.DATA for p in report.problems):
        return None  # an envelope-only rejection names no schema
    ref = None
    if rejection.route is not None:
        routes = pipeline.config.routes
        ref = next((r.schema for r in routes if r.name == rejection.route), None)
    schema = pipeline.validator.schema_for(event.attributes, ref)
    return schema.relpath if schema is not None else NO_SCHEMA


@dataclass(frozen=True, slots=True)
class ConsumerLag:
    """One durable consumer as the server last reported it."""

    pending: int  # in the stream, not yet delivered to any router
    ack_pending: int  # delivered, not yet acknowledged
    redelivered: int  # delivered more than once, not yet acknowledged


class JetStreamWatch:
    """Reads consumer lag and dead-letter stream depth in the background, for scrapes to read.

    ``consumers`` are the ``(stream, durable)`` pairs of the JetStream ingresses; ``deadletter``
    names the dead-letter stream in force (a reload may change it).
    """

    def __init__(
        self,
        js: JetStreamContext,
        consumers: Sequence[tuple[str, str]],
        deadletter: Callable[[], str],
        *,
        interval: float,
        timeout: float = 2.0,
    ) -> None:
        self._js = js
        self._consumers = tuple(consumers)
        self._deadletter = deadletter
        self.interval = interval
        self._timeout = timeout
        self.lag: dict[tuple[str, str], ConsumerLag] = {}
        self.depth: dict[str, tuple[int, int]] = {}  # stream -> (messages, bytes)
        self.errors = 0

    async def refresh(self) -> None:
        """Ask the server once; what it does not answer is dropped (no stale gauge)."""
        for stream, durable in self._consumers:
            try:
                info = await self._js.consumer_info(stream, durable, timeout=self._timeout)
            except Exception as exc:
                self._failed(f"consumer {stream}/{durable}", exc)
                self.lag.pop((stream, durable), None)
                continue
            self.lag[(stream, durable)] = ConsumerLag(
                info.num_pending or 0, info.num_ack_pending or 0, info.num_redelivered or 0
            )
        name = self._deadletter()
        try:
            state = (await asyncio.wait_for(self._js.stream_info(name), self._timeout)).state
        except Exception as exc:
            self._failed(f"stream {name}", exc)
            self.depth.clear()
            return
        self.depth = {name: (state.messages, state.bytes)}

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        log.debug("jetstream info for metrics failed", what=what, error=str(exc) or repr(exc))

    async def run(self) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)


class RouterCollector(Collector):
    """Turns one router's counters into metric families at scrape time (never awaits)."""

    def __init__(
        self, stats: Stats, inflight: Callable[[], int], watch: Callable[[], JetStreamWatch | None]
    ) -> None:
        self._stats = stats
        self._inflight = inflight
        self._watch = watch

    def collect(self) -> Iterator[Metric]:
        """Every router metric, read from the counters as they are now."""
        stats = self._stats
        yield build_info()
        received = {  # an ingress shows once it took a message, then with every mode
            (ingress, str(mode)): float(n)
            for ingress, modes in stats.received.items()
            if any(modes.values())
            for mode, n in modes.items()
        }
        yield counter(
            "events_received",
            "Messages taken in, by ingress (core, jetstream, http) and content mode.",
            ["ingress", "mode"],
            received,
        )
        yield counter(
            "events",
            "What became of the events: routed, dropped, deadlettered, retried, abandoned; "
            "delivery_failed counts failed deliveries, deadletter_failed refused dead letters.",
            ["outcome"],
            with_zeros(OUTCOMES, {k: v for k, v in stats.outcomes.items() if k in OUTCOMES}),
        )
        yield counter(
            "deadletters",
            "Dead letters stored, by reason.",
            ["reason"],
            with_zeros(ROUTER_REASONS, {str(k): v for k, v in stats.reasons.items()}),
        )
        yield counter(
            "deliveries",
            "Deliveries started (every attempt), by route and destination kind.",
            ["route", "kind"],
            {k: float(v) for k, v in stats.deliveries.items()},
        )
        yield counter(
            "delivery_failures",
            "Deliveries that failed, by route and dead-letter reason.",
            ["route", "reason"],
            {(route, str(why)): float(n) for (route, why), n in stats.delivery_failures.items()},
        )
        yield counter(
            "validation_failures",
            "Events whose data failed its JSON Schema, by schema file.",
            ["schema"],
            {(k,): float(v) for k, v in stats.invalid.items()},
        )
        yield histogram(
            "dispatch_duration_seconds",
            "Seconds from intake until every destination accepted the event (routed events).",
            [],
            [((), stats.dispatch)],
        )
        yield counter(
            "pipeline_seconds",
            "Seconds spent deciding (decode, validate, match): synchronous, so CPU time; "
            "divide by cerouter_events_received_total for the cost per event.",
            [],
            {(): stats.pipeline_seconds},
        )
        yield gauge(
            "inflight_events",
            "Fire-and-forget events waiting for their deliveries to be acknowledged.",
            [],
            {(): float(self._inflight())},
        )
        watch = self._watch()
        if watch is not None:
            yield from _jetstream(watch)


def _jetstream(watch: JetStreamWatch) -> Iterator[Metric]:
    lag = watch.lag
    for name, doc, value in (
        ("pending", "Messages in the stream not yet delivered to a router.", "pending"),
        ("ack_pending", "Messages delivered to routers, not yet acknowledged.", "ack_pending"),
        ("redelivered", "Messages delivered more than once, not yet acknowledged.", "redelivered"),
    ):
        yield gauge(
            f"jetstream_consumer_{name}_messages",
            f"{doc} Per durable consumer, read every metrics_interval seconds.",
            ["stream", "durable"],
            {key: float(getattr(item, value)) for key, item in lag.items()},
        )
    yield gauge(
        "deadletter_stream_messages",
        "Messages in the dead-letter stream.",
        ["stream"],
        {(k,): float(v[0]) for k, v in watch.depth.items()},
    )
    yield gauge(
        "deadletter_stream_bytes",
        "Bytes in the dead-letter stream.",
        ["stream"],
        {(k,): float(v[1]) for k, v in watch.depth.items()},
    )
    yield counter(
        "jetstream_info_errors",
        "Requests for consumer or stream info (for these gauges) that failed.",
        [],
        {(): float(watch.errors)},
    )
