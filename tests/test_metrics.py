"""GET /metrics: exact values after a known traffic mix, bounded labels, JetStream lag, switches.

Real nats-server, real uvicorn on loopback, httpx as producer and scraper; the exposition is
parsed with prometheus_client's own parser.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from nats.aio.client import Client

from cerouter import __version__
from cerouter.config.load import load_router_config
from cerouter.errors import CerouterError
from cerouter.service.core import RouterOptions
from cerouter.service.serve import serve
from tests.metricskit import Samples, label_values, of_registry, scrape, value
from tests.routerkit import (
    Inbox,
    event,
    eventually,
    publish,
    running_gateway,
    running_router,
    stream_count,
    write_routes,
)

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
ingress: {core: {subjects: [in.>]}}
streams:
  - {name: OUT, subjects: [out.>]}
schemas:
  types: {com.example.thing: thing.json}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: things.out}
  - name: stored
    match: {type: com.example.stored}
    to: {stream: OUT, subject: out.stored}
  - name: ask
    match: {type: com.example.question}
    to: {request: nobody.home, timeout: 0.2s}
http:
  listen: 127.0.0.1:0
  batch: {max_events: 5}
"""

# What must never become a label: every event of the mix carries these.
SECRET_SOURCE = "/secret-source"
SECRET_SUBJECT = "in.secret-subject"

ALLOWED_LABELS = {
    # cerouter's own
    "ingress", "mode", "outcome", "reason", "route", "kind", "schema", "code", "version",
    "stream", "durable", "le",
    # prometheus_client's process and platform collectors
    "generation", "implementation", "major", "minor", "patchlevel",
}  # fmt: skip


def url_of(nc: Client) -> str:
    """The URL of the server ``nc`` is connected to."""
    assert nc.connected_url is not None
    return nc.connected_url.geturl()


def thing(id_: str, n: int, type_: str = "com.example.thing") -> dict[str, object]:
    """A structured event with a secret id and source (neither may show up in a label)."""
    return event(type_, f"secret-id-{id_}", source=SECRET_SOURCE, data={"n": n})


async def test_a_known_traffic_mix_gives_exact_counters(nc: Client, tmp_path: Path) -> None:
    routes = write_routes(tmp_path, ROUTES)
    async with running_gateway(url_of(nc), routes) as service:
        router, gateway = service.router, service.gateway
        assert gateway is not None
        out = await Inbox.on(nc, "things.out")
        # Core NATS: 3 routed, 2 schema failures, 1 unrouted, 1 into a stream, 1 whose
        # request destination has no responder (a delivery failure, dead-lettered).
        for i in range(3):
            await publish(nc, SECRET_SUBJECT, thing(f"ok{i}", i))
        for i in range(2):
            await publish(nc, SECRET_SUBJECT, thing(f"bad{i}", -1))
        await publish(nc, SECRET_SUBJECT, thing("lost", 1, "com.example.nothing"))
        await publish(nc, SECRET_SUBJECT, thing("kept", 1, "com.example.stored"))
        await publish(nc, SECRET_SUBJECT, thing("asked", 1, "com.example.question"))
        # HTTP: structured, binary, a batch of two, and one that is not a CloudEvent.
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            structured = {"content-type": "application/cloudevents+json"}
            body = orjson.dumps(thing("h1", 1))
            assert (await http.post("/events", content=body, headers=structured)).status_code == 202
            binary = {
                "ce-specversion": "1.0", "ce-id": "secret-id-h2", "ce-source": SECRET_SOURCE,
                "ce-type": "com.example.thing", "content-type": "application/json",
            }  # fmt: skip
            response = await http.post("/events", content=b'{"n": 2}', headers=binary)
            assert response.status_code == 202
            batch = orjson.dumps([thing("h3", 3), thing("h4", 4)])
            batched = {"content-type": "application/cloudevents-batch+json"}
            assert (await http.post("/events", content=batch, headers=batched)).status_code == 207
            plain = {"content-type": "text/plain"}
            assert (await http.post("/events", content=b"hi", headers=plain)).status_code == 415
        await out.wait(7)
        url = service.metrics_url
        assert url == f"{gateway.url}/metrics"

        async def settled() -> bool:
            samples, _ = await scrape(url)
            done = value(samples, "cerouter_events_total", outcome="deadlettered") == 4
            return done and value(samples, "cerouter_inflight_events") == 0

        await eventually(settled, what="four dead letters and nothing in flight")
        assert await stream_count(nc, "OUT") == 1
        samples, text = await scrape(url)

    def total(name: str, **labels: str) -> float:
        return value(samples, f"cerouter_{name}_total", **labels)

    assert total("events_received", ingress="core", mode="structured") == 8
    assert total("events_received", ingress="http", mode="structured") == 3  # 1 + 2 in a batch
    assert total("events_received", ingress="http", mode="binary") == 1
    assert total("events", outcome="routed") == 8  # 3 + stored + 4 over HTTP
    assert total("events", outcome="deadlettered") == 4
    assert total("events", outcome="delivery_failed") == 1
    assert total("events", outcome="dropped") == 0  # every outcome is there from the start
    assert total("deadletters", reason="schema") == 2
    assert total("deadletters", reason="unrouted") == 1
    assert total("deadletters", reason="delivery") == 1
    assert total("deliveries", route="things", kind="subject") == 7
    assert total("deliveries", route="stored", kind="stream") == 1
    assert total("deliveries", route="ask", kind="request") == 1
    assert total("delivery_failures", route="ask", reason="delivery") == 1
    assert total("validation_failures", schema="thing.json") == 2
    assert value(samples, "cerouter_dispatch_duration_seconds_count") == 8  # == routed
    assert value(samples, "cerouter_dispatch_duration_seconds_bucket", le="+Inf") == 8
    assert value(samples, "cerouter_dispatch_duration_seconds_sum") > 0
    assert total("pipeline_seconds") > 0
    assert total("http_requests", mode="structured", code="202") == 1
    assert total("http_requests", mode="binary", code="202") == 1
    assert total("http_requests", mode="batch", code="207") == 1
    assert total("http_requests", mode="other", code="415") == 1
    assert value(samples, "cerouter_http_inflight_requests") == 0
    assert value(samples, "cerouter_sse_clients") == 0
    assert value(samples, "cerouter_build_info", version=__version__) == 1
    assert value(samples, "process_cpu_seconds_total") > 0
    assert router.stats.outcomes["routed"] == 8  # the log's counters agree
    _assert_bounded(samples, text)


def _assert_bounded(samples: Samples, text: str) -> None:
    names = {k for (_, labels) in samples for k, _ in labels}
    assert names <= ALLOWED_LABELS, names - ALLOWED_LABELS
    assert "secret" not in text, [line for line in text.splitlines() if "secret" in line]
    assert not any("/" in v for v in label_values(samples)), "a source or path in a label"


JS_ROUTES = """
ingress:
  jetstream: [{stream: EVENTS, durable: routers}]
streams:
  - {name: EVENTS, subjects: [ev.>]}
schemas:
  types: {com.example.thing: thing.json}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: things.out}
"""


async def test_jetstream_lag_shows_what_the_router_did_not_take(nc: Client, tmp_path: Path) -> None:
    routes = write_routes(tmp_path, JS_ROUTES)
    url = url_of(nc)
    js = nc.jetstream()
    async with running_router(url, routes, metrics_interval=0.05) as router:
        out = await Inbox.on(nc, "things.out")
        await js.publish("ev.thing", orjson.dumps(thing("a", 1)), headers=STRUCTURED)
        await js.publish("ev.thing", orjson.dumps(thing("b", -1)), headers=STRUCTURED)
        await out.wait(1)
        lag = {"stream": "EVENTS", "durable": "routers"}

        async def caught_up() -> bool:
            samples = of_registry(router.registry)
            messages = value(samples, "cerouter_deadletter_stream_messages", stream="DEADLETTER")
            pending = value(samples, "cerouter_jetstream_consumer_ack_pending_messages", **lag)
            return messages == 1 and pending == 0 and (samples.get(_key(lag)) == 0)

        await eventually(caught_up, what="nothing pending and one dead letter")
        for adapter in router.ingresses:  # the router stops consuming
            await adapter.stop(1.0)
        for i in range(4):
            await js.publish("ev.thing", orjson.dumps(thing(f"c{i}", i)), headers=STRUCTURED)

        async def lagging() -> bool:
            # A pull request still open when intake stopped may have taken some of them: those
            # are delivered but never acked (ack_pending), the rest are pending.
            samples = of_registry(router.registry)
            pending = samples.get(_key(lag), 0.0)
            unacked = value(samples, "cerouter_jetstream_consumer_ack_pending_messages", **lag)
            return pending + unacked == 4 and pending > 0

        await eventually(lagging, what="four messages pending or unacked for the durable")
        samples = of_registry(router.registry)
        assert value(samples, "cerouter_events_received_total", ingress="jetstream",
                     mode="structured") == 2  # fmt: skip
        assert value(samples, "cerouter_deadletter_stream_bytes", stream="DEADLETTER") > 0
        assert ("cerouter_jetstream_consumer_redelivered_messages", _labels(lag)) in samples
        assert value(samples, "cerouter_jetstream_info_errors_total") == 0


STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _key(labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("cerouter_jetstream_consumer_pending_messages", _labels(labels))


CORE_ROUTES = """
ingress: {core: {subjects: [in.>]}}
schemas:
  types: {com.example.thing: thing.json}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: things.out}
"""


async def test_metrics_only_server_serves_metrics_and_probes(nc: Client, tmp_path: Path) -> None:
    config, registry = load_router_config(write_routes(tmp_path, CORE_ROUTES))
    options = RouterOptions(urls=(url_of(nc),))
    async with serve(config, registry, options, signals=False, metrics=("127.0.0.1", 0)) as svc:
        assert svc.gateway is None
        assert svc.metrics is not None
        url = svc.metrics_url
        assert url == f"{svc.metrics.url}/metrics"
        out = await Inbox.on(nc, "things.out")
        await publish(nc, "in.x", thing("a", 1))
        await out.wait(1)
        samples, _ = await scrape(url)
        assert value(samples, "cerouter_events_total", outcome="routed") == 1
        async with httpx.AsyncClient(base_url=svc.metrics.url, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert (await http.get("/events")).status_code == 404  # no gateway here
            # OpenMetrics for a scraper that asks for it.
            accept = {"accept": "application/openmetrics-text; version=1.0.0"}
            response = await http.get("/metrics", headers=accept)
            assert response.headers["content-type"].startswith("application/openmetrics-text")
            assert response.text.endswith("# EOF\n")


async def test_metrics_on_the_gateways_address_start_no_second_server(
    nc: Client, tmp_path: Path
) -> None:
    config, registry = load_router_config(write_routes(tmp_path, ROUTES))
    assert config.http is not None
    options = RouterOptions(urls=(url_of(nc),))
    same = (config.http.host, config.http.port)
    async with serve(config, registry, options, signals=False, metrics=same) as svc:
        assert svc.metrics is None
        assert svc.gateway is not None
        samples, _ = await scrape(f"{svc.gateway.url}/metrics")
        assert value(samples, "cerouter_build_info", version=__version__) == 1


async def test_metrics_off_counts_outcomes_only_and_serves_no_registry(
    nc: Client, tmp_path: Path
) -> None:
    routes = write_routes(tmp_path, ROUTES)
    url = url_of(nc)
    async with running_gateway(url, routes, metrics=False) as service:
        router = service.router
        assert router.registry is None
        assert service.metrics_url is None
        out = await Inbox.on(nc, "things.out")
        await publish(nc, "in.x", thing("a", 1))
        await out.wait(1)
        assert router.stats.outcomes["routed"] == 1  # the log's counters stay
        assert not any(n for modes in router.stats.received.values() for n in modes.values())
        assert router.stats.dispatch.count == 0
        assert service.gateway is not None
        async with httpx.AsyncClient(base_url=service.gateway.url, timeout=10) as http:
            assert (await http.get("/metrics")).status_code == 404
    config, registry = load_router_config(routes)
    with pytest.raises(CerouterError, match="metrics"):
        async with serve(
            config, registry, RouterOptions(urls=(url,), metrics=False), signals=False,
            metrics=("127.0.0.1", 0),
        ):  # fmt: skip
            pass
