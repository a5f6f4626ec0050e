"""routes.yaml loading: the model, defaults, and located errors with their exact messages."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from cerouter.binding import Mode
from cerouter.config.load import check_config, load_config
from cerouter.config.model import (
    CoreIngress,
    IngressSettings,
    NatsSettings,
    RouterConfig,
)
from cerouter.config.values import parse_duration, parse_size
from cerouter.errors import ConfigError
from cerouter.routing.filters import Compare

ROOT = Path(__file__).resolve().parents[1]

SCHEMA = """{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://example.com/order.json",
  "x-cloudevents-type": "com.example.order.created",
  "type": "object"
}
"""


def write(tmp_path: Path, text: str, *, schemas: bool = True) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    if schemas:
        (tmp_path / "schemas").mkdir(exist_ok=True)
        (tmp_path / "schemas" / "order.json").write_text(SCHEMA, encoding="utf-8")
    return path


def errors(tmp_path: Path, text: str, **kw: object) -> list[str]:
    """The error lines, with the temporary directory left out of the file name."""
    result = check_config(write(tmp_path, text), environ={}, **kw)  # type: ignore[arg-type]
    assert result.config is None
    return [str(e).removeprefix(f"{tmp_path}/") for e in result.errors]


def load(tmp_path: Path, text: str, **kw: object) -> RouterConfig:
    return load_config(write(tmp_path, text), environ={"TOKEN": "s3cret"}, **kw)  # type: ignore[arg-type]


MINIMAL = """
version: 1
routes:
  - name: orders
    match: {type: com.example.order.created}
    to: {subject: orders.created}
"""


def test_minimal_file_and_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert config.version == 1
    assert config.nats == NatsSettings()
    assert config.nats.urls == ()  # none declared: `cerouter run` embeds a server
    assert config.ingress == IngressSettings(CoreIngress(("events.>",), "cerouter"), ())
    assert config.deadletter.stream == "DEADLETTER"
    assert config.deadletter.subject.source == "deadletter.{reason}"
    # the dead-letter stream is provisioned implicitly, capturing its subject
    [dl] = config.streams
    assert (dl.name, dl.subjects, dl.implicit) == ("DEADLETTER", ("deadletter.*",), True)
    assert config.schemas.directory == tmp_path / "schemas"
    assert config.schemas.unknown == "allow"
    assert config.unrouted.action == "deadletter"
    [route] = config.routes
    assert route.name == "orders"
    assert route.match == Compare("exact", "type", "com.example.order.created")
    assert route.final is False
    assert route.line == 3
    [dest] = route.to
    assert (dest.kind, dest.subject_template.source, dest.mode) == (
        "subject",
        "orders.created",
        None,
    )


FULL = """
version: 1
nats:
  urls: [nats://a:4222, "nats://b:4222"]
  name: shop
  token: ${TOKEN}
  tls: {ca: certs/ca.pem}
  connect_timeout: 500ms
ingress:
  core: {subjects: [events.>, legacy.*], queue: routers}
  jetstream:
    - {stream: EVENTS, durable: r1, subjects: events.orders.>, ack_wait: 1m, max_deliver: 3}
streams:
  - name: EVENTS
    subjects: events.>
    retention: limits
    storage: memory
    max_age: 7d
    max_bytes: 10MB
    max_msgs: 1000
    replicas: 3
    duplicate_window: 30s
  - {name: ORDERS, subjects: [orders.>]}
  - {name: WORK, subjects: work.>, retention: workqueue}
schemas:
  directory: schemas
  types: {com.example.order.created: order.json}
  unknown: reject
deadletter: {stream: DL, subject: "dead.{reason}.{type}"}
routes:
  - name: fan
    description: every kind of destination
    match:
      prefix: {type: com.example.}
    schema: https://example.com/order.json
    to:
      - {subject: "a.{type}", mode: binary}
      - {stream: ORDERS, subject: "orders.{type}", mode: structured}
      - {queue: billing, durable: true}
      - {queue: mail, subject: "mail.{tenant}", mode: same}
      - {request: inventory.reserve, timeout: 2.5}
    final: true
unrouted: {subject: "unrouted.{type}"}
"""


def test_every_section(tmp_path: Path) -> None:
    config = load(tmp_path, FULL)
    assert config.nats.urls == ("nats://a:4222", "nats://b:4222")
    assert config.nats.name == "shop"
    assert config.nats.token == "s3cret"
    assert "s3cret" not in repr(config.nats)
    assert config.nats.tls is not None
    assert config.nats.tls.ca == tmp_path / "certs" / "ca.pem"
    assert config.nats.connect_timeout == 0.5
    assert config.ingress.core == CoreIngress(("events.>", "legacy.*"), "routers")
    [js] = config.ingress.jetstream
    assert (js.stream, js.durable, js.subjects, js.ack_wait, js.max_deliver) == (
        "EVENTS", "r1", ("events.orders.>",), 60.0, 3,
    )  # fmt: skip
    assert js.max_ack_pending == 1000
    events = config.stream("EVENTS")
    assert events is not None
    assert (events.storage, events.max_age, events.max_bytes, events.max_msgs) == (
        "memory", 7 * 86400.0, 10_000_000, 1000,
    )  # fmt: skip
    assert (events.replicas, events.duplicate_window) == (3, 30.0)
    assert config.stream("DL") is not None  # implicit, capturing dead.*.*
    assert config.stream("DL").subjects == ("dead.*.*",)  # type: ignore[union-attr]
    assert dict(config.schemas.types) == {"com.example.order.created": "order.json"}
    assert config.schemas.unknown == "reject"
    [route] = config.routes
    assert route.final is True
    assert route.schema == "https://example.com/order.json"
    assert route.description == "every kind of destination"
    kinds = [(d.kind, d.subject_template.source, d.mode, d.stream, d.queue, d.durable, d.timeout)
             for d in route.to]  # fmt: skip
    assert kinds == [
        ("subject", "a.{type}", Mode.BINARY, None, None, False, None),
        ("stream", "orders.{type}", Mode.STRUCTURED, "ORDERS", None, False, None),
        ("queue", "work.billing", None, "WORK", "billing", True, None),
        ("queue", "mail.{tenant}", None, None, "mail", False, None),
        ("request", "inventory.reserve", None, None, None, False, 2.5),
    ]
    assert config.unrouted.action == "publish"
    assert config.unrouted.destination is not None
    assert config.unrouted.destination.subject_template.source == "unrouted.{type}"


def test_unrouted_drop_and_to_as_a_single_mapping(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL + "unrouted: drop\n")
    assert config.unrouted.action == "drop"


def test_env_references(tmp_path: Path) -> None:
    text = """
    version: 1
    nats: {urls: "${NATS_URL:-nats://localhost:4222}", user: "${U}", password: "${P}"}
    routes: []
    """
    config = load_config(write(tmp_path, text), environ={"U": "ann", "P": "pw"})
    assert config.nats.urls == ("nats://localhost:4222",)
    assert (config.nats.user, config.nats.password) == ("ann", "pw")
    kept = load_config(write(tmp_path, text), environ={}, resolve_env=False)
    assert kept.nats.user == "${U}"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(2, 2.0), (0.5, 0.5), ("2s", 2.0), ("500ms", 0.5), ("1m", 60.0), ("1.5h", 5400.0),
     ("7d", 604800.0), ("3", 3.0)],
)  # fmt: skip
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "size"),
    [(1024, 1024), ("512KB", 512_000), ("10MB", 10_000_000), ("1GiB", 2**30), ("2 KiB", 2048)],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_size(value) == size


# --------------------------------------------------------------------------- located errors

# Each case: the file, then the exact error lines expected (file name is routes.yaml).
ERROR_CASES = [
    pytest.param(
        """
        version: 1
        streams:
          - {name: ORDERS, subjects: orders.>}
        routes:
          - name: a
            match: {type: x}
            to: {subject: a}
          - name: b
            match: {type: y}
            to: {subject: b}
          - name: c
            match: {type: z}
            to:
              - subjet: orders.created
        """,
        ["routes.yaml:14: routes[2].to[0]: unknown key 'subjet' (did you mean 'subject'?)"],
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {subject: a}
          - name: a
            match: {type: y}
            to: {subject: b}
        """,
        ["routes.yaml:6: routes[1].name: duplicate route name 'a' (first at line 3)"],
        id="duplicate-route-name",
    ),
    pytest.param(
        """
        version: 1
        streams:
          - {name: ORDERS, subjects: orders.>}
        routes:
          - name: a
            match: {type: x}
            to: {stream: ORDRES, subject: orders.x}
        """,
        ["routes.yaml:7: routes[0].to.stream: undefined stream 'ORDRES' (did you mean 'ORDERS'?)"],
        id="undefined-stream",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            schema: ordr.json
            to: {subject: a}
        """,
        [
            "routes.yaml:5: routes[0].schema: unknown schema 'ordr.json' "
            "(not found in {dir}/schemas)"
        ],
        id="unknown-schema",
    ),
    pytest.param(
        """
        version: 1
        schemas:
          types:
            com.example.x: nope.json
        routes: []
        """,
        [
            "routes.yaml:4: schemas.types[\"com.example.x\"]: 'com.example.x' maps to "
            "'nope.json', which is neither the $id nor the path of a schema in {dir}/schemas"
        ],
        id="unknown-schema-in-type-mapping",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {subject: a, mode: strucutred}
        """,
        [
            "routes.yaml:5: routes[0].to.mode: must be one of structured, binary, same, "
            "got 'strucutred' (did you mean 'structured'?)"
        ],
        id="enum-did-you-mean",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {subject: a}
            final: sometimes
        """,
        ["routes.yaml:6: routes[0].final: expected true or false, got a string 'sometimes'"],
        id="wrong-type",
    ),
    pytest.param(
        """
        routes: []
        """,
        ["routes.yaml:1: missing required key 'version'"],
        id="missing-version",
    ),
    pytest.param(
        """
        version: 2
        routes: []
        """,
        ["routes.yaml:1: version: unsupported version (this cerouter reads version: 1) (got 2)"],
        id="future-version",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {subject: a}
            to: {subject: b}
        """,
        ["routes.yaml:6: routes[0]: duplicate key 'to' (first at line 5)"],
        id="duplicate-yaml-key",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match:
              type: x
              sql: "source LIKE"
            to: {subject: a}
        """,
        ["routes.yaml:6: routes[0].match.sql: CESQL syntax error at column 12: {cesql}"],
        id="cesql-syntax",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {subject: "orders.*"}
        """,
        [
            "routes.yaml:5: routes[0].to.subject: subject template 'orders.*' contains '*'; "
            "wildcards, whitespace and braces outside {placeholders} are not allowed"
        ],
        id="wildcard-template",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to:
              subject: {subject}
        """,
        [
            "routes.yaml:6: routes[0].to.subject: expected a string, got a mapping; "
            "quote a value that starts with '{': \"{subject}\""
        ],
        id="unquoted-placeholder",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match:
              prefx: {type: x}
            to: {subject: a}
        """,
        ["routes.yaml:5: routes[0].match: unknown key 'prefx' (did you mean 'prefix'?)"],
        id="unknown-dialect",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {Type: x}
            to: {subject: a}
        """,
        [
            "routes.yaml:4: routes[0].match: invalid key 'Type': must be a dialect (exact, "
            "prefix, suffix, all, any, not, sql), an attribute name (lowercase letters and "
            "digits) or data.<field>"
        ],
        id="bad-attribute-name",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {queue: billing, durable: true}
        """,
        [
            "routes.yaml:5: routes[0].to.durable: durable queue 'billing' needs a stream "
            "capturing 'work.billing': declare one under 'streams' (retention: workqueue) or "
            "name it with 'stream'"
        ],
        id="durable-queue-without-stream",
    ),
    pytest.param(
        """
        version: 1
        streams:
          - {name: A, subjects: orders.>}
          - {name: B, subjects: [x, orders.eu.*]}
        routes: []
        """,
        [
            "routes.yaml:4: streams[1].subjects: subject 'orders.eu.*' overlaps 'orders.>' of "
            "stream 'A' (NATS rejects streams with overlapping subjects)"
        ],
        id="overlapping-streams",
    ),
    pytest.param(
        """
        version: 1
        streams:
          - {name: EVENTS, subjects: events.>}
        ingress:
          jetstream:
            - {stream: EVENT}
            - {stream: EVENTS, subjects: other.>}
        routes: []
        """,
        [
            "routes.yaml:6: ingress.jetstream[0].stream: undefined stream 'EVENT' (did you mean "
            "'EVENTS'?)",
            "routes.yaml:7: ingress.jetstream[1].subjects: filter subject 'other.>' is not within "
            "stream 'EVENTS' (subjects: events.>)",
        ],
        id="jetstream-ingress",
    ),
    pytest.param(
        """
        version: 1
        nats: {token: "${NATS_TOKEN}"}
        routes: []
        """,
        ["routes.yaml:2: nats.token: environment variable NATS_TOKEN is not set"],
        id="unset-env",
    ),
    pytest.param(
        """
        version: 1
        nats: {token: "${T:-x}", user: u, password: "${P:-y}"}
        routes: []
        """,
        ["routes.yaml:2: nats: use one authentication method, not token and user"],
        id="two-auth-methods",
    ),
    pytest.param(
        """
        version: 1
        streams:
          - {name: DL, subjects: dead.>}
        deadletter: {stream: DL, subject: "deadletter.{reason}"}
        routes: []
        """,
        [
            "routes.yaml:4: deadletter: stream 'DL' does not capture the dead-letter subject "
            "'deadletter.{reason}'"
        ],
        id="deadletter-not-captured",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {subject: a}
          unrouted: drop
        """,
        [
            "routes.yaml:6: YAML syntax error: bad indentation: this line does not line up with "
            "the lines above it"
        ],
        id="yaml-syntax",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: {subject: a.{type}}
        """,
        [
            "routes.yaml:5: YAML syntax error: expected ',' or '}', but got '{' "
            '(quote subject templates: "orders.{type}")'
        ],
        id="yaml-flow-braces",
    ),
    pytest.param(
        """
        version: 1
        routes:
          - name: a
            match: {type: x}
            to: []
          - match: {type: x}
            to: {subjet: a, mode: binary}
        """,
        [
            "routes.yaml:5: routes[0].to: must not be empty",
            "routes.yaml:6: routes[1]: missing required key 'name'",
            "routes.yaml:7: routes[1].to: unknown key 'subjet' (did you mean 'subject'?)",
        ],
        id="several-errors-in-file-order",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERROR_CASES)
def test_located_errors(tmp_path: Path, text: str, expected: list[str]) -> None:
    from cerouter.cesql import compile_expression
    from cerouter.errors import CesqlParseError

    try:
        compile_expression("source LIKE")
        cesql = ""
    except CesqlParseError as exc:
        cesql = exc.message
    got = errors(tmp_path, text)
    want = [e.replace("{dir}", str(tmp_path)).replace("{cesql}", cesql) for e in expected]
    assert got == want


def test_load_config_raises_the_first_error_with_file_line_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, ERROR_CASES[0].values[0])  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert (err.file, err.line, err.path) == (str(path), 14, "routes[2].to[0]")
    assert err.message == "unknown key 'subjet' (did you mean 'subject'?)"


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    missing = check_config(tmp_path / "nope.yaml")
    assert [str(e) for e in missing.errors] == [
        f"{tmp_path / 'nope.yaml'}: cannot read: No such file or directory"
    ]
    result = check_config(write(tmp_path, "# nothing\n"))
    assert [e.message for e in result.errors] == [
        "the file is empty; it needs at least 'version: 1' and 'routes'"
    ]
    result = check_config(write(tmp_path, "version: 1\nroutes: []\n---\nversion: 1\n"))
    assert [(e.line, e.message) for e in result.errors] == [
        (4, "expected one YAML document, found several (---)")
    ]


def test_schema_directory_problems_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path, "version: 1\nschemas:\n  directory: missing\nroutes: []\n", schemas=False
    )
    result = check_config(path)
    assert [(e.line, e.path) for e in result.errors] == [(3, "schemas")]
    assert "schema directory not found" in result.errors[0].message
    assert load_config(path, check_schemas=False).routes == ()


def test_yaml_merge_keys_and_anchors(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        version: 1
        routes:
          - &base
            name: a
            match: {type: x}
            to: {subject: a, mode: binary}
          - <<: *base
            name: b
        """,
    )
    assert [r.name for r in config.routes] == ["a", "b"]
    assert config.routes[1].to == config.routes[0].to


def test_filter_values_keep_their_yaml_text(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        version: 1
        routes:
          - name: a
            match: {country: NO, version: 1.0, flag: true, n: 007}
            to: {subject: a}
        """,
    )
    values = {c.attribute: c.value for c in config.routes[0].match.filters}  # type: ignore[attr-defined]
    assert values == {"country": "NO", "version": "1.0", "flag": "true", "n": "007"}


def test_error_messages_never_span_lines(tmp_path: Path) -> None:
    for param in ERROR_CASES:
        for line in errors(tmp_path, param.values[0]):  # type: ignore[arg-type]
            assert "\n" not in line
            assert re.match(r"routes\.yaml:\d+: ", line)


# --------------------------------------------------------------------------- the shipped example


def test_the_repository_routes_yaml_loads() -> None:
    config = load_config(ROOT / "routes.yaml", environ={})
    assert config.nats.urls == ()  # none: `cerouter run` starts its own server
    kinds = {d.kind for r in config.routes for d in r.to}
    assert kinds == {"subject", "stream", "queue", "request"}
    assert any(r.final for r in config.routes)
    assert any(r.match.needs_data for r in config.routes)
    assert any("sql" in str(r.match) for r in config.routes)
    assert config.unrouted.action == "deadletter"


def test_yaml_blocks_in_the_readme_load(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```ya?ml\n(.*?)```", readme, re.DOTALL) if "version: 1" in b]
    if not blocks:
        pytest.skip("the README has no routes.yaml block yet")
    (tmp_path / "schemas").symlink_to(ROOT / "schemas")
    for block in blocks:
        path = tmp_path / "routes.yaml"
        path.write_text(block, encoding="utf-8")
        result = check_config(path, environ={})
        assert result.ok, [str(e) for e in result.errors]
