"""Build the ``http`` section of routes.yaml (for :mod:`.build`): the gateway's settings.

Token *values* never appear here: ``auth`` names where they are (a file, a variable), so a
routes.yaml can be committed. Listening beyond loopback without any token source is an error
unless ``allow_unauthenticated: true`` says it is meant.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Protocol

from cerouter.config.build_routes import BuildContext, RoutesBuilder
from cerouter.config.model import (
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_PORT,
    HttpAuth,
    HttpLimits,
    HttpSettings,
    SseSettings,
    StreamSpec,
    Subscription,
)
from cerouter.config.values import parse_duration, parse_size
from cerouter.config.yaml_tree import PathPart, YNode
from cerouter.routing.subjects import SubjectError, check_subject

Path_ = tuple[PathPart, ...]
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LIMITS = HttpLimits()
_SSE = SseSettings()


class HttpContext(BuildContext, Protocol):
    """What the ``http`` section needs of the document's builder beyond what routes need."""

    @property
    def base_dir(self) -> Path:
        """The routes file's directory (relative paths are relative to it)."""


class ListenError(ValueError):
    """A ``host:port`` that cannot be listened on."""


def parse_listen(text: str) -> tuple[str, int]:
    """``(host, port)`` from ``host:port``, ``[v6]:port``, ``:port`` (loopback) or ``port``."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ListenError(f"'{text}' is not host:port (such as 127.0.0.1:8080)") from None
    if not 0 <= port <= 65535:
        raise ListenError(f"port {port} is not in 0-65535 (0 picks a free port)")
    return host or DEFAULT_HTTP_HOST, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: HttpSettings) -> str | None:
    """Why these settings must not start (a non-loopback listener nobody authenticates), or
    ``None``."""
    if is_loopback(settings.host) or settings.auth.configured:
        return None
    if settings.auth.allow_unauthenticated:
        return None
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return (
        f"the gateway would listen on {host}:{settings.port} without authentication; "
        "declare http.auth (tokens_file or tokens_env) or set http.auth.allow_unauthenticated"
    )


class HttpBuilder:
    """The ``http`` section; errors go to the document's builder."""

    def __init__(self, ctx: HttpContext) -> None:
        self.ctx = ctx

    def http(self, node: YNode | None) -> HttpSettings | None:
        """The gateway's settings, or ``None`` when the section is absent."""
        if node is None:
            return None
        p: Path_ = ("http",)
        host, port = DEFAULT_HTTP_HOST, DEFAULT_HTTP_PORT
        if (n := node.get("listen")) is not None:
            try:
                host, port = parse_listen(str(n.value))
            except ListenError as exc:
                self.ctx.error(n.line, (*p, "listen"), str(exc))
        batch_max: int | None = None
        if (b := node.get("batch")) is not None:
            batch_max = int(b.value["max_events"].value) if "max_events" in b.value else 100
        origins: tuple[str, ...] = ("*",)
        if (w := node.get("webhook")) is not None and (o := w.get("allowed_origins")) is not None:
            origins = tuple(str(c.value) for c in o.children())
        settings = HttpSettings(
            host=host,
            port=port,
            limits=self.limits(node.get("limits")),
            batch_max=batch_max,
            allowed_origins=origins,
            auth=self.auth(node.get("auth")),
            sse=self.sse(node.get("sse")),
            subscriptions=self.subscriptions(node.get("subscriptions")),
            line=node.line,
        )
        if (problem := check_exposure(settings)) is not None:
            self.ctx.error(node.line, p, problem)
        return settings

    def limits(self, node: YNode | None) -> HttpLimits:
        """``http.limits``."""
        if node is None:
            return HttpLimits()
        p: Path_ = ("http", "limits")
        max_body: int | None = None
        max_headers = _LIMITS.max_headers
        if (n := node.get("max_body")) is not None:
            max_body = self._size(n, (*p, "max_body"))
        if (n := node.get("max_headers")) is not None:
            max_headers = self._size(n, (*p, "max_headers")) or max_headers
        inflight = _LIMITS.max_inflight
        per_client = _LIMITS.max_inflight_per_client
        if (n := node.get("max_inflight")) is not None:
            inflight = int(n.value)
        if (n := node.get("max_inflight_per_client")) is not None:
            per_client = int(n.value)
        read_timeout = _LIMITS.read_timeout
        if (n := node.get("read_timeout")) is not None:
            read_timeout = self._duration(n, (*p, "read_timeout")) or read_timeout
        return HttpLimits(max_body, max_headers, inflight, per_client, read_timeout)

    def _duration(self, node: YNode, path: Path_) -> float | None:
        try:
            seconds = parse_duration(node.value)
        except ValueError as exc:
            self.ctx.error(node.line, path, str(exc))
            return None
        if seconds <= 0:
            self.ctx.error(node.line, path, "must be more than 0s")
            return None
        return seconds

    def _size(self, node: YNode, path: Path_) -> int | None:
        try:
            size = parse_size(node.value)
        except ValueError as exc:
            self.ctx.error(node.line, path, str(exc))
            return None
        if size < 1:
            self.ctx.error(node.line, path, "must be at least 1 byte")
            return None
        return size

    def auth(self, node: YNode | None) -> HttpAuth:
        """``http.auth``: where the tokens are."""
        if node is None:
            return HttpAuth()
        p: Path_ = ("http", "auth")
        tokens_file: Path | None = None
        tokens_env: str | None = None
        if (n := node.get("tokens_file")) is not None:
            tokens_file = self.ctx.base_dir / str(n.value)
        if (n := node.get("tokens_env")) is not None:
            tokens_env = str(n.value)
            if _ENV_NAME.fullmatch(tokens_env) is None:
                self.ctx.error(n.line, (*p, "tokens_env"), "must be an environment variable name")
        allow = False
        if (n := node.get("allow_unauthenticated")) is not None:
            allow = bool(n.value)
        return HttpAuth(tokens_file, tokens_env, allow)

    def sse(self, node: YNode | None) -> SseSettings:
        """``http.sse``."""
        if node is None:
            return SseSettings()
        p: Path_ = ("http", "sse")
        keepalive, ttl = _SSE.keepalive, _SSE.token_ttl
        buffer = _SSE.buffer
        for key in ("keepalive", "token_ttl"):
            if (n := node.get(key)) is not None:
                try:
                    seconds = parse_duration(n.value)
                except ValueError as exc:
                    self.ctx.error(n.line, (*p, key), str(exc))
                    continue
                if seconds <= 0:
                    self.ctx.error(n.line, (*p, key), "must be more than 0s")
                    continue
                keepalive, ttl = (seconds, ttl) if key == "keepalive" else (keepalive, seconds)
        if (n := node.get("buffer")) is not None:
            buffer = int(n.value)
        return SseSettings(keepalive, buffer, ttl)

    def subscriptions(self, node: YNode | None) -> tuple[Subscription, ...]:
        """``http.subscriptions``: named SSE feeds."""
        out: list[Subscription] = []
        names: dict[str, int] = {}
        routes = RoutesBuilder(self.ctx)
        for i, item in enumerate(node.children() if node is not None else []):
            p: Path_ = ("http", "subscriptions", i)
            name = str(item.value["name"].value)
            if name in names:
                self.ctx.error(
                    item.line, (*p, "name"), f"subscription '{name}' is already defined at line "
                    f"{names[name]}"
                )  # fmt: skip
            names[name] = item.line
            source = item.value["from"]
            stream: str | None = None
            subject = ">"
            if (s := source.get("stream")) is not None:
                stream = self.ctx.stream_ref(s, (*p, "from", "stream"))
                spec: StreamSpec | None = self.ctx.streams.get(stream) if stream else None
                subject = spec.subjects[0] if spec is not None and len(spec.subjects) == 1 else ">"
            if (s := source.get("subject")) is not None:
                try:
                    subject = check_subject(str(s.value), wildcards=True)
                except SubjectError as exc:
                    self.ctx.error(s.line, (*p, "from", "subject"), str(exc))
            elif source.get("stream") is None:
                self.ctx.error(source.line, (*p, "from"), "needs 'stream' or 'subject'")
            match = None
            if (m := item.get("match")) is not None:
                match = routes.match(m, (*p, "match"))
            out.append(Subscription(name, stream, subject, match, line=item.line))
        return tuple(out)
