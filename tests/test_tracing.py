"""OpenTelemetry traces: one trace from a producer through the router to a worker's handler, the
CloudEvents ``traceparent`` extension kept or added (and linked), HTTP ingress continuing the
client's trace, log lines carrying span ids, and nothing added with tracing off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest
import structlog
from cloudevents.core.v1.event import CloudEvent

from cerouter.log import add_trace_ids
from cerouter.worker import WorkerApp
from tests.routerkit import Inbox, event, eventually, publish, running_gateway, running_router
from tests.routerkit import write_routes as write

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk")
pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import (  # noqa: E402
    TraceContextTextMapPropagator,
)

pytestmark = pytest.mark.nats

ROUTES = """
ingress:
  core: {subjects: [in.>], queue: routers}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: "out.{type}"}
  - name: work
    match: {type: com.example.work}
    to: {queue: billing}
"""

GATEWAY_ROUTES = """
http: {listen: "127.0.0.1:0"}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: "out.{type}"}
"""

# A creation context of the producer's own (a valid W3C traceparent).
CREATED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def producer_span(provider: TracerProvider) -> tuple[Any, dict[str, str]]:
    """The test's own producer span and the transport headers that carry it."""
    span = provider.get_tracer("test").start_span("producer publish")
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, trace.set_span_in_context(span))
    span.end()
    return span, carrier


def ids(traceparent: str) -> tuple[str, str]:
    """The trace id and span id of a ``traceparent`` value (its flags vary with the SDK)."""
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def ids_of(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def finished(exporter: InMemorySpanExporter, name: str, count: int = 1) -> ReadableSpan:
    async def there() -> bool:
        return len(named(exporter, name)) >= count

    await eventually(there, within=10, what=f"span {name!r}")
    return named(exporter, name)[-1]


async def test_producer_router_and_worker_spans_form_one_trace(
    nats_url: str, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    app = WorkerApp("traced")
    handled = asyncio.Event()

    @app.handler("com.example.work", queue="billing")
    async def bill(event: CloudEvent) -> None:
        structlog.get_logger("test").info("billing")
        handled.set()

    routes = write(tmp_path, ROUTES)
    parent, carrier = producer_span(provider)
    stack = contextlib.ExitStack()
    worker_nc = await nats.connect(nats_url)
    nc = await nats.connect(nats_url)
    try:
        async with (
            app.run(worker_nc, tracer_provider=provider),
            running_router(nats_url, routes, tracer_provider=provider),
        ):
            logs = stack.enter_context(structlog.testing.capture_logs([add_trace_ids]))
            headers = {"Content-Type": "application/cloudevents+json", **carrier}
            await publish(nc, "in.work", event("com.example.work", "w-1"), headers=headers)
            await asyncio.wait_for(handled.wait(), 10)
            handler = await finished(exporter, "process work.billing")
    finally:
        stack.close()
        await nc.close()
        await worker_nc.close()
    router = named(exporter, "cerouter route")[-1]
    delivery = named(exporter, "publish work.billing")[-1]
    producer = parent.get_span_context()
    assert router.context is not None
    assert delivery.context is not None
    assert handler.context is not None
    trace_ids = {router.context.trace_id, delivery.context.trace_id, handler.context.trace_id}
    assert trace_ids == {producer.trace_id}
    assert router.parent is not None
    assert router.parent.span_id == producer.span_id
    assert delivery.parent is not None
    assert delivery.parent.span_id == router.context.span_id
    assert handler.parent is not None
    assert handler.parent.span_id == router.context.span_id  # the traceparent it got
    attributes = dict(router.attributes or {})
    assert attributes["messaging.system"] == "nats"
    assert attributes["messaging.operation"] == "process"
    assert attributes["cloudevents.event_id"] == "w-1"
    assert attributes["cloudevents.event_source"] == "/test"
    assert attributes["cloudevents.event_type"] == "com.example.work"
    assert attributes["cerouter.outcome"] == "routed"
    assert dict(delivery.attributes or {})["messaging.destination.name"] == "work.billing"
    assert dict(delivery.attributes or {})["messaging.operation"] == "publish"
    # The router added a creation context (there was none), and the worker's span links to it.
    assert [link.context.span_id for link in handler.links] == [router.context.span_id]
    # The handler's own log line carries its span's ids.
    [line] = [line for line in logs if line["event"] == "billing"]
    assert (line["trace_id"], line["span_id"]) == ids_of(handler)


async def test_traceparent_is_replaced_per_hop_and_the_extension_kept(
    nats_url: str, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    routes = write(tmp_path, ROUTES)
    _, carrier = producer_span(provider)
    nc = await nats.connect(nats_url)
    try:
        inbox = await Inbox.on(nc, "out.>")
        async with running_router(nats_url, routes, tracer_provider=provider):
            body = event("com.example.thing", "t-1", traceparent=CREATED, data={"n": 1})
            headers = {"Content-Type": "application/cloudevents+json", **carrier}
            await publish(nc, "in.x", body, headers=headers)
            [msg] = await inbox.wait(1)
            router = await finished(exporter, "cerouter route")
    finally:
        await nc.close()
    assert router.context is not None
    assert msg.headers is not None
    # The transport header is the router span's now, not the producer's.
    assert ids(msg.headers["traceparent"]) == ids_of(router)
    assert msg.headers["traceparent"] != carrier["traceparent"]
    # The extension is untouched, and linked.
    assert orjson.loads(msg.data)["traceparent"] == CREATED
    [link] = router.links
    assert f"{link.context.trace_id:032x}" == CREATED.split("-")[1]
    assert f"{link.context.span_id:016x}" == CREATED.split("-")[2]
    # Span names: templates, never the subject rendered from the event's type.
    names = {s.name for s in exporter.get_finished_spans()}
    assert "publish out.{type}" in names
    assert not any("com.example.thing" in name for name in names)


async def test_binary_event_without_extension_gets_ce_traceparent(
    nats_url: str, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    routes = write(tmp_path, ROUTES)
    nc = await nats.connect(nats_url)
    try:
        inbox = await Inbox.on(nc, "out.>")
        async with running_router(nats_url, routes, tracer_provider=provider):
            headers = {
                "ce-specversion": "1.0",
                "ce-id": "b-1",
                "ce-source": "/test",
                "ce-type": "com.example.thing",
                "Content-Type": "application/json",
            }
            await publish(nc, "in.x", b'{"n": 1}', headers=headers)
            [msg] = await inbox.wait(1)
            router = await finished(exporter, "cerouter route")
    finally:
        await nc.close()
    assert router.context is not None
    assert router.parent is None  # no transport traceparent: a trace of its own
    assert router.links == ()
    assert msg.headers is not None
    assert ids(msg.headers["ce-traceparent"]) == ids_of(router)  # the extension, added
    assert ids(msg.headers["traceparent"]) == ids_of(router)  # the transport header, separate
    assert msg.data == b'{"n": 1}'


async def test_structured_event_without_extension_gets_one(
    nats_url: str, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    routes = write(tmp_path, ROUTES)
    nc = await nats.connect(nats_url)
    try:
        inbox = await Inbox.on(nc, "out.>")
        async with running_router(nats_url, routes, tracer_provider=provider):
            await publish(nc, "in.x", event("com.example.thing", "s-1", data={"n": 1}))
            [msg] = await inbox.wait(1)
            router = await finished(exporter, "cerouter route")
    finally:
        await nc.close()
    assert router.context is not None
    body = orjson.loads(msg.data)
    assert ids(body["traceparent"]) == ids_of(router)
    assert body["data"] == {"n": 1}
    assert body["id"] == "s-1"


async def test_tracing_off_adds_nothing(nats_url: str, tmp_path: Path) -> None:
    routes = write(tmp_path, ROUTES)
    nc = await nats.connect(nats_url)
    try:
        inbox = await Inbox.on(nc, "out.>")
        async with running_router(nats_url, routes):
            body = event("com.example.thing", "o-1", data={"n": 1})
            await publish(nc, "in.x", body)
            [msg] = await inbox.wait(1)
    finally:
        await nc.close()
    assert msg.headers is not None
    assert "traceparent" not in {k.lower() for k in msg.headers}
    assert orjson.loads(msg.data) == body


async def test_http_ingress_continues_the_clients_trace(
    nats_url: str, tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    routes = write(tmp_path, GATEWAY_ROUTES)
    parent, carrier = producer_span(provider)
    nc = await nats.connect(nats_url)
    try:
        inbox = await Inbox.on(nc, "out.>")
        async with running_gateway(nats_url, routes, tracer_provider=provider) as service:
            assert service.gateway is not None
            async with httpx.AsyncClient() as http:
                response = await http.post(
                    f"{service.gateway.url}/events",
                    content=orjson.dumps(event("com.example.thing", "h-1", data={"n": 1})),
                    headers={"content-type": "application/cloudevents+json", **carrier},
                )
            assert response.status_code < 300, response.text
            [msg] = await inbox.wait(1)
            router = await finished(exporter, "cerouter route")
    finally:
        await nc.close()
    assert router.context is not None
    assert router.parent is not None
    assert router.context.trace_id == parent.get_span_context().trace_id
    assert router.parent.span_id == parent.get_span_context().span_id
    assert dict(router.attributes or {})["cerouter.ingress"] == "http"
    assert msg.headers is not None
    assert msg.headers["traceparent"].split("-")[2] == f"{router.context.span_id:016x}"


def test_log_lines_inside_a_span_carry_its_ids(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    from cerouter.tracing import Tracing

    provider, _ = spans
    Tracing(provider)  # turns the log processor on
    assert add_trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}
    span = provider.get_tracer("test").start_span("inside")
    with trace.use_span(span, end_on_exit=True):
        line = add_trace_ids(None, "info", {"event": "inside"})
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_http_trace_context_headers_go_with_every_message() -> None:
    from cerouter.binding.http import read_request

    headers = [
        ("Content-Type", "application/cloudevents-batch+json"),
        ("TraceParent", CREATED),
        ("tracestate", "a=1"),
    ]
    body = orjson.dumps([event(id_="1"), event(id_="2")])
    events = read_request(headers, body, batch_max=10)
    assert [m["traceparent"] for m, _ in events.messages] == [CREATED, CREATED]
    assert [m["tracestate"] for m, _ in events.messages] == ["a=1", "a=1"]
    # In binary mode the transport header and the extension stay two headers.
    hop = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    binary = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
        ("ce-traceparent", CREATED),
        ("traceparent", hop),
    ]
    [(message, _)] = read_request(binary, b"", batch_max=None).messages
    assert message["ce-traceparent"] == CREATED
    assert message["traceparent"] == hop


def test_cerouter_runs_without_opentelemetry() -> None:
    import subprocess
    import sys

    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import cerouter.cli, cerouter.service, cerouter.worker, cerouter.tracing as tracing
from cerouter.errors import CerouterError
assert not tracing.AVAILABLE
try:
    tracing.Tracing()
except CerouterError as exc:
    print("refused:", exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "refused: tracing needs OpenTelemetry: pip install 'cerouter[otel]'" in done.stdout


def test_cerouter_run_trace_uses_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(
        "opentelemetry.exporter.otlp.proto.http", reason="needs the otel extra's OTLP exporter"
    )
    from cerouter.tracing import sdk_provider

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    provider = sdk_provider()
    assert provider.resource.attributes["service.name"] == "cerouter"
    provider.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge-router")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = sdk_provider()
    assert provider.resource.attributes["service.name"] == "edge-router"
    provider.shutdown()
