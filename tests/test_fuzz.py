"""Fuzzing the parsers: hostile input gets a documented error, in bounded time, never a crash.

Each target pairs a Hypothesis strategy with a check (``TARGETS``); the tests below run each for
the active profile's ``max_examples`` (tests/conftest.py: small in ``dev`` and ``ci``), and
``bench/fuzz.py --minutes N`` runs the same targets for as long as asked. The checks assert:

- only documented errors: :class:`~cerouter.errors.CerouterError` subclasses, as each entry
  point documents them (``decode``: BindingError; CESQL: CesqlParseError, evaluation never
  raises; ``parse_config``: never raises, reports ConfigErrors; the schema loader:
  SchemaLoadError);
- bounded time per input (:data:`PER_INPUT_SECONDS`, generous for a loaded machine);
- ``Pipeline.process`` never raises, and no input makes it report an ``internal`` error (that is
  a bug caught by its safety net).
"""

from __future__ import annotations

import base64
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cerouter.binding import DecodedEvent, Mode, decode, encode
from cerouter.cesql import Expression, Result, compile_expression
from cerouter.cesql.nodes import render
from cerouter.cesql.parser import parse
from cerouter.config.load import load_config, parse_config
from cerouter.errors import BindingError, CesqlParseError, ConfigError, SchemaLoadError
from cerouter.pipeline import HOPS_HEADER, Pipeline
from cerouter.types import Reason
from cerouter.validation.registry import SchemaRegistry, SchemasSettings

ROOT = Path(__file__).resolve().parents[1]
PER_INPUT_SECONDS = 2.0


@contextmanager
def bounded(what: object) -> Iterator[None]:
    """Fail when the block takes longer than :data:`PER_INPUT_SECONDS`."""
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    assert elapsed < PER_INPUT_SECONDS, f"{elapsed:.1f} s for {what!r:.200}"


# -- building blocks -------------------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _deeply_nested(opener: bytes, closer: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(min_value=0, max_value=3000).map(lambda n: opener * n + b"1" + closer * n)


# -- decode ----------------------------------------------------------------------------------

_HEADER_NAMES = st.sampled_from(
    [
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-time",
        "ce-subject",
        "ce-datacontenttype",
        "ce-dataschema",
        "CE-ID",
        "ce-ext",
        "Content-Type",
        "content-type",
        HOPS_HEADER,
    ]
) | st.text(max_size=12)
_HEADER_VALUES = st.sampled_from(
    [
        "1.0",
        "0.3",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "application/cloudevents+xml",
        "application/json",
        "text/plain",
        "%C0%A0",
        "%zz",
        '"quoted \\" value"',
        "2024-01-01T00:00:00Z",
        "not a time",
    ]
) | st.text(max_size=30)
HEADERS = st.none() | st.dictionaries(_HEADER_NAMES, _HEADER_VALUES, max_size=8)

_ATTRIBUTES = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "0.3"]) | JSON_VALUES,
        "id": st.text(max_size=10) | JSON_VALUES,
        "source": st.sampled_from(["/s", "https://example.com/x", "::"]) | JSON_VALUES,
        "type": st.sampled_from(["com.example.order.created", "com.example.order.paid", "t"])
        | JSON_VALUES,
        "time": st.sampled_from(["2024-01-01T00:00:00Z", "2024-13-01T00:00:00Z"]) | JSON_VALUES,
        "datacontenttype": st.sampled_from(["application/json", "text/plain", "x/y"]) | JSON_VALUES,
        "dataschema": st.sampled_from(["https://schemas.example.com/shop/order-created.json"])
        | JSON_VALUES,
        "data": JSON_VALUES,
        "data_base64": st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode())
        | JSON_VALUES,
        "myext": JSON_VALUES,
    },
)
EVENTS = _ATTRIBUTES.map(orjson.dumps)
PAYLOADS = st.one_of(
    EVENTS,
    st.binary(max_size=100),
    _deeply_nested(b"[", b"]"),
    _deeply_nested(b'{"a":', b"}"),
    st.tuples(st.sampled_from([b"deep", b"data"]), st.integers(0, 1020)).map(
        lambda t: (
            b'{"specversion":"1.0","id":"1","source":"/s","type":"com.example.order.created",'
            + b'"%s":' % t[0]
            + b"[" * t[1]
            + b"]" * t[1]
            + b"}"
        )
    ),
)


@dataclass(frozen=True)
class Message:
    """A NATS message as the router receives it."""

    headers: dict[str, str] | None
    payload: bytes


MESSAGES = st.builds(Message, HEADERS, PAYLOADS)


def check_decode(message: Message) -> None:
    """``decode`` gives an event or a BindingError; a decoded event encodes in both modes."""
    with bounded(message):
        try:
            event = decode(message.headers, message.payload)
        except BindingError:
            return
        assert isinstance(event, DecodedEvent)
        for mode in Mode:
            with suppress(BindingError):
                encode(event, mode)
        with suppress(BindingError):
            event.json_data()


# -- CESQL -----------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        *[
            "AND",
            "OR",
            "XOR",
            "NOT",
            "LIKE",
            "IN",
            "EXISTS",
            "TRUE",
            "FALSE",
            "(",
            ")",
            ",",
            "=",
            "!=",
            "<>",
            "<",
            "<=",
            ">",
            ">=",
            "+",
            "-",
            "*",
            "/",
            "%",
        ],
        *[
            "type",
            "subject",
            "myext",
            "num",
            "missing",
            "1",
            "0",
            "-1",
            "2147483647",
            "-2147483648",
            "2147483648",
        ],
        *[
            "INT",
            "BOOL",
            "STRING",
            "ABS",
            "LENGTH",
            "CONCAT",
            "CONCAT_WS",
            "LOWER",
            "UPPER",
            "TRIM",
            "LEFT",
            "RIGHT",
        ],
        *["SUBSTRING", "IS_BOOL", "IS_INT", "NOFUNC"],
        "'a%'",
        "'%b_'",
        "'x'",
        "'true'",
        '"dq"',
        "'\\%'",
        "'",
        "!",
    ]
)
_ATOMS = st.sampled_from(
    ["TRUE", "FALSE", "0", "7", "-3", "'true'", "'a%c'", "'x'", "type", "num", "missing", "myext"]
)


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["AND", "OR", "XOR", "=", "!=", "<", ">=", "+", "-", "*", "/", "%"])
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"NOT {e}"),
        inner.map(lambda e: f"-({e})"),
        st.tuples(inner, st.sampled_from(["'%a%'", "'_'", "'a\\%'", "'%'"])).map(
            lambda t: f"{t[0]} LIKE {t[1]}"
        ),
        st.tuples(inner, st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]} NOT IN ({', '.join(t[1])})"
        ),
        st.tuples(
            st.sampled_from(["INT", "BOOL", "STRING", "ABS", "CONCAT", "SUBSTRING", "NOFUNC"]),
            st.lists(inner, max_size=3),
        ).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
    )


EXPRESSIONS = st.one_of(
    st.recursive(_ATOMS, _compound, max_leaves=12),
    st.lists(_TOKENS, max_size=25).map(" ".join),
    st.text(max_size=40),
    st.tuples(st.sampled_from(["NOT ", "(", "- ", "INT("]), st.integers(0, 3000)).map(
        lambda t: t[0] * t[1] + "1"
    ),
    st.integers(1, 3000).map(lambda n: " OR ".join(["type = 'x'"] * n)),
)
_ATTRIBUTE_VALUES = st.text(max_size=12) | st.integers() | st.booleans()
CONTEXTS = st.dictionaries(st.sampled_from(["type", "subject", "myext", "num"]), _ATTRIBUTE_VALUES)


@dataclass(frozen=True)
class Evaluation:
    """A CESQL source text and the attributes to evaluate it against."""

    source: str
    attributes: dict[str, object]


EVALUATIONS = st.builds(Evaluation, EXPRESSIONS, CONTEXTS)


def _compiled(source: str) -> Expression | CesqlParseError:
    try:
        return compile_expression(source)
    except CesqlParseError as exc:
        return exc


def check_cesql(case: Evaluation) -> None:
    """Compiling raises only CesqlParseError; evaluating, matching, explaining never raise."""
    with bounded(case):
        expression = _compiled(case.source)
        if isinstance(expression, CesqlParseError):
            assert 1 <= expression.column <= len(case.source) + 1
            return
        result = expression.evaluate(case.attributes)
        assert isinstance(result, Result)
        assert isinstance(expression.matches(case.attributes), bool)
        assert isinstance(expression.explain(case.attributes), str)
        assert parse(render(expression.tree)) == expression.tree


# -- routes.yaml -----------------------------------------------------------------------------

_FILTERS: st.SearchStrategy[Any] = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["a", "com.example.x"]) | _SCALARS,
            "exact": st.dictionaries(st.sampled_from(["type", "source", "data.x"]), _SCALARS),
            "prefix": st.dictionaries(st.sampled_from(["type", "subject"]), _SCALARS),
            "sql": EXPRESSIONS | _SCALARS,
        },
    ),
    lambda inner: st.one_of(
        st.builds(lambda f: {"not": f}, inner),
        st.builds(lambda fs: {"all": fs}, st.lists(inner, max_size=3)),
        st.builds(lambda fs: {"any": fs}, st.lists(inner, max_size=3)),
    ),
    max_leaves=6,
)
_DESTINATIONS = st.one_of(
    st.builds(lambda s: {"subject": s}, st.sampled_from(["out", "orders.{type}", "a.*", ""])),
    st.builds(lambda s: {"stream": "S", "subject": s}, st.sampled_from(["s.x", "{type}"])),
    st.builds(lambda q: {"queue": q, "durable": True}, st.sampled_from(["q", ""])),
    JSON_VALUES,
)
_ROUTES = st.fixed_dictionaries(
    {"name": st.sampled_from(["r", "r2", ""]) | _SCALARS},
    optional={
        "match": _FILTERS | JSON_VALUES,
        "to": _DESTINATIONS | st.lists(_DESTINATIONS, max_size=3),
        "final": st.booleans() | _SCALARS,
        "schema": st.sampled_from(["order-created.json", "nope.json"]) | _SCALARS,
    },
)
_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from([1, 2, "1"]),
        "routes": st.lists(_ROUTES, max_size=3) | JSON_VALUES,
        "streams": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["S", "s s"]), "subjects": JSON_VALUES}),
            max_size=2,
        ),
        "unrouted": st.sampled_from(["deadletter", "drop", "x"]) | _DESTINATIONS,
        "nats": st.dictionaries(st.sampled_from(["urls", "name", "token"]), JSON_VALUES),
        "extra": JSON_VALUES,
    },
)
_YAML_SNIPPETS = st.sampled_from(
    [
        "&a ",
        "*a",
        "<<: *a\n",
        "\t",
        "{",
        "[",
        "]",
        "}",
        ": ",
        "- ",
        "---\n",
        "!!python/tuple ",
        "${X}",
    ]
)


def _spliced(text: str, snippets: list[tuple[int, str]]) -> str:
    for position, snippet in snippets:
        at = position % (len(text) + 1)
        text = text[:at] + snippet + text[at:]
    return text


ROUTES_FILES = st.one_of(
    _DOCUMENTS.map(lambda d: yaml.safe_dump(d, sort_keys=False)),
    st.builds(
        _spliced,
        _DOCUMENTS.map(lambda d: yaml.safe_dump(d, sort_keys=False)),
        st.lists(st.tuples(st.integers(0, 10_000), _YAML_SNIPPETS), max_size=4),
    ),
    st.text(max_size=200),
    st.integers(0, 20_000).map(lambda n: "version: 1\nroutes: " + "[" * n + "]" * n),
    st.integers(1, 12).map(
        lambda n: (
            "version: 1\nroutes: []\na0: &a0 [x, x]\n"
            + "".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]\n" for i in range(1, n))
        )
    ),
)


def check_parse_config(text: str) -> None:
    """``parse_config`` never raises; it returns ConfigErrors, or a config a Pipeline takes."""
    with bounded(text):
        result = parse_config(text, check_schemas=False, environ={})
        assert all(isinstance(error, ConfigError) for error in result.errors)
        assert (result.config is None) == bool(result.errors)
        if result.config is not None:
            Pipeline(result.config, None)


# -- schema files ----------------------------------------------------------------------------

_SCHEMA_KEYWORDS: st.SearchStrategy[Any] = st.recursive(
    st.booleans()
    | st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["object", "string", "array", "nope"]) | JSON_VALUES,
            "$ref": st.sampled_from(
                ["#", "#/$defs/a", "b.json", "b.json#/x", "https://x.example/s", "file:///etc/x"]
            )
            | JSON_VALUES,
            "$id": st.sampled_from(["https://x.example/s", "b.json", "#frag"]) | JSON_VALUES,
            "pattern": st.sampled_from(["^a+$", "(", "\\p{L}"]) | JSON_VALUES,
            "format": st.sampled_from(["date-time", "email", "nope"]),
            "enum": JSON_VALUES,
            "x-cloudevents-type": st.sampled_from(["t", ""]) | JSON_VALUES,
        },
    ),
    lambda inner: st.one_of(
        st.builds(
            lambda p: {"properties": p}, st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        st.builds(lambda i: {"items": i}, inner),
        st.builds(lambda d: {"$defs": {"a": d}}, inner),
        st.builds(lambda s: {"anyOf": s}, st.lists(inner, max_size=3)),
    ),
    max_leaves=8,
)
_SCHEMA_DOCUMENTS = st.builds(
    lambda draft, body: {**body, "$schema": draft} if draft and isinstance(body, dict) else body,
    st.sampled_from(
        [
            None,
            "https://json-schema.org/draft/2020-12/schema",
            "http://json-schema.org/draft-07/schema#",
            "http://json-schema.org/draft-04/schema#",
            "https://example.com/custom",
        ]
    ),
    _SCHEMA_KEYWORDS,
)


def _schema_file_text(document: Any, suffix: str) -> bytes:
    if suffix == ".json":
        return orjson.dumps(document)
    return yaml.safe_dump(document).encode()


_SCHEMA_FILES = st.one_of(
    st.builds(
        lambda name, suffix, doc: (name + suffix, _schema_file_text(doc, suffix)),
        st.sampled_from(["a", "b", "sub/c"]),
        st.sampled_from([".json", ".yaml"]),
        _SCHEMA_DOCUMENTS,
    ),
    st.tuples(st.sampled_from(["raw.json", "raw.yaml"]), st.binary(max_size=80)),
    st.tuples(st.sampled_from(["deep.json"]), _deeply_nested(b'{"items":', b"}")),
    st.tuples(st.sampled_from(["deep.yaml"]), _deeply_nested(b"[", b"]")),
    st.tuples(
        st.sampled_from(["bomb.yaml"]),
        st.integers(1, 12).map(
            lambda n: (
                "a0: &a0 [x, x]\n"
                + "".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]\n" for i in range(1, n))
            ).encode()
        ),
    ),
)
SCHEMA_DIRECTORIES = st.lists(_SCHEMA_FILES, max_size=3, unique_by=lambda f: f[0])


@dataclass(frozen=True)
class Instance:
    """A schema directory (files by relative path) and a JSON value to validate."""

    files: list[tuple[str, bytes]]
    instance: Any


SCHEMA_CASES = st.builds(Instance, SCHEMA_DIRECTORIES, JSON_VALUES)


def check_schema_loader(case: Instance) -> None:
    """Loading gives a registry or a SchemaLoadError; a loaded schema checks any JSON value."""
    with tempfile.TemporaryDirectory(prefix="cerouter-fuzz-") as directory:
        root = Path(directory)
        for name, content in case.files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(content)
        with bounded(case):
            try:
                registry = SchemaRegistry.load(SchemasSettings(directory=root))
            except SchemaLoadError:
                return
            for schema in registry:
                if not schema.is_valid(case.instance):
                    assert schema.errors(case.instance)


# -- the pipeline ----------------------------------------------------------------------------


def _example_pipeline() -> Pipeline:
    config = load_config(ROOT / "routes.yaml", environ={})
    return Pipeline(config, SchemaRegistry.load(config.schemas))


_PIPELINE: list[Pipeline] = []


def check_pipeline(message: Message) -> None:
    """``Pipeline.process`` never raises, and never needs its safety net (reason ``internal``)."""
    if not _PIPELINE:
        _PIPELINE.append(_example_pipeline())
    with bounded(message):
        decision = _PIPELINE[0].process(message.headers, message.payload)
    assert [r for r in decision.rejections if r.reason is Reason.INTERNAL] == []


# -- the targets -----------------------------------------------------------------------------

TARGETS: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "decode": (MESSAGES, check_decode),
    "cesql": (EVALUATIONS, check_cesql),
    "parse_config": (ROUTES_FILES, check_parse_config),
    "schema_loader": (SCHEMA_CASES, check_schema_loader),
    "pipeline": (MESSAGES, check_pipeline),
}


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz(name: str) -> None:
    strategy, check = TARGETS[name]
    given(strategy)(check)()
