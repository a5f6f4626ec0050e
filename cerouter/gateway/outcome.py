"""From what the router did with an event to what the HTTP producer is told (pure).

=========================================  ======  =================================================
what happened                              status  the producer should
=========================================  ======  =================================================
every destination accepted it              202     move on
a ``request:`` route answered              200     read the reply event in the body
not a CloudEvent, broken envelope, schema  400     fix the event (each problem has a JSON Pointer)
no route matched, ``unrouted: deadletter`` 404     check the type / the routes (dead-lettered)
``unrouted: drop`` or ``publish``          202     move on (the body says it was not routed)
another event already has this source+id   409     use a new id (dead-lettered as ``conflict``)
a destination refused it for good          502     look at the dead letter (e.g. ``too-large``)
a destination did not accept it in time    503     retry after ``Retry-After`` seconds
=========================================  ======  =================================================

Bodies of errors are RFC 9457 ``application/problem+json`` with the dead-letter ``reason``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from cerouter.ingress.base import Verdict
from cerouter.ingress.http import Settled
from cerouter.pipeline import UNROUTED_ROUTE, Rejection
from cerouter.types import Reason

PROBLEM_CONTENT_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_INVALID = frozenset({Reason.BINDING, Reason.ENVELOPE, Reason.SCHEMA, Reason.LOOP})


@dataclass(frozen=True, slots=True)
class Answer:
    """A status code with its JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_problem(self) -> bool:
        """Whether the body is a problem document."""
        return self.status >= 400


def problem(
    status: int, detail: str, *, reason: str | None = None, **extra: Any
) -> Answer:  # fmt: skip
    """A problem document: ``type`` names the dead-letter reason (or the HTTP status)."""
    body: dict[str, Any] = {
        "type": f"urn:cerouter:problem:{reason or status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if reason is not None:
        body["reason"] = reason
    body.update(extra)
    return Answer(status, body)


def pointer(where: str) -> str:
    """A report's ``where`` (``time``, ``data/items/0``) as a JSON Pointer (``/time``)."""
    if not where or where.startswith("/"):
        return where
    return "/" + where


def problems_of(rejection: Rejection) -> list[dict[str, str]]:
    """Each problem of a rejection with its JSON Pointer into the event."""
    if rejection.report is None:
        return [{"pointer": "", "stage": str(rejection.stage), "message": rejection.detail}]
    return [
        {"pointer": pointer(p.where), "stage": str(p.stage), "message": p.message}
        for p in rejection.report.problems
    ]


def answer(verdict: Verdict, settled: Settled, delay: float) -> Answer:
    """What to tell the producer of one event."""
    decision = verdict.decision
    failures = verdict.failures
    if settled in (Settled.RETRY, Settled.PENDING):
        seconds = max(1, math.ceil(delay))
        out = problem(
            503,
            "not every destination accepted the event in time; retry later",
            reason=str(Reason.DELIVERY),
            failures=[_failure(f) for f in failures],
        )
        return Answer(out.status, out.body, {"retry-after": str(seconds)})
    if settled is Settled.TERMINATED and failures:
        first = failures[0]
        status = 409 if first.reason is Reason.CONFLICT else 502
        return problem(
            status,
            f"{first.detail} (dead-lettered)",
            reason=str(first.reason),
            failures=[_failure(f) for f in failures],
        )
    if decision.rejections:
        return _rejected(decision.rejections, [m.route.name for m in decision.matches])
    routes = [m.route.name for m in decision.matches]
    if decision.dropped:
        return Answer(202, {"outcome": "dropped", "detail": "no route matched (unrouted: drop)"})
    if routes and all(name == UNROUTED_ROUTE for name in routes):
        return Answer(
            202, {"outcome": "unrouted", "detail": "no route matched; published as unrouted"}
        )
    return Answer(202, {"outcome": "routed", "routes": routes})


def _rejected(rejections: tuple[Rejection, ...], routed: list[str]) -> Answer:
    first = rejections[0]
    extra: dict[str, Any] = {}
    if routed:
        extra["routed"] = routed  # other routes delivered it: do not blindly retry
    if first.reason is Reason.UNROUTED:
        return problem(404, f"{first.detail} (dead-lettered)", reason=str(first.reason), **extra)
    if first.reason in _INVALID:
        problems = [p for r in rejections if r.reason in _INVALID for p in problems_of(r)]
        return problem(
            400,
            f"{first.detail} (dead-lettered)",
            reason=str(first.reason),
            problems=problems,
            **extra,
        )
    return problem(500, f"{first.detail} (dead-lettered)", reason=str(first.reason), **extra)


def _failure(rejection: Rejection) -> dict[str, str | None]:
    return {
        "route": rejection.route,
        "destination": rejection.destination,
        "reason": str(rejection.reason),
        "detail": rejection.detail,
    }
