"""Build the ``routes`` and ``unrouted`` sections of routes.yaml (for :mod:`.build`).

What it needs of the document's builder is the :class:`BuildContext` protocol, so this module
does not import :mod:`.build` (which imports it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

from cerouter.binding import Mode
from cerouter.config.model import DEFAULT_REQUEST_TIMEOUT, DEFAULT_WORK_PREFIX, StreamSpec, Unrouted
from cerouter.config.values import parse_duration
from cerouter.config.yaml_tree import PathPart, YNode, format_path
from cerouter.routing.filter_spec import FilterError, compile_filter
from cerouter.routing.filters import Filter
from cerouter.routing.model import Destination, DestinationKind, Route
from cerouter.routing.subjects import SubjectTemplate

Path_ = tuple[PathPart, ...]
_MODES = {"structured": Mode.STRUCTURED, "binary": Mode.BINARY, "same": None}


class BuildContext(Protocol):
    """The part of the document's builder (:class:`.build.Builder`) that routes use."""

    @property
    def schema_refs(self) -> list[tuple[str, int, str]]:
        """``(ref, line, path)`` of every route ``schema:``, checked once schemas are loaded."""

    @property
    def streams(self) -> Mapping[str, StreamSpec]:
        """The declared (and implicit) streams, by name."""

    def error(self, line: int, path: Path_, message: str) -> None:
        """Record an error at ``line`` for the key path ``path``."""

    def template(self, node: YNode, path: Path_) -> SubjectTemplate | None:
        """A subject template, or ``None`` after recording the error."""

    def stream_ref(self, node: YNode, path: Path_) -> str | None:
        """A reference to a declared stream, or ``None`` after recording the error."""


class RoutesBuilder:
    """Routes, their filters and destinations; errors go to the document's builder."""

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx

    def routes(self, node: YNode | None) -> tuple[Route, ...]:
        """The ``routes`` list."""
        out: list[Route] = []
        names: dict[str, int] = {}
        for i, item in enumerate(node.children() if node is not None else []):
            p: Path_ = ("routes", i)
            name_node = item.value["name"]
            name = str(name_node.value)
            if name in names:
                self.ctx.error(
                    name_node.line,
                    (*p, "name"),
                    f"duplicate route name '{name}' (first at line {names[name]})",
                )
            names.setdefault(name, name_node.line)
            match = self.match(item.value["match"], (*p, "match"))
            schema = None
            if (s := item.get("schema")) is not None:
                schema = str(s.value)
                self.ctx.schema_refs.append((schema, s.line, format_path((*p, "schema"))))
            to_node = item.value["to"]
            dest_nodes = to_node.children() if to_node.is_sequence else [to_node]
            destinations = []
            for j, d in enumerate(dest_nodes):
                here = (*p, "to", j) if to_node.is_sequence else (*p, "to")
                dest = self.destination(d, here)
                if dest is not None:
                    destinations.append(dest)
            final = bool(item.value["final"].value) if "final" in item.value else False
            description = (
                str(item.value["description"].value) if "description" in item.value else None
            )
            if match is not None:
                out.append(
                    Route(name, match, tuple(destinations), final, schema, description, item.line)
                )
        return tuple(out)

    def match(self, node: YNode, path: Path_) -> Filter | None:
        """A compiled filter, or ``None`` after recording the error at the right line."""
        spec = node.plain(raw_scalars=True)
        try:
            return compile_filter(spec)
        except FilterError as exc:
            line, where = _locate(node, exc.path)
            self.ctx.error(line, (*path, *where), exc.message)
            return None

    def destination(self, node: YNode, path: Path_) -> Destination | None:
        """One destination mapping."""
        m: dict[str, YNode] = node.value
        mode = _MODES[str(m["mode"].value)] if "mode" in m else None
        kind: DestinationKind
        stream: str | None = None
        queue: str | None = None
        durable = False
        timeout: float | None = None
        if "request" in m:
            kind = "request"
            template = self.ctx.template(m["request"], (*path, "request"))
            timeout = (
                parse_duration(m["timeout"].value) if "timeout" in m else DEFAULT_REQUEST_TIMEOUT
            )
        elif "queue" in m:
            kind = "queue"
            queue = str(m["queue"].value)
            durable = bool(m["durable"].value) if "durable" in m else False
            if "subject" in m:
                template = self.ctx.template(m["subject"], (*path, "subject"))
            else:
                template = SubjectTemplate.parse(f"{DEFAULT_WORK_PREFIX}.{queue}")
            if "stream" in m and not durable:
                self.ctx.error(
                    m["stream"].line,
                    (*path, "stream"),
                    "'stream' is only for 'durable: true' queues",
                )
            elif durable and template is not None:
                stream = self._durable_stream(m, template, queue, path)
                if stream is None:
                    return None
        elif "stream" in m:
            kind = "stream"
            stream = self.ctx.stream_ref(m["stream"], (*path, "stream"))
            template = self.ctx.template(m["subject"], (*path, "subject"))
            if stream is None:
                return None
        else:
            kind = "subject"
            template = self.ctx.template(m["subject"], (*path, "subject"))
        if template is None:
            return None
        return Destination(kind, template, mode, stream, queue, durable, timeout, line=node.line)

    def _durable_stream(
        self, m: dict[str, YNode], template: SubjectTemplate, queue: str, path: Path_
    ) -> str | None:
        if "stream" in m:
            return self.ctx.stream_ref(m["stream"], (*path, "stream"))
        owners = [
            s.name
            for s in self.ctx.streams.values()
            if any(template.covered_by(p) for p in s.subjects)
        ]
        if owners:
            return owners[0]
        self.ctx.error(
            m["durable"].line,
            (*path, "durable"),
            f"durable queue '{queue}' needs a stream capturing '{template}': declare one under "
            "'streams' (retention: workqueue) or name it with 'stream'",
        )
        return None

    def unrouted(self, node: YNode | None) -> Unrouted:
        """The ``unrouted`` policy."""
        if node is None:
            return Unrouted()
        if isinstance(node.value, str):
            return Unrouted(cast(Any, node.value))
        dest = self.destination(node, ("unrouted",))
        return Unrouted("publish", dest)


def _locate(node: YNode, rel: tuple[PathPart, ...]) -> tuple[int, tuple[PathPart, ...]]:
    """The line and key path of a filter error path inside a located ``match`` node."""
    here = node
    line = node.line
    walked: list[PathPart] = []
    for part in rel:
        child: YNode | None = None
        if isinstance(part, int) and here.is_sequence and part < len(here.value):
            child = here.value[part]
            line = child.line
        elif isinstance(part, str) and here.is_mapping and part in here.value:
            child = here.value[part]
            line = here.key_lines.get(part, child.line)
        if child is None:
            break
        walked.append(part)
        here = child
    return line, tuple(walked)
