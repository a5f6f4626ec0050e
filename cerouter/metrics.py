"""Metric primitives shared by the router and the worker: counted cheaply, exported at scrape time.

The hot path never touches prometheus_client: it adds to plain ints (``collections.Counter``,
:class:`Histogram`), and a custom ``Collector`` turns them into metric families only when
``/metrics`` is scraped. A prometheus_client ``Counter.labels(...).inc()`` takes a lock and costs
about 1.6 µs on this project's machine; a ``Counter`` increment here costs about 0.1 µs.

Every registry is an object of its own (one per router, one per worker): nothing is registered
in prometheus_client's global default registry, so several routers can run in one process.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from cerouter import __version__

PREFIX: Final = "cerouter_"

Key = TypeVar("Key", bound=tuple[str, ...])  # label values, in the order of the label names

LATENCY_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Seconds, from 100 µs (a core publish) to 10 s (a JetStream ack timeout)."""


class Histogram:
    """Observations in fixed buckets, as plain ints: ``observe`` is one ``bisect`` and two adds.

    Not thread-safe, and need not be: everything that observes runs on one event loop.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (``le`` is inclusive, as Prometheus buckets are)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """How many observations were made."""
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative ``(le, count)`` pairs, ending with ``+Inf``, as Prometheus exposes them."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(total)))
        return out


def counter(
    name: str, doc: str, labels: Sequence[str], values: Mapping[Key, float]
) -> CounterMetricFamily:
    """A counter family (``name`` without ``cerouter_`` and ``_total``) from label tuples."""
    family = CounterMetricFamily(PREFIX + name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(key, value)
    return family


def gauge(
    name: str, doc: str, labels: Sequence[str], values: Mapping[Key, float]
) -> GaugeMetricFamily:
    """A gauge family (``name`` without ``cerouter_``) from label tuples."""
    family = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(key, value)
    return family


def histogram(
    name: str, doc: str, labels: Sequence[str], values: Iterable[tuple[tuple[str, ...], Histogram]]
) -> HistogramMetricFamily:
    """A histogram family (``name`` without ``cerouter_``) from label tuples and histograms."""
    family = HistogramMetricFamily(PREFIX + name, doc, labels=labels)
    for key, hist in values:
        family.add_metric(key, hist.buckets(), hist.sum)
    return family


def build_info() -> GaugeMetricFamily:
    """``cerouter_build_info{version="..."} 1``: join it to other series to see the version."""
    return gauge(
        "build_info", "The running cerouter version (always 1).", ["version"], {(__version__,): 1}
    )


def with_zeros(known: Iterable[str], counts: Mapping[str, int]) -> dict[tuple[str, ...], float]:
    """``counts`` keyed by one-label tuples, every ``known`` value present (0 when never seen):
    a series that exists from the start makes ``rate()`` and alerts work on the first event."""
    out: dict[tuple[str, ...], float] = {(k,): 0.0 for k in known}
    out.update({(k,): float(v) for k, v in counts.items()})
    return out
