"""Build :class:`~cerouter.config.model.RouterConfig` from a structurally valid, located YAML tree.

The structural check (:mod:`cerouter.config.structure`) has already run, so shapes and types are
right; this module checks meaning: names, references between sections, templates, filters,
durations, environment references. It collects every error rather than stopping at the first.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from cerouter.config.build_http import HttpBuilder
from cerouter.config.build_routes import RoutesBuilder
from cerouter.config.model import (
    DEFAULT_DEADLETTER_STREAM,
    DEFAULT_DEADLETTER_SUBJECT,
    DEFAULT_DURABLE,
    DEFAULT_QUEUE_GROUP,
    ConfigWarning,
    CoreIngress,
    DeadLetterSettings,
    IngressSettings,
    JetStreamIngress,
    NatsSettings,
    RouterConfig,
    StreamSpec,
    TlsSettings,
)
from cerouter.config.values import parse_duration, parse_size
from cerouter.config.yaml_tree import PathPart, YNode, format_path
from cerouter.errors import ConfigError
from cerouter.routing.subjects import (
    SubjectError,
    SubjectTemplate,
    check_subject,
    pattern_covers,
    patterns_overlap,
)
from cerouter.validation.registry import SchemasSettings

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Path_ = tuple[PathPart, ...]


class Builder:
    """One pass over a routes document; errors and warnings accumulate on the instance."""

    def __init__(
        self, file: str, base_dir: Path, environ: Mapping[str, str], *, resolve_env: bool = True
    ) -> None:
        self.file = file
        self.base_dir = base_dir
        self.environ = environ
        self.resolve_env = resolve_env
        self.errors: list[ConfigError] = []
        self.warnings: list[ConfigWarning] = []
        self.schema_refs: list[tuple[str, int, str]] = []  # (ref, line, path) to check
        self.streams: dict[str, StreamSpec] = {}

    # ------------------------------------------------------------------ reporting

    def error(self, line: int, path: Path_, message: str) -> None:
        """Record an error at ``line`` for the key path ``path``."""
        self.errors.append(ConfigError(message, file=self.file, line=line, path=format_path(path)))

    def warn(self, code: str, line: int, path: Path_, message: str) -> None:
        """Record a warning."""
        self.warnings.append(ConfigWarning(code, message, line, format_path(path)))

    # ------------------------------------------------------------------ document

    def build(self, root: YNode, path: Path) -> RouterConfig | None:
        """The config, or ``None`` when errors were recorded."""
        nats = self.nats(root.get("nats"))
        streams = self.stream_list(root.get("streams"))
        deadletter = self.deadletter(root.get("deadletter"), root.key_lines.get("deadletter", 1))
        if deadletter.stream not in self.streams:
            implicit = StreamSpec(
                deadletter.stream, (deadletter.subject.wildcard_pattern,), implicit=True
            )
            for other in streams:
                if any(patterns_overlap(implicit.subjects[0], s) for s in other.subjects):
                    self.error(
                        deadletter.line,
                        ("deadletter",),
                        f"the dead-letter stream '{implicit.name}' (subjects: "
                        f"{implicit.subjects[0]}) would overlap stream '{other.name}'; "
                        "declare the dead-letter stream under 'streams' or change its subject",
                    )
            streams = (*streams, implicit)
            self.streams[implicit.name] = implicit
        ingress = self.ingress(root.get("ingress"))
        schemas = self.schemas(root.get("schemas"))
        routes_builder = RoutesBuilder(self)
        routes = routes_builder.routes(root.get("routes"))
        unrouted = routes_builder.unrouted(root.get("unrouted"))
        http = HttpBuilder(self).http(root.get("http"))
        if self.errors:
            return None
        return RouterConfig(
            path=path,
            version=int(root.value["version"].value),
            nats=nats,
            ingress=ingress,
            streams=streams,
            schemas=schemas,
            deadletter=deadletter,
            routes=routes,
            unrouted=unrouted,
            http=http,
        )

    # ------------------------------------------------------------------ nats

    def env(self, node: YNode, path: Path_, *, secret: bool = False) -> str:
        """A string with ``${ENV}`` references resolved (or kept, without ``resolve_env``)."""
        text = str(node.value)
        refs = list(_ENV_REF.finditer(text))
        if secret and not refs:
            self.warn(
                "clear-text-secret",
                node.line,
                path,
                "secret written in clear text; use an environment reference such as ${NATS_TOKEN}",
            )
        if not self.resolve_env or not refs:
            return text

        def substitute(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            value = self.environ.get(name)
            if value is None:
                if default is not None:
                    return default
                self.error(node.line, path, f"environment variable {name} is not set")
                return ""
            return value

        return _ENV_REF.sub(substitute, text)

    def path_of(self, node: YNode, path: Path_) -> Path:
        """A file path relative to the routes file's directory."""
        raw = Path(self.env(node, path)).expanduser()
        return raw if raw.is_absolute() else self.base_dir / raw

    def nats(self, node: YNode | None) -> NatsSettings:
        """The ``nats`` section."""
        if node is None:
            return NatsSettings()
        p: Path_ = ("nats",)
        get = node.get
        kw: dict[str, Any] = {}
        urls = get("urls")
        if urls is not None:
            items = urls.children() if urls.is_sequence else [urls]
            kw["urls"] = tuple(self.env(u, (*p, "urls")) for u in items)
        if (n := get("name")) is not None:
            kw["name"] = self.env(n, (*p, "name"))
        if (n := get("credentials")) is not None:
            kw["credentials"] = self.path_of(n, (*p, "credentials"))
        if (n := get("token")) is not None:
            kw["token"] = self.env(n, (*p, "token"), secret=True)
        if (n := get("user")) is not None:
            kw["user"] = self.env(n, (*p, "user"))
        if (n := get("password")) is not None:
            kw["password"] = self.env(n, (*p, "password"), secret=True)
        if (n := get("connect_timeout")) is not None:
            kw["connect_timeout"] = parse_duration(n.value)
        if (tls := get("tls")) is not None:
            files = {k: self.path_of(v, (*p, "tls", k)) for k, v in tls.items()}
            kw["tls"] = TlsSettings(**files)
        methods = [k for k in ("credentials", "token", "user") if k in kw]
        if len(methods) > 1:
            self.error(node.line, p, f"use one authentication method, not {' and '.join(methods)}")
        if ("user" in kw) != ("password" in kw):
            self.error(node.line, p, "'user' and 'password' go together")
        return NatsSettings(**kw)

    # ------------------------------------------------------------------ streams

    def stream_list(self, node: YNode | None) -> tuple[StreamSpec, ...]:
        """The ``streams`` section; names unique, subjects valid and not overlapping."""
        out: list[StreamSpec] = []
        for i, item in enumerate(node.children() if node is not None else []):
            p: Path_ = ("streams", i)
            name = str(item.value["name"].value)
            if name in self.streams:
                first = self.streams[name].line
                self.error(
                    item.line, (*p, "name"), f"duplicate stream '{name}' (first at line {first})"
                )
                continue
            subjects = self.subjects(item.value["subjects"], (*p, "subjects"), wildcards=True)
            for other in out:
                clash = [(a, b) for a in subjects for b in other.subjects if patterns_overlap(a, b)]
                if clash:
                    a, b = clash[0]
                    self.error(
                        item.value["subjects"].line,
                        (*p, "subjects"),
                        f"subject '{a}' overlaps '{b}' of stream '{other.name}' "
                        "(NATS rejects streams with overlapping subjects)",
                    )
            kw: dict[str, Any] = {}
            for key in ("retention", "storage", "description"):
                if (n := item.get(key)) is not None:
                    kw[key] = n.value
            for key in ("max_age", "duplicate_window"):
                if (n := item.get(key)) is not None:
                    kw[key] = parse_duration(n.value)
            if (n := item.get("max_bytes")) is not None:
                kw["max_bytes"] = parse_size(n.value)
            for key in ("max_msgs", "replicas"):
                if (n := item.get(key)) is not None:
                    kw[key] = int(n.value)
            spec = StreamSpec(name, subjects, line=item.line, **kw)
            self.streams[name] = spec
            out.append(spec)
        return tuple(out)

    def subjects(self, node: YNode, path: Path_, *, wildcards: bool) -> tuple[str, ...]:
        """A subject or list of subjects, each checked."""
        items = node.children() if node.is_sequence else [node]
        out: list[str] = []
        for i, item in enumerate(items):
            here = (*path, i) if node.is_sequence else path
            try:
                out.append(check_subject(str(item.value), wildcards=wildcards))
            except SubjectError as exc:
                self.error(item.line, here, str(exc))
        return tuple(out)

    def stream_ref(self, node: YNode, path: Path_) -> str | None:
        """A reference to a declared stream, or ``None`` after recording the error."""
        name = str(node.value)
        if name in self.streams:
            return name
        declared = [s for s in self.streams if not self.streams[s].implicit]
        close = difflib.get_close_matches(name, declared, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        listing = f"; declared: {', '.join(declared)}" if declared and not close else ""
        if not declared:
            listing = "; declare it under 'streams'"
        self.error(node.line, path, f"undefined stream '{name}'{hint}{listing}")
        return None

    def template(self, node: YNode, path: Path_) -> SubjectTemplate | None:
        """A subject template, or ``None`` after recording the error."""
        try:
            return SubjectTemplate.parse(str(node.value))
        except SubjectError as exc:
            self.error(node.line, path, str(exc))
            return None

    # ------------------------------------------------------------------ deadletter, ingress

    def deadletter(self, node: YNode | None, line: int) -> DeadLetterSettings:
        """The ``deadletter`` section (defaults: DEADLETTER, deadletter.{reason})."""
        stream = DEFAULT_DEADLETTER_STREAM
        subject = SubjectTemplate.parse(DEFAULT_DEADLETTER_SUBJECT)
        if node is not None:
            if (n := node.get("stream")) is not None:
                stream = str(n.value)
            if (n := node.get("subject")) is not None:
                subject = self.template(n, ("deadletter", "subject")) or subject
        if stream in self.streams and not any(
            subject.covered_by(s) for s in self.streams[stream].subjects
        ):
            self.error(
                line,
                ("deadletter",),
                f"stream '{stream}' does not capture the dead-letter subject '{subject}'",
            )
        return DeadLetterSettings(stream, subject, line=line)

    def ingress(self, node: YNode | None) -> IngressSettings:
        """The ``ingress`` section (default: core ``events.>`` in queue group ``cerouter``)."""
        if node is None:
            return IngressSettings()
        core: CoreIngress | None = None
        if (c := node.get("core")) is not None:
            core_subjects = self.subjects(
                c.value["subjects"], ("ingress", "core", "subjects"), wildcards=True
            )
            queue = str(c.value["queue"].value) if "queue" in c.value else DEFAULT_QUEUE_GROUP
            core = CoreIngress(core_subjects, queue)
        consumers: list[JetStreamIngress] = []
        durables: dict[tuple[str, str], int] = {}
        js = node.get("jetstream")
        for i, item in enumerate(js.children() if js is not None else []):
            p: Path_ = ("ingress", "jetstream", i)
            stream = self.stream_ref(item.value["stream"], (*p, "stream"))
            durable = (
                str(item.value["durable"].value) if "durable" in item.value else DEFAULT_DURABLE
            )
            if stream is not None and (stream, durable) in durables:
                self.error(
                    item.line,
                    p,
                    f"durable '{durable}' on stream '{stream}' is already used at line "
                    f"{durables[stream, durable]}",
                )
            durables[str(stream), durable] = item.line
            subjects: tuple[str, ...] = ()
            if (s := item.get("subjects")) is not None:
                subjects = self.subjects(s, (*p, "subjects"), wildcards=True)
                if stream is not None:
                    self._check_filter_subjects(stream, subjects, s.line, (*p, "subjects"))
            kw: dict[str, Any] = {}
            if (n := item.get("ack_wait")) is not None:
                kw["ack_wait"] = parse_duration(n.value)
            for key in ("max_deliver", "max_ack_pending"):
                if (n := item.get(key)) is not None:
                    kw[key] = int(n.value)
            consumers.append(JetStreamIngress(str(stream), durable, subjects, line=item.line, **kw))
        return IngressSettings(core, tuple(consumers), line=node.line)

    def _check_filter_subjects(
        self, stream: str, subjects: tuple[str, ...], line: int, path: Path_
    ) -> None:
        captured = self.streams[stream].subjects
        for subject in subjects:
            if not any(pattern_covers(s, subject) for s in captured):
                self.error(
                    line,
                    path,
                    f"filter subject '{subject}' is not within stream '{stream}' "
                    f"(subjects: {', '.join(captured)})",
                )

    # ------------------------------------------------------------------ schemas

    def schemas(self, node: YNode | None) -> SchemasSettings:
        """The ``schemas`` section; references are checked later against the registry."""
        directory = self.base_dir / "schemas"
        types: dict[str, str] = {}
        unknown = "allow"
        if node is not None:
            if (n := node.get("directory")) is not None:
                raw = Path(str(n.value)).expanduser()
                directory = raw if raw.is_absolute() else self.base_dir / raw
            if (t := node.get("types")) is not None:
                for event_type, ref in t.items():
                    types[event_type] = str(ref.value)
                    self.schema_refs.append(
                        (str(ref.value), ref.line, format_path(("schemas", "types", event_type)))
                    )
            if (n := node.get("unknown")) is not None:
                unknown = str(n.value)
        return SchemasSettings(
            directory=directory,
            types=types,
            unknown=cast(Any, unknown),
        )

    # ------------------------------------------------------------------ routes
