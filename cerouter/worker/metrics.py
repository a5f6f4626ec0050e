"""A worker's Prometheus metrics: its per-queue counters and handler durations, read at scrape time.

Each :class:`~cerouter.worker.Worker` has a registry of its own (:attr:`Worker.registry
<cerouter.worker.Worker.registry>`); ``cerouter worker --metrics HOST:PORT`` serves it. Labels are
the queue and the handler's qualified name: both fixed by the app's code, never by events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from cerouter.metrics import Histogram, build_info, counter, gauge, histogram
from cerouter.worker.spec import HandlerSpec, QueueSpec, WorkerStats

_DOCS = {
    "received": "Messages received.",
    "handled": "Events a handler returned for.",
    "failed": "Handler exceptions (each attempt).",
    "retried": "Durable events NAKed for another attempt after a failure.",
    "dead_lettered": "Events stored in the dead-letter stream.",
    "ignored": "Events no handler of the queue takes.",
    "undecodable": "Messages that are not CloudEvents.",
    "replied": "Replies sent to requests.",
    "emitted": "Events handlers returned, published to their emit subject.",
    "requeued": "Durable messages handed back unprocessed at shutdown.",
    "dropped": "Core messages given up at shutdown (handlers hung past the grace period).",
}


class WorkerCollector(Collector):
    """Families of ``cerouter_worker_<counter>_total{queue}`` and the handler durations."""

    def __init__(
        self,
        stats: Mapping[str, WorkerStats],
        durations: Callable[[], Mapping[tuple[str, str], Histogram]],
        tasks: Callable[[], int],
    ) -> None:
        self._stats = stats
        self._durations = durations
        self._tasks = tasks

    def collect(self) -> Iterator[Metric]:
        """Every worker metric, as counted so far."""
        yield build_info()
        for field in fields(WorkerStats):
            name = field.name.replace("dead_lettered", "deadlettered")
            yield counter(
                f"worker_{name}",
                f"{_DOCS.get(field.name, field.name)} Per queue.",
                ["queue"],
                {(queue,): float(getattr(s, field.name)) for queue, s in self._stats.items()},
            )
        yield histogram(
            "worker_handler_duration_seconds",
            "Seconds a handler ran for one event (returned or raised), per queue and handler.",
            ["queue", "handler"],
            sorted(self._durations().items()),
        )
        yield gauge(
            "worker_tasks",
            "Handler, reply and dead-letter tasks running now.",
            [],
            {(): float(self._tasks())},
        )


class WorkerMetrics:
    """A worker's registry (its own, never the global one) and what it counts beyond its stats.

    ``durations`` maps each handler to its histogram; handlers of one queue with the same name
    share one (the labels are the names). ``url`` is where ``GET /metrics`` answers, when
    :meth:`WorkerApp.serve <cerouter.worker.WorkerApp.serve>` serves it.
    """

    def __init__(
        self,
        queues: Sequence[QueueSpec],
        stats: Mapping[str, WorkerStats],
        tasks: Callable[[], int],
    ) -> None:
        by_name: dict[tuple[str, str], Histogram] = {}
        self.durations: dict[HandlerSpec, Histogram] = {
            spec: by_name.setdefault((q.name, spec.name), Histogram())
            for q in queues
            for spec in q.handlers
        }
        self.registry = CollectorRegistry()
        self.registry.register(WorkerCollector(stats, lambda: by_name, tasks))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.url: str | None = None
