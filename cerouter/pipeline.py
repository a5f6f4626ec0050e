"""The pure part of routing one message: decode, check, match. No I/O, no clock, no logging.

The service feeds it NATS messages; the HTTP gateway and dead-letter replay will feed it the same
``(headers, payload)`` pairs, so where an event came from never matters here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cerouter.binding import DecodedEvent, decode
from cerouter.config.model import RouterConfig
from cerouter.errors import BindingError
from cerouter.routing.filters import MatchAll
from cerouter.routing.model import Match, Route
from cerouter.routing.table import RouteTable
from cerouter.types import Headers, Reason, Stage
from cerouter.validation.registry import SchemaRegistry
from cerouter.validation.report import Report, shorten
from cerouter.validation.validator import EventValidator

HOPS_HEADER = "cerouter-hops"
"""How many times cerouter has forwarded this message; the loop guard reads and raises it."""

DEFAULT_MAX_HOPS = 8
UNROUTED_ROUTE = "(unrouted)"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why (part of) an event goes to the dead-letter stream instead of its destinations.

    ``reason`` is the dead-letter reason code, ``stage`` where it was found, ``detail`` one
    human line; ``report`` the validation problems behind an envelope or schema rejection, for
    ingresses that answer the producer with each problem (the HTTP gateway's 400).
    """

    reason: Reason
    stage: Stage
    detail: str
    route: str | None = None
    destination: str | None = None
    report: Report | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the pipeline decided for one message.

    ``matches`` are delivered; each rejection is dead-lettered once; ``dropped`` means routes.yaml
    said ``unrouted: drop``. A message may have both matches and rejections (a route whose own
    ``schema`` the event fails is rejected while the others still fire).
    """

    event: DecodedEvent | None
    hops: int
    matches: tuple[Match, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    dropped: bool = False


def hops_of(headers: Headers | None) -> int:
    """The hop count a message carries (0 when absent or unreadable)."""
    if not headers:
        return 0
    raw = headers.get(HOPS_HEADER)
    if raw is None:
        return 0
    try:
        return max(int(raw), 0)
    except ValueError:
        return 0


def _rejected(
    event: DecodedEvent | None, hops: int, reason: Reason, stage: Stage, detail: str
) -> Decision:
    return Decision(event, hops, rejections=(Rejection(reason, stage, detail),))


def _rejection_of(report: Report, route: str | None = None) -> Rejection:
    stage = report.problems[0].stage
    reason = Reason.ENVELOPE if stage is Stage.ENVELOPE else Reason.SCHEMA
    return Rejection(reason, stage, report.summary(), route=route, report=report)


class Pipeline:
    """A loaded configuration compiled for processing messages; immutable, built once per load."""

    __slots__ = ("_unrouted_route", "config", "max_hops", "registry", "table", "validator")

    def __init__(
        self,
        config: RouterConfig,
        registry: SchemaRegistry | None,
        *,
        max_hops: int = DEFAULT_MAX_HOPS,
        include_values: bool = False,
    ) -> None:
        # include_values: reports (dead-letter headers, logs) quote data and attribute values;
        # off by default, since they may be secrets.
        self.config = config
        self.registry = registry
        self.table = RouteTable(config.routes)
        self.validator = EventValidator(registry, include_values=include_values)
        self.max_hops = max_hops
        target = config.unrouted.destination
        self._unrouted_route = (
            Route(UNROUTED_ROUTE, MatchAll(), (target,)) if target is not None else None
        )

    def process(self, headers: Headers | None, payload: bytes) -> Decision:
        """Decide the fate of one NATS message.

        Never raises: even a bug in a check becomes a dead letter (reason ``internal``) rather
        than a lost message.
        """
        try:
            return self._process(headers, payload)
        except Exception as exc:
            detail = f"internal error: {type(exc).__name__}: {exc}"
            return Decision(
                None,
                hops_of(headers),
                rejections=(Rejection(Reason.INTERNAL, Stage.ROUTER, detail),),
            )

    def _process(self, headers: Headers | None, payload: bytes) -> Decision:
        hops = hops_of(headers)
        if hops >= self.max_hops:
            detail = f"routing loop: the message was forwarded {hops} times (limit {self.max_hops})"
            return _rejected(None, hops, Reason.LOOP, Stage.ROUTING, detail)
        try:
            event = decode(headers, payload)
        except BindingError as exc:
            return _rejected(None, hops, Reason.BINDING, Stage.BINDING, str(exc))
        report = self.validator.check(event)
        if not report.ok:
            return Decision(event, hops, rejections=(_rejection_of(report),))
        try:
            matches = self.table.match(event)
        except BindingError as exc:  # a data filter met data that does not parse
            return _rejected(event, hops, Reason.BINDING, Stage.DATA, str(exc))
        if not matches:
            return self._unrouted(event, hops)
        if not any(m.route.schema for m in matches):
            return Decision(event, hops, tuple(matches))
        return self._check_route_schemas(event, hops, matches)

    def _check_route_schemas(
        self, event: DecodedEvent, hops: int, matches: list[Match]
    ) -> Decision:
        good: list[Match] = []
        bad: list[Rejection] = []
        for match in matches:
            schema = match.route.schema
            if schema is not None:
                report = self.validator.check_data(event, schema)
                if not report.ok:
                    bad.append(_rejection_of(report, match.route.name))
                    continue
            good.append(match)
        return Decision(event, hops, tuple(good), tuple(bad))

    def _unrouted(self, event: DecodedEvent, hops: int) -> Decision:
        policy = self.config.unrouted
        if policy.action == "drop":
            return Decision(event, hops, dropped=True)
        route = self._unrouted_route
        if policy.action == "publish" and route is not None:
            rendered = route.to[0].render(event.attributes)
            return Decision(event, hops, (Match(route, (rendered,)),))
        # The type is the producer's: cut, so a hostile one cannot bloat headers and logs.
        detail = f"no route matched type {shorten(str(event.attributes.get('type')))!r}"
        return _rejected(event, hops, Reason.UNROUTED, Stage.ROUTING, detail)
