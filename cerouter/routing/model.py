"""The route model: destinations, routes and matches, frozen values built once from routes.yaml.

* :class:`Destination` — where a route sends (``subject``, ``stream``, ``queue`` or ``request``),
  with a :class:`~cerouter.routing.subjects.SubjectTemplate` and the output content mode;
* :class:`Route` — a name, a compiled filter, destinations, ``final`` and an optional schema;
* :class:`Match` — a route that matched one event, with its destinations' subjects rendered from
  that event (:class:`RenderedDestination`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cerouter.binding import Mode
from cerouter.routing.filters import Attributes, Filter
from cerouter.routing.subjects import SubjectTemplate

DestinationKind = Literal["subject", "stream", "queue", "request"]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a route sends an event.

    ``mode`` ``None`` means the mode the event arrived in. ``stream`` is set for stream
    destinations and durable queues; ``queue`` for queue destinations; ``timeout`` (seconds) for
    requests. ``line`` is where routes.yaml declares it (0 when built in code).
    """

    kind: DestinationKind
    subject_template: SubjectTemplate
    mode: Mode | None = None
    stream: str | None = None
    queue: str | None = None
    durable: bool = False
    timeout: float | None = None
    line: int = field(default=0, compare=False)

    def render(self, attributes: Attributes) -> RenderedDestination:
        """This destination with its subject rendered from an event's attributes."""
        return RenderedDestination(self, self.subject_template.render(attributes))

    def describe(self) -> str:
        """A short human description, e.g. ``stream ORDERS orders.{type}``."""
        if self.kind == "stream":
            return f"stream {self.stream} {self.subject_template}"
        if self.kind == "queue":
            durable = f" durable in {self.stream}" if self.durable else ""
            return f"queue {self.queue} {self.subject_template}{durable}"
        return f"{self.kind} {self.subject_template}"


@dataclass(frozen=True, slots=True)
class RenderedDestination:
    """A destination and the concrete subject it gets for one event."""

    destination: Destination
    subject: str

    @property
    def kind(self) -> DestinationKind:
        """The destination kind."""
        return self.destination.kind

    @property
    def mode(self) -> Mode | None:
        """The output content mode (``None``: as received)."""
        return self.destination.mode


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of ``routes``: a name, a compiled filter and where matching events go."""

    name: str
    match: Filter
    to: tuple[Destination, ...]
    final: bool = False
    schema: str | None = None
    description: str | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Match:
    """A route that matched one event, with its destinations rendered for that event."""

    route: Route
    destinations: tuple[RenderedDestination, ...]
