"""The metric primitives without a server: histogram buckets, request modes, the SSE counters."""

from __future__ import annotations

from prometheus_client.registry import CollectorRegistry

from cerouter.gateway.counters import GatewayCollector, GatewayMetrics, request_mode
from cerouter.metrics import Histogram
from tests.metricskit import of_registry, value


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    hist = Histogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 1.0, 3.0):
        hist.observe(seconds)
    assert hist.buckets() == [("0.1", 2.0), ("1.0", 4.0), ("+Inf", 5.0)]
    assert hist.count == 5
    assert abs(hist.sum - 4.65) < 1e-9


def test_request_mode_reads_the_headers_as_the_binding_does() -> None:
    def mode(*headers: tuple[bytes, bytes]) -> str:
        return request_mode(list(headers))

    assert mode((b"content-type", b"application/cloudevents+json; charset=utf-8")) == "structured"
    assert mode((b"content-type", b"Application/CloudEvents-Batch+JSON")) == "batch"
    assert mode((b"content-type", b"application/json"), (b"ce-specversion", b"1.0")) == "binary"
    assert mode((b"content-type", b"text/plain")) == "other"
    assert mode() == "other"


def test_sse_counters_as_the_sse_endpoints_will_call_them() -> None:
    metrics = GatewayMetrics()
    registry = CollectorRegistry()
    registry.register(GatewayCollector(metrics, lambda: 3))
    metrics.sse_opened()
    metrics.sse_opened()
    metrics.sse_sent(5)
    metrics.sse_gap(missed=2)
    metrics.sse_closed()
    samples = of_registry(registry)
    assert value(samples, "cerouter_sse_clients") == 1
    assert value(samples, "cerouter_sse_streams_total") == 2
    assert value(samples, "cerouter_sse_events_total") == 5
    assert value(samples, "cerouter_sse_gaps_total") == 1
    assert value(samples, "cerouter_sse_missed_events_total") == 2
    assert value(samples, "cerouter_http_inflight_requests") == 3
