"""``cerouter explain``: what the router would do with one event, offline and step by step.

The outcome comes from :class:`cerouter.pipeline.Pipeline`, the router's own decision code (decode,
envelope and data checks, route table, route schemas, unrouted policy), so explain cannot disagree
with the router. Around it, explain adds the why: the validation report, and for every route in
order whether it matched and which condition decided (the filters' ``explain``), or that it was
skipped after a matched ``final`` route. Deliveries list rendered subjects and modes; rejected
parts list the dead-letter subject and reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from cerouter.binding import DecodedEvent
from cerouter.pipeline import UNROUTED_ROUTE, Pipeline
from cerouter.routing.filters import DataGetter, no_data
from cerouter.routing.model import Destination, RenderedDestination, Route
from cerouter.routing.table import LazyData
from cerouter.validation.report import Report, Stage

Status = Literal["matched", "not matched", "skipped"]
Outcome = Literal["routed", "deadletter", "dropped"]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """One route's verdict for the event and the condition that decided it."""

    index: int
    route: Route
    status: Status
    reason: str
    schema_report: Report | None = None  # the route's own schema check, when it has one


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the event goes: a rendered destination, from a route (or ``None``), and why.

    ``deadletter`` marks the dead-letter stream (``note`` then says why).
    """

    route: str | None
    destination: RenderedDestination
    note: str = ""
    deadletter: bool = False


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything ``cerouter explain`` prints."""

    source: str
    event: DecodedEvent | None
    binding_error: str | None
    report: Report | None
    schema_ref: str | None
    decisions: tuple[RouteDecision, ...]
    deliveries: tuple[Delivery, ...]
    outcome: Outcome
    reason: str

    def to_text(self) -> str:
        """The human rendering (several lines)."""
        return "\n".join(_text_lines(self))

    def to_json(self) -> dict[str, Any]:
        """The machine rendering (a JSON-ready dict)."""
        return _json(self)


def explain_payload(
    pipeline: Pipeline,
    payload: bytes,
    headers: dict[str, str] | None = None,
    *,
    source: str = "event",
) -> Explanation:
    """Explain what the router does with a NATS message (payload and optional headers)."""
    config = pipeline.config
    decision = pipeline.process(headers, payload)
    event = decision.event
    deliveries: list[Delivery] = []
    for match in decision.matches:
        name = None if match.route.name == UNROUTED_ROUTE else match.route.name
        note = "unrouted" if name is None else ""
        deliveries.extend(Delivery(name, d, note) for d in match.destinations)
    attributes = event.attributes if event is not None else {}
    dl = config.deadletter
    for rejection in decision.rejections:
        subject = dl.subject.render(attributes, {"reason": rejection.reason})
        target = RenderedDestination(Destination("stream", dl.subject, stream=dl.stream), subject)
        note = f"{rejection.reason}: {rejection.detail}"
        deliveries.append(Delivery(rejection.route, target, note, deadletter=True))
    if decision.dropped:
        outcome: Outcome = "dropped"
        reason = "unrouted"
    elif decision.matches:
        outcome = "routed"
        reason = "unrouted" if all(d.note == "unrouted" for d in deliveries) else ""
    else:
        outcome = "deadletter"
        reason = decision.rejections[0].reason if decision.rejections else ""
    if event is None:
        detail = decision.rejections[0].detail if decision.rejections else "not a CloudEvent"
        return Explanation(source, None, detail, None, None, (), tuple(deliveries), outcome, reason)
    report = pipeline.validator.check(event)
    schema = pipeline.registry.lookup(attributes) if pipeline.registry is not None else None
    data: DataGetter = LazyData(event) if event.data is not None else no_data
    decisions = _decisions(pipeline, event, data)
    schema_ref = schema.relpath if schema is not None else None
    return Explanation(
        source, event, None, report, schema_ref, decisions, tuple(deliveries), outcome, reason
    )


def _decisions(
    pipeline: Pipeline, event: DecodedEvent, data: DataGetter
) -> tuple[RouteDecision, ...]:
    out: list[RouteDecision] = []
    stopped_by: Route | None = None
    for i, route in enumerate(pipeline.config.routes):
        if stopped_by is not None:
            reason = f"after final route '{stopped_by.name}'"
            out.append(RouteDecision(i, route, "skipped", reason))
            continue
        verdict = route.match.explain(event.attributes, data)
        if not verdict.matched:
            out.append(RouteDecision(i, route, "not matched", verdict.reason))
            continue
        check = pipeline.validator.check(event, route.schema) if route.schema else None
        out.append(RouteDecision(i, route, "matched", verdict.reason, check))
        if route.final:
            stopped_by = route
    return tuple(out)


# --------------------------------------------------------------------------- rendering


def _mode(d: RenderedDestination, event: DecodedEvent | None) -> str:
    if d.mode is not None:
        return str(d.mode)
    return f"same ({event.mode})" if event is not None else "same"


def _text_lines(x: Explanation) -> list[str]:
    lines: list[str] = []
    if x.event is None:
        lines.append(f"event: {x.source}: not a CloudEvent: {x.binding_error}")
    else:
        a = x.event.attributes
        lines.append(
            f"event: {x.source}: type={a.get('type')!s} source={a.get('source')!s} "
            f"id={a.get('id')!s} ({x.event.mode} mode)"
        )
    if x.report is not None:
        envelope = [p for p in x.report.problems if p.stage != Stage.DATA]
        data = [p for p in x.report.problems if p.stage == Stage.DATA]
        lines.append("envelope: ok" if not envelope else "envelope: FAILED")
        lines.extend(f"  {p}" for p in envelope)
        schema = f"schema {x.schema_ref}" if x.schema_ref else "no schema for this type"
        lines.append(f"data: ok ({schema})" if not data else f"data: FAILED ({schema})")
        lines.extend(f"  {p}" for p in data)
    if x.decisions:
        before = x.report is not None and not x.report.ok
        lines.append("routes: (for information: the event is dead-lettered before routing)"
                     if before else "routes:")  # fmt: skip
        width = max(len(d.route.name) for d in x.decisions)
        for d in x.decisions:
            final = " [final]" if d.route.final else ""
            lines.append(
                f"  {d.index + 1}. {d.route.name:<{width}}  {d.status:<11}  {d.reason}{final}"
            )
            if d.schema_report is not None:
                verdict = "ok" if d.schema_report.ok else "FAILED: " + d.schema_report.summary()
                lines.append(f"     route schema {d.route.schema}: {verdict}")
    if x.outcome == "dropped":
        lines.append("outcome: dropped (no route matched; unrouted: drop)")
        return lines
    lines.append("destinations:")
    for delivery in x.deliveries:
        rendered = delivery.destination
        origin = delivery.route or ("dead-letter" if delivery.deadletter else "unrouted")
        if delivery.route and delivery.deadletter:
            origin = f"{delivery.route} (dead-letter)"
        extra = _extra(rendered.destination)
        note = f"  ({delivery.note})" if delivery.note else ""
        mode = _mode(rendered, x.event)
        lines.append(f"  {origin}: {rendered.kind} {rendered.subject}  mode={mode}{extra}{note}")
    summary = {
        "routed": f"routed to {sum(not d.deadletter for d in x.deliveries)} destination(s)",
        "deadletter": f"dead-lettered (reason: {x.reason})",
        "dropped": "dropped",
    }[x.outcome]
    lines.append(f"outcome: {summary}")
    return lines


def _extra(d: Destination) -> str:
    parts = []
    if d.stream:
        parts.append(f"stream={d.stream}")
    if d.queue:
        parts.append(f"queue={d.queue}")
    if d.durable:
        parts.append("durable")
    if d.timeout is not None:
        parts.append(f"timeout={d.timeout:g}s")
    return ("  " + " ".join(parts)) if parts else ""


def _json(x: Explanation) -> dict[str, Any]:
    event: dict[str, Any] | None = None
    if x.event is not None:
        event = {"attributes": x.event.attributes, "mode": str(x.event.mode)}
    return {
        "source": x.source,
        "event": event,
        "binding_error": x.binding_error,
        "valid": None if x.report is None else x.report.ok,
        "problems": [] if x.report is None else x.report.to_json(),
        "schema": x.schema_ref,
        "routes": [
            {
                "index": d.index,
                "name": d.route.name,
                "line": d.route.line,
                "final": d.route.final,
                "status": d.status,
                "reason": d.reason,
                "schema": d.route.schema,
                "schema_ok": None if d.schema_report is None else d.schema_report.ok,
            }
            for d in x.decisions
        ],
        "destinations": [
            {
                "route": delivery.route,
                "kind": delivery.destination.kind,
                "subject": delivery.destination.subject,
                "template": delivery.destination.destination.subject_template.source,
                "mode": None
                if delivery.destination.mode is None
                else str(delivery.destination.mode),
                "stream": delivery.destination.destination.stream,
                "queue": delivery.destination.destination.queue,
                "durable": delivery.destination.destination.durable,
                "timeout": delivery.destination.destination.timeout,
                "note": delivery.note,
                "deadletter": delivery.deadletter,
            }
            for delivery in x.deliveries
        ],
        "outcome": x.outcome,
        "reason": x.reason,
    }


def dumps(x: Explanation) -> str:
    """The JSON rendering as text."""
    return json.dumps(_json(x), ensure_ascii=False, indent=2)
