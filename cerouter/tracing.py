"""OpenTelemetry traces, optional: ``pip install 'cerouter[otel]'``.

This is the only module that imports OpenTelemetry, and only when it is installed. Tracing is
off unless a :class:`Tracing` is made (``RouterOptions(tracing=True)``, a ``tracer_provider``,
``cerouter run --trace``); when it is off, the router and the workers hold ``None`` instead of
a :class:`Tracing` and never call into this module on their per-event paths.

Two contexts travel with an event, and they are kept apart:

* the transport headers ``traceparent``/``tracestate`` (NATS headers, HTTP headers at the
  gateway) are the **per-hop parent**: the router's span continues the producer's, and every
  publish of the router carries the router span's context instead of the producer's;
* the CloudEvents ``traceparent`` **extension** (a ``traceparent`` member in structured mode,
  the ``ce-traceparent`` header in binary mode) is the **creation context** of the event: left
  untouched when present, added when absent, and linked from the router's span.

Span names never hold a subject rendered from event data: ``cerouter route`` for the router,
``publish <template>`` per delivery (``publish orders.{type}``), ``process <subject>`` for a
worker handler (its subscription subject, from the app's code).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cerouter.errors import CerouterError
from cerouter.log import set_span_ids

try:
    from opentelemetry import trace as _trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised only without the otel extra
    AVAILABLE = False
else:
    AVAILABLE = True

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = frozenset({TRACEPARENT, TRACESTATE})
"""The W3C trace-context transport headers (lower case): replaced per hop, never forwarded."""

CE_TRACEPARENT = "ce-traceparent"
"""The CloudEvents ``traceparent`` extension as a binary-mode header (not the transport one)."""

ROUTER_SPAN = "cerouter route"

MISSING = (
    "tracing needs OpenTelemetry: pip install 'cerouter[otel]' "
    "(opentelemetry-api and opentelemetry-sdk)"
)


def trace_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The transport trace-context headers of ``headers`` (names lower-cased)."""
    if not headers:
        return {}
    return {k.lower(): v for k, v in headers.items() if k.lower() in TRACE_HEADERS}


def without_trace_headers(headers: dict[str, str]) -> None:
    """Remove the transport trace-context headers, in any case, from ``headers`` in place."""
    for name in [k for k in headers if k.lower() in TRACE_HEADERS]:
        del headers[name]


class Tracing:
    """A tracer, with the trace-context propagation cerouter does around it.

    ``provider`` is an OpenTelemetry ``TracerProvider``; ``None`` uses the global one (set with
    ``opentelemetry.trace.set_tracer_provider``). Raises :class:`CerouterError` when OpenTelemetry
    is not installed.
    """

    def __init__(self, provider: Any = None) -> None:
        if not AVAILABLE:
            raise CerouterError(MISSING)
        source = provider if provider is not None else _trace.get_tracer_provider()
        self.tracer = source.get_tracer("cerouter")
        self._propagator = TraceContextTextMapPropagator()
        set_span_ids(current_ids)  # from now on, log lines inside a span carry its ids

    # ------------------------------------------------------------------ propagation

    def parent(self, headers: Mapping[str, str] | None) -> Context | None:
        """The per-hop parent context a message's transport headers carry, if any."""
        carrier = trace_headers(headers)
        if TRACEPARENT not in carrier:
            return None
        return self._propagator.extract(carrier)

    @staticmethod
    def headers_of(span: Any) -> dict[str, str]:
        """The transport headers (``traceparent``, ``tracestate``) that make ``span`` the parent.

        What the W3C propagator's ``inject`` writes, without its context round trip.
        """
        context = span.get_span_context()
        flags = int(context.trace_flags)
        out = {TRACEPARENT: f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"}
        if context.trace_state:
            out[TRACESTATE] = context.trace_state.to_header()
        return out

    def links(self, attributes: Mapping[str, object]) -> list[Link]:
        """A link to the event's creation context (its ``traceparent`` extension), if valid."""
        value = attributes.get(TRACEPARENT)
        if not isinstance(value, str):
            return []
        carrier = {TRACEPARENT: value}
        state = attributes.get(TRACESTATE)
        if isinstance(state, str):
            carrier[TRACESTATE] = state
        context = _trace.get_current_span(self._propagator.extract(carrier)).get_span_context()
        if not context.is_valid:
            return []
        return [Link(context, {"cerouter.link": "cloudevents.traceparent"})]

    # ------------------------------------------------------------------ spans

    def router_span(
        self,
        headers: Mapping[str, str] | None,
        attributes: Mapping[str, object] | None,
        *,
        ingress: str,
        started: int,
    ) -> Any:
        """Start the span of one event through the router (``started``: ``time_ns()``)."""
        span_attributes: dict[str, Any] = {
            "messaging.system": "nats",
            "messaging.operation": "process",
            "cerouter.ingress": ingress,
        }
        links: list[Link] = []
        if attributes is not None:
            span_attributes.update(event_attributes(attributes))
            links = self.links(attributes)
        return self.tracer.start_span(
            ROUTER_SPAN,
            context=self.parent(headers),
            kind=SpanKind.CONSUMER,
            attributes=span_attributes,
            links=links,
            start_time=started,
        )

    def delivery_span(self, router: Any, template: str, route: str) -> Any:
        """Start the span of one delivery: a child of the router's span."""
        return self.tracer.start_span(
            f"publish {template}",
            context=_trace.set_span_in_context(router),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation": "publish",
                "messaging.destination.name": template,
                "cerouter.route": route,
            },
        )

    def handler_span(
        self,
        headers: Mapping[str, str] | None,
        attributes: Mapping[str, object],
        *,
        subject: str,
        queue: str,
        handler: str,
    ) -> Any:
        """Start (not yet current) the span of a worker handler call."""
        return self.tracer.start_span(
            f"process {subject}",
            context=self.parent(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation": "process",
                "messaging.destination.name": subject,
                "messaging.consumer.group.name": queue,
                "cerouter.handler": handler,
                **event_attributes(attributes),
            },
            links=self.links(attributes),
        )

    @staticmethod
    @contextlib.contextmanager
    def current(span: Any) -> Iterator[None]:
        """Make ``span`` the current one (log lines carry its ids), then end it."""
        with _trace.use_span(span, end_on_exit=True, record_exception=False):
            yield

    @staticmethod
    def failed(span: Any, reasons: Sequence[str], error: BaseException | None = None) -> None:
        """Mark ``span`` as failed: why (reason codes, never event values)."""
        span.set_attribute("cerouter.rejections", list(reasons))
        if error is not None:
            span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, ", ".join(reasons) or None))


def event_attributes(attributes: Mapping[str, object]) -> dict[str, str]:
    """The CloudEvents span attributes of an event (those it has)."""
    out: dict[str, str] = {}
    for name, key in (
        ("cloudevents.event_id", "id"),
        ("cloudevents.event_source", "source"),
        ("cloudevents.event_type", "type"),
    ):
        value = attributes.get(key)
        if value is not None:
            out[name] = str(value)[:256]
    return out


def current_ids() -> tuple[str, str] | None:
    """The current span's ``(trace_id, span_id)`` in hex, or ``None`` outside any span."""
    context = _trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def sdk_provider(service_name: str = "cerouter") -> Any:
    """A ``TracerProvider`` exporting to OTLP over HTTP, configured by the standard variables.

    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), ``..._HEADERS``,
    ``OTEL_SERVICE_NAME`` (default ``service_name``), ``OTEL_RESOURCE_ATTRIBUTES``,
    ``OTEL_TRACES_SAMPLER``/``_ARG``: the SDK reads them all. Call ``shutdown()`` at exit.
    """
    if not AVAILABLE:
        raise CerouterError(MISSING)
    import os

    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise CerouterError(
            f"{MISSING} and opentelemetry-exporter-otlp-proto-http ({exc})"
        ) from None
    defaults = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(defaults))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


__all__ = [
    "AVAILABLE",
    "CE_TRACEPARENT",
    "TRACEPARENT",
    "TRACESTATE",
    "TRACE_HEADERS",
    "Tracing",
    "current_ids",
    "sdk_provider",
    "trace_headers",
    "without_trace_headers",
]
