"""routes.yaml: the router's declarative configuration, parsed once into frozen values.

The format (version 1; ``cerouter routes schema`` prints its JSON Schema)::

    version: 1                       # required
    nats:                            # connection; every string may use ${ENV} / ${ENV:-default}
      urls: nats://127.0.0.1:4222    #   a URL or a list; none: cerouter run embeds a server
      name: cerouter                 #   client name (default cerouter)
      credentials: app.creds         #   a .creds file, or token, or user + password (one method)
      token: ${NATS_TOKEN}
      tls: {ca: ca.pem, cert: c.pem, key: k.pem}
      connect_timeout: 2s
    ingress:                         # default: core subject events.> in queue group cerouter
      core: {subjects: [events.>], queue: cerouter}
      jetstream:                     # durable consumers of declared streams
        - {stream: EVENTS, durable: cerouter, subjects: [events.>], ack_wait: 30s, max_deliver: 5,
           max_ack_pending: 1000}
    streams:                         # JetStream streams the router provisions
      - {name: ORDERS, subjects: [orders.>], retention: limits, storage: file, max_age: 7d,
         max_bytes: 1GiB, max_msgs: 1000000, replicas: 1, duplicate_window: 2m}
    schemas:                         # directory relative to this file (default schemas)
      directory: schemas
      types: {com.example.order.created: order-created.json}
      unknown: allow                 # or reject
    deadletter:                      # default stream DEADLETTER, subject deadletter.{reason}
      stream: DEADLETTER
      subject: deadletter.{reason}
    routes:                          # ordered; all matching routes fire until a final one
      - name: orders
        match: {type: com.example.order.created}        # see cerouter.routing.filter_spec
        schema: order-created.json                      # the event must also satisfy it
        to:                                             # one destination or a list
          - {subject: "orders.{type}", mode: structured}  # structured | binary | same (default)
          - {stream: ORDERS, subject: "orders.{type}"}
          - {queue: billing, durable: true}             # subject default work.<queue>
          - {request: inventory.reserve, timeout: 2s}   # timeout default 5s
        final: true                                     # matched: later routes are skipped
    unrouted: deadletter             # or drop, or a destination: {subject: "unrouted.{type}"}
    http:                            # the HTTP gateway (off without this section or run --http)
      listen: 127.0.0.1:8080         #   host:port; port 0 picks a free one
      limits: {max_body: 1MiB, max_headers: 32KiB, max_inflight: 1000,  # max_body default:
               max_inflight_per_client: 100, read_timeout: 30s}  # the server's max_payload
      batch: {max_events: 100}       #   accept application/cloudevents-batch+json
      webhook: {allowed_origins: ["*"]}           # the CloudEvents webhook handshake
      auth:                          #   bearer tokens: from a file or a variable, never inline
        tokens_file: tokens.yaml     #   its format: cerouter.gateway.tokens
        tokens_env: CEROUTER_HTTP_TOKENS
        allow_unauthenticated: false #   required to listen beyond loopback without auth
      sse: {keepalive: 15s, buffer: 256, token_ttl: 5m}
      subscriptions:                 #   named Server-Sent Events feeds for GET /events/stream
        - {name: orders, from: {stream: ORDERS}, match: {type: com.example.order.created}}

Subject templates (:mod:`cerouter.routing.subjects`) put ``{attribute}`` placeholders in YAML,
which reads braces as a mapping inside ``{...}`` and at the start of a value: quote templates
there. An event that fails its route's ``schema`` is dead-lettered for that route (reason
``schema``) while the other matched routes still deliver it.

Durations are numbers of seconds or strings like ``500ms``, ``2s``, ``1m``, ``1h``, ``7d``; sizes
are bytes or strings like ``10MB``, ``1GiB``. Relative paths (schemas directory, credentials, TLS
files) are relative to the routes file's directory. The dead-letter stream is provisioned with
default limits, capturing the dead-letter subject, when ``streams`` does not declare it. A durable
queue is kept in the declared stream that captures its subject (declare one with
``retention: workqueue``).

Every problem is a :class:`~cerouter.errors.ConfigError` whose text is
``routes.yaml:14: routes[2].to[0]: unknown key 'subjet' (did you mean 'subject'?)``.
:func:`load_config` raises the first; :func:`check_config` returns them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cerouter.errors import ConfigError
from cerouter.routing.filters import Filter
from cerouter.routing.model import Destination, Route
from cerouter.routing.subjects import SubjectTemplate
from cerouter.validation.registry import SchemaRegistry, SchemasSettings

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_CLIENT_NAME = "cerouter"
DEFAULT_INGRESS_SUBJECT = "events.>"
DEFAULT_QUEUE_GROUP = "cerouter"
DEFAULT_DURABLE = "cerouter"
DEFAULT_DEADLETTER_STREAM = "DEADLETTER"
DEFAULT_DEADLETTER_SUBJECT = "deadletter.{reason}"
DEFAULT_WORK_PREFIX = "work"
DEFAULT_REQUEST_TIMEOUT = 5.0

Retention = Literal["limits", "interest", "workqueue"]
Storage = Literal["file", "memory"]


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS files for the NATS connection (absolute paths)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True, slots=True)
class NatsSettings:
    """How to connect to NATS. Secrets are resolved from ``${ENV}`` at load time."""

    urls: tuple[str, ...] = ()  # none declared: the embedded server's, DEFAULT_NATS_URL
    name: str = DEFAULT_CLIENT_NAME
    credentials: Path | None = None
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsSettings | None = None
    connect_timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class CoreIngress:
    """Core NATS subscriptions, shared by routers through a queue group."""

    subjects: tuple[str, ...] = (DEFAULT_INGRESS_SUBJECT,)
    queue: str = DEFAULT_QUEUE_GROUP


@dataclass(frozen=True, slots=True)
class JetStreamIngress:
    """A durable JetStream consumer of a declared stream."""

    stream: str
    durable: str = DEFAULT_DURABLE
    subjects: tuple[str, ...] = ()  # filter subjects; empty = the whole stream
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 1000
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class IngressSettings:
    """What the router consumes."""

    core: CoreIngress | None = CoreIngress()
    jetstream: tuple[JetStreamIngress, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream the router provisions.

    ``None`` means routes.yaml does not declare the setting: a new stream gets NATS's default
    (no limits, 1 replica, a 2-minute duplicate window, no description) and an existing stream
    keeps its own value. Retention and storage cannot change in place, so they are always
    checked (default ``limits`` and ``file``).
    """

    name: str
    subjects: tuple[str, ...]
    retention: Retention = "limits"
    storage: Storage = "file"
    max_age: float | None = None
    max_bytes: int | None = None
    max_msgs: int | None = None
    replicas: int | None = None
    duplicate_window: float | None = None
    description: str | None = None
    implicit: bool = False  # added by cerouter (the default dead-letter stream)
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class DeadLetterSettings:
    """Where failed events go: a stream and a subject template (``{reason}`` + attributes)."""

    stream: str = DEFAULT_DEADLETTER_STREAM
    subject: SubjectTemplate = field(
        default_factory=lambda: SubjectTemplate.parse(DEFAULT_DEADLETTER_SUBJECT)
    )
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Unrouted:
    """What happens to an event no route matches."""

    action: Literal["deadletter", "drop", "publish"] = "deadletter"
    destination: Destination | None = None  # for "publish"


DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8080


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What HTTP clients may ask of the gateway.

    ``max_body=None``: the NATS server's ``max_payload`` (a bigger event could not be published
    anyway). ``max_headers`` bounds the request head as sent (request line and headers; 431).
    ``max_inflight`` is the requests being routed at once (503), ``max_inflight_per_client`` the
    requests one client address has open at once (429): uvicorn serves the requests of one
    connection one after the other, so a per-connection limit could never be exceeded.
    ``read_timeout``: the head, and then the body, must each arrive within it (408).
    """

    max_body: int | None = None
    max_headers: int = 32 * 1024
    max_inflight: int = 1000
    max_inflight_per_client: int = 100
    read_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class HttpAuth:
    """Where the gateway's bearer tokens come from (a file, a variable, or both)."""

    tokens_file: Path | None = None
    tokens_env: str | None = None
    allow_unauthenticated: bool = False

    @property
    def configured(self) -> bool:
        """Whether any token source is declared."""
        return self.tokens_file is not None or self.tokens_env is not None


@dataclass(frozen=True, slots=True)
class SseSettings:
    """Server-Sent Events: keep-alive period, per-client buffer (events), query-token lifetime."""

    keepalive: float = 15.0
    buffer: int = 256
    token_ttl: float = 300.0


@dataclass(frozen=True, slots=True)
class Subscription:
    """A named SSE feed: events of a stream (resumable) or a subject, optionally filtered."""

    name: str
    stream: str | None  # None: a core subscription of ``subject``
    subject: str  # the subject filter (for a stream: default its first subject, ``>`` for all)
    match: Filter | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The HTTP gateway: ``POST /events`` in, ``GET /events/stream`` out, health probes."""

    host: str = DEFAULT_HTTP_HOST
    port: int = DEFAULT_HTTP_PORT
    limits: HttpLimits = HttpLimits()
    batch_max: int | None = None  # None: batch mode refused with 415
    allowed_origins: tuple[str, ...] = ("*",)
    auth: HttpAuth = HttpAuth()
    sse: SseSettings = SseSettings()
    subscriptions: tuple[Subscription, ...] = ()
    line: int = field(default=0, compare=False)

    def subscription(self, name: str) -> Subscription | None:
        """The subscription called ``name``."""
        return next((s for s in self.subscriptions if s.name == name), None)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """A loaded routes.yaml."""

    path: Path
    version: int
    nats: NatsSettings
    ingress: IngressSettings
    streams: tuple[StreamSpec, ...]
    schemas: SchemasSettings
    deadletter: DeadLetterSettings
    routes: tuple[Route, ...]
    unrouted: Unrouted
    http: HttpSettings | None = None  # None: no gateway unless ``run --http`` asks for one

    def stream(self, name: str) -> StreamSpec | None:
        """The declared (or implicit) stream called ``name``."""
        return next((s for s in self.streams if s.name == name), None)

    def route(self, name: str) -> Route | None:
        """The route called ``name``."""
        return next((r for r in self.routes if r.name == name), None)


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """Something legal but probably wrong (lint); ``code`` names the check."""

    code: str
    message: str
    line: int | None = None
    path: str = ""

    def format(self, file: str) -> str:
        """``file:line: warning: key.path: message``."""
        where = f"{file}:{self.line}: " if self.line is not None else f"{file}: "
        key = f"{self.path}: " if self.path else ""
        return f"{where}warning: {key}{self.message}"


@dataclass(frozen=True, slots=True)
class ConfigCheck:
    """The outcome of checking a routes file: the config (when valid), errors and warnings."""

    config: RouterConfig | None
    errors: tuple[ConfigError, ...] = ()
    warnings: tuple[ConfigWarning, ...] = ()
    registry: SchemaRegistry | None = None

    @property
    def ok(self) -> bool:
        """``True`` when there are no errors."""
        return not self.errors
