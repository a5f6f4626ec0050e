"""The schema registry: loading, checking, $ref resolution without network, lookups."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cerouter.errors import SchemaLoadError
from cerouter.validation.registry import SchemaRegistry, SchemasSettings
from cerouter.validation.report import Stage

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "schemas"
EVENTS = REPO / "examples" / "events"
FIXTURES = Path(__file__).resolve().parent / "schema_fixtures"
SHOP = "https://schemas.example.com/shop/"


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load(SchemasSettings(SCHEMAS))


def example_data(name: str) -> Any:
    return orjson.loads((EVENTS / name).read_bytes())["data"]


def load_error(directory: Path, **settings: Any) -> list[str]:
    with pytest.raises(SchemaLoadError) as caught:
        SchemaRegistry.load(SchemasSettings(directory, **settings))
    return str(caught.value).splitlines()


def write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


# --------------------------------------------------------------------------- the examples


def test_example_schemas_load(registry: SchemaRegistry) -> None:
    assert len(registry) == 5
    assert [(e.type, e.schema.relpath, e.declared_by) for e in registry.entries()] == [
        ("com.example.order.created", "order-created.json", "x-cloudevents-type"),
        ("com.example.order.paid", "order-paid.json", "x-cloudevents-type"),
        ("com.example.order.shipped", "order-shipped.yaml", "x-cloudevents-type"),
        ("com.example.payment.failed", "payment-failed.json", "x-cloudevents-type"),
        (None, "common.json", ""),
    ]
    assert registry.get("payment-failed.json").draft == "draft-07"
    assert registry.get("order-shipped.yaml").id == SHOP + "order-shipped.json"


def test_lookup_by_type(registry: SchemaRegistry) -> None:
    found = registry.lookup({"type": "com.example.order.created"})
    assert found is not None
    assert found.id == SHOP + "order-created.json"
    assert registry.lookup({"type": "com.example.unknown"}) is None
    assert registry.lookup({}) is None


def test_lookup_by_dataschema_wins_over_type(registry: SchemaRegistry) -> None:
    found = registry.lookup(
        {"type": "com.example.order.created", "dataschema": SHOP + "order-paid.json"}
    )
    assert found is registry.get("order-paid.json")


def test_unknown_dataschema_falls_back_to_type(registry: SchemaRegistry) -> None:
    found = registry.lookup(
        {"type": "com.example.order.paid", "dataschema": "https://elsewhere.example/x.json"}
    )
    assert found is registry.get("order-paid.json")


def test_has_and_get_by_id_or_relative_path(registry: SchemaRegistry) -> None:
    by_id = registry.get(SHOP + "order-created.json")
    assert registry.get("order-created.json") is by_id
    assert registry.get("./order-created.json") is by_id
    assert registry.has(SHOP + "common.json")
    assert registry.has("common.json")
    assert not registry.has("nope.json")
    with pytest.raises(KeyError, match=r"nope\.json"):
        registry.get("nope.json")


@pytest.mark.parametrize(
    "event", ["order-created.json", "order-paid.json", "order-shipped.json", "payment-failed.json"]
)
def test_valid_example_data_passes(registry: SchemaRegistry, event: str) -> None:
    attributes = orjson.loads((EVENTS / event).read_bytes())
    schema = registry.lookup(attributes)
    assert schema is not None
    assert schema.is_valid(attributes["data"])
    assert schema.errors(attributes["data"]) == ()


def test_invalid_example_data_is_located(registry: SchemaRegistry) -> None:
    schema = registry.get("order-created.json")
    data = example_data("order-created-invalid.json")
    assert not schema.is_valid(data)
    found = {(p.where, p.message) for p in schema.errors(data)}
    assert found == {
        ("data/items/0/price", "is less than the minimum of 0"),
        ("data/customer/email", "is not a valid email"),
        ("data/total/currency", 'does not match "^[A-Z]{3}$"'),
    }
    assert all(p.stage is Stage.DATA for p in schema.errors(data))


@pytest.mark.parametrize(
    ("schema", "pointer", "value", "format_name"),
    [
        ("order-created.json", ("createdAt",), "2026-05-01", "date-time"),
        ("order-created.json", ("customer", "email"), "ada.example.com", "email"),
        ("order-shipped.yaml", ("trackingUrl",), "not a uri", "uri"),
        ("order-created.json", ("orderId",), "order-1", "uuid"),
    ],
)
def test_formats_are_asserted(
    registry: SchemaRegistry, schema: str, pointer: tuple[str, ...], value: str, format_name: str
) -> None:
    event = "order-shipped.json" if "shipped" in schema else "order-created.json"
    data = example_data(event)
    target = data
    for key in pointer[:-1]:
        target = target[key]
    target[pointer[-1]] = value
    compiled = registry.get(schema)
    assert not compiled.is_valid(data)
    ((where, message),) = [(p.where, p.message) for p in compiled.errors(data)]
    assert where == "data/" + "/".join(pointer)
    assert message == f"is not a valid {format_name}"
    ((_, shown),) = [(p.where, p.message) for p in compiled.errors(data, include_values=True)]
    assert shown == f"{json.dumps(value)} is not a valid {format_name}"


def test_errors_are_capped(tmp_path: Path) -> None:
    write(tmp_path / "s.json", {"type": "array", "items": {"type": "integer"}})
    schema = SchemaRegistry.load(SchemasSettings(tmp_path)).get("s.json")
    found = schema.errors(["x"] * 30)
    assert len(found) == 21
    assert found[-1].message == "and more problems, not shown"


def test_pointer_segments_are_escaped(tmp_path: Path) -> None:
    write(tmp_path / "s.json", {"properties": {"a/b": {"properties": {"c~d": {"type": "string"}}}}})
    schema = SchemaRegistry.load(SchemasSettings(tmp_path)).get("s.json")
    (problem,) = schema.errors({"a/b": {"c~d": 1}})
    assert problem.where == "data/a~1b/c~0d"


# --------------------------------------------------------------------------- type mapping


def test_routes_types_win_over_x_cloudevents_type() -> None:
    settings = SchemasSettings(
        SCHEMAS,
        types={
            "com.example.order.created": "order-paid.json",  # overrides the keyword
            "com.example.refund.issued": SHOP + "payment-failed.json",  # by $id
        },
    )
    registry = SchemaRegistry.load(settings)
    assert registry.for_type("com.example.order.created") is registry.get("order-paid.json")
    assert registry.for_type("com.example.refund.issued") is registry.get("payment-failed.json")
    declared = {e.type: e.declared_by for e in registry.entries() if e.type}
    assert declared["com.example.order.created"] == "routes.yaml"
    assert declared["com.example.order.paid"] == "x-cloudevents-type"
    # order-created.json lost its only type, so it is listed as reachable by dataschema only
    assert any(
        e.type is None and e.schema.relpath == "order-created.json" for e in registry.entries()
    )
    assert [s.relpath for s in registry.unused()] == ["order-created.json"]
    assert registry.unused(["order-created.json"]) == ()
    assert registry.unused([SHOP + "order-created.json"]) == ()


def test_schemas_used_only_through_refs_are_used(registry: SchemaRegistry, tmp_path: Path) -> None:
    assert registry.unused() == ()  # common.json is $ref'd by the typed schemas
    write(tmp_path / "a.json", {"$ref": "b.json"})
    write(tmp_path / "b.json", {"$ref": "c.json"})
    write(tmp_path / "c.json", {"type": "string"})
    write(tmp_path / "d.json", {"type": "string"})
    alone = SchemaRegistry.load(SchemasSettings(tmp_path))
    assert [s.relpath for s in alone.unused()] == ["a.json", "b.json", "c.json", "d.json"]
    assert [s.relpath for s in alone.unused(["a.json"])] == ["d.json"]


def test_types_mapping_to_an_unknown_schema_fails() -> None:
    (line,) = load_error(SCHEMAS, types={"com.example.x": "missing.json"})
    assert line.startswith("schemas.types: 'com.example.x' maps to 'missing.json'")


def test_unknown_policy_is_kept() -> None:
    registry = SchemaRegistry.load(SchemasSettings(SCHEMAS, unknown="reject"))
    assert registry.unknown == "reject"


# --------------------------------------------------------------------------- broken schemas


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        (
            "bad-metaschema",
            [
                "bad-metaschema/order.json: #/properties/total/type: ",
                "bad-metaschema/order.json: #/properties/count/minimum: "
                '"zero" is not of type "number" (metaschema: JSON Schema 2020-12)',
            ],
        ),
        (
            "missing-ref",
            [
                "missing-ref/order.json: $ref 'money.json#/$defs/money' cannot be resolved: no "
                "schema in ",
            ],
        ),
        (
            "remote-ref",
            [
                "remote-ref/order.json: $ref 'https://schemas.example.org/remote/money.json' is a "
                "remote URL and no schema in ",
            ],
        ),
        (
            "duplicate-id",
            [
                "duplicate-id/b.json: duplicate $id 'https://schemas.example.com/test/order.json', "
                "already used by ",
            ],
        ),
        ("yaml-syntax", ["yaml-syntax/order.yaml:5:8: YAML syntax error: "]),
        ("json-syntax", ["json-syntax/order.json:5:34: invalid JSON: trailing comma"]),
        ("unsupported-schema", ["unsupported-schema/order.json: unsupported $schema "]),
        (
            "duplicate-type",
            [
                "duplicate-type/created.json: x-cloudevents-type 'com.example.order.created' is "
                "already declared by ",
            ],
        ),
        ("not-an-object", ["not-an-object/order.json: a schema must be a JSON object or boolean"]),
        ("yaml-not-json", ["yaml-not-json/order.yaml: #/properties/code/enum: key 200 is not"]),
        ("bad-pointer", ["bad-pointer/order.json: cannot compile: Pointer '/$defs/money'"]),
    ],
)
def test_broken_schemas_each_have_their_own_message(directory: str, expected: list[str]) -> None:
    lines = load_error(FIXTURES / directory)
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(
            str(FIXTURES / start.split("/", 1)[0]) + "/" + start.split("/", 1)[1]
        )


def test_every_problem_is_listed(tmp_path: Path) -> None:
    write(tmp_path / "a.json", "{")
    write(tmp_path / "b.yaml", "a: [")
    write(tmp_path / "c.json", {"type": 5})
    write(tmp_path / "d.json", {"$ref": "nowhere.json"})
    lines = load_error(tmp_path)
    assert [line.split(":", 1)[0] for line in lines] == [
        str(tmp_path / name) for name in ("a.json", "b.yaml", "c.json", "d.json")
    ]


def test_missing_directory() -> None:
    (line,) = load_error(Path("/nonexistent/schemas"))
    assert line == "/nonexistent/schemas: schema directory not found"


def test_empty_directory_is_an_empty_registry(tmp_path: Path) -> None:
    registry = SchemaRegistry.load(SchemasSettings(tmp_path))
    assert len(registry) == 0
    assert registry.lookup({"type": "x"}) is None


def test_hidden_files_and_other_suffixes_are_ignored(tmp_path: Path) -> None:
    write(tmp_path / ".draft.json", "{broken")
    write(tmp_path / ".git" / "x.json", "{broken")
    write(tmp_path / "notes.txt", "{broken")
    write(tmp_path / "ok.json", {"type": "object"})
    assert [s.relpath for s in SchemaRegistry.load(SchemasSettings(tmp_path))] == ["ok.json"]


def test_yaml_dates_stay_strings(tmp_path: Path) -> None:
    write(tmp_path / "s.yaml", "const: 2024-01-01\n")
    schema = SchemaRegistry.load(SchemasSettings(tmp_path)).get("s.yaml")
    assert schema.is_valid("2024-01-01")


# --------------------------------------------------------------------------- references


def test_refs_by_relative_path_and_across_drafts() -> None:
    registry = SchemaRegistry.load(SchemasSettings(FIXTURES / "relative-path"))
    order = registry.get("order.json")
    assert order.is_valid({"total": {"amount": 1, "currency": "EUR"}, "shipTo": {"country": "NL"}})
    found = {p.where for p in order.errors({"total": {"amount": -1}, "shipTo": {"country": "nl"}})}
    assert found == {"data/total", "data/total/amount", "data/shipTo/country"}
    assert registry.get("address.json").draft == "draft-07"


def test_ref_by_id_to_a_schema_in_a_subdirectory(tmp_path: Path) -> None:
    write(tmp_path / "deep" / "money.json", {"$id": "urn:shop:money", "type": "number"})
    write(tmp_path / "order.json", {"properties": {"total": {"$ref": "urn:shop:money"}}})
    order = SchemaRegistry.load(SchemasSettings(tmp_path)).get("order.json")
    assert order.is_valid({"total": 1})
    assert not order.is_valid({"total": "1"})


def test_draft_04_ids(tmp_path: Path) -> None:
    draft4 = "http://json-schema.org/draft-04/schema#"
    write(tmp_path / "m.json", {"$schema": draft4, "id": "urn:shop:m", "type": "integer"})
    write(tmp_path / "o.json", {"$schema": draft4, "properties": {"n": {"$ref": "urn:shop:m"}}})
    order = SchemaRegistry.load(SchemasSettings(tmp_path)).get("o.json")
    assert order.draft == "draft-04"
    assert not order.is_valid({"n": 1.5})


def test_refs_inside_instance_data_keywords_are_not_references(tmp_path: Path) -> None:
    write(tmp_path / "s.json", {"const": {"$ref": "nowhere.json"}, "examples": [{"$ref": "x"}]})
    schema = SchemaRegistry.load(SchemasSettings(tmp_path)).get("s.json")
    assert schema.is_valid({"$ref": "nowhere.json"})


def test_a_file_ref_outside_the_directory_is_not_loaded() -> None:
    (line,) = load_error(FIXTURES / "outside-ref" / "schemas")
    assert "$ref '../outside.json#/$defs/money' cannot be resolved" in line


def test_an_absolute_file_ref_is_not_read(tmp_path: Path) -> None:
    secret = write(tmp_path / "elsewhere" / "secret.json", {"type": "string"})
    write(tmp_path / "schemas" / "s.json", {"$ref": secret.as_uri()})
    (line,) = load_error(tmp_path / "schemas")
    assert "cannot be resolved" in line


# --------------------------------------------------------------------------- no network


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - shared on purpose, reset by the fixture

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'{"type": "number"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that would happily serve any schema, and counts requests."""
    _CountingHandler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _CountingHandler.hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_remote_ref_is_never_fetched(
    tmp_path: Path, schema_server: tuple[str, list[str]]
) -> None:
    url, hits = schema_server
    write(tmp_path / "order.json", {"properties": {"total": {"$ref": f"{url}/money.json"}}})
    write(tmp_path / "id.json", {"$id": f"{url}/orders/item.json", "$ref": "money.json"})
    lines = load_error(tmp_path)
    assert len(lines) == 2
    assert "is a remote URL" in lines[1]
    assert "cannot be resolved" in lines[0]
    assert hits == []


def test_a_remote_metaschema_is_never_fetched(
    tmp_path: Path, schema_server: tuple[str, list[str]]
) -> None:
    url, hits = schema_server
    write(tmp_path / "s.json", {"$schema": f"{url}/meta.json", "type": "object"})
    (line,) = load_error(tmp_path)
    assert "unsupported $schema" in line
    assert hits == []


def test_a_remote_ref_inside_a_nested_resource_is_never_fetched(
    tmp_path: Path, schema_server: tuple[str, list[str]]
) -> None:
    url, hits = schema_server
    nested = {"$id": "urn:nested", "$defs": {"x": {"$ref": f"{url}/x.json"}}}
    write(tmp_path / "s.json", {"$defs": {"n": nested}, "$ref": "urn:nested#/$defs/x"})
    (line,) = load_error(tmp_path)
    assert "is a remote URL" in line
    assert hits == []


def test_a_remote_ref_that_is_a_local_id_resolves_locally(
    tmp_path: Path, schema_server: tuple[str, list[str]]
) -> None:
    url, hits = schema_server
    write(tmp_path / "money.json", {"$id": f"{url}/money.json", "type": "string"})
    write(tmp_path / "order.json", {"properties": {"total": {"$ref": f"{url}/money.json"}}})
    order = SchemaRegistry.load(SchemasSettings(tmp_path)).get("order.json")
    assert not order.is_valid({"total": 1})  # the local copy says string; the server says number
    assert hits == []


# --------------------------------------------------------------------------- cascades


def test_a_broken_shared_schema_is_reported_once(tmp_path: Path) -> None:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    common = tmp_path / "schemas" / "common.json"
    common.write_text(common.read_text().replace('"minimum": 0', '"minimum": "zero"', 1))
    lines = load_error(
        tmp_path / "schemas", types={"com.example.x": "common.json", "com.example.y": "nope.json"}
    )
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{common}: #/$defs/money/properties/amount/minimum: ")
    assert lines[1].startswith("schemas.types: 'com.example.y' maps to 'nope.json'")


def test_a_schema_that_does_not_parse_is_not_blamed_on_its_users(tmp_path: Path) -> None:
    write(tmp_path / "common.json", "{ nope")
    write(tmp_path / "order.json", {"$ref": "common.json"})
    (line,) = load_error(tmp_path)
    assert line.startswith(f"{tmp_path / 'common.json'}:1:3: invalid JSON")


def test_compile_problems_are_listed_with_the_others(tmp_path: Path) -> None:
    write(tmp_path / "a.json", {"properties": {"x": {"$ref": "#/$defs/missing"}}})
    write(tmp_path / "b.json", {"type": "strin"})
    write(tmp_path / "c.json", {"type": "string"})
    lines = load_error(tmp_path)
    assert [line.split(": ", 1)[0] for line in lines] == [
        str(tmp_path / "b.json"),
        str(tmp_path / "a.json"),
    ]
    assert "cannot compile: Pointer '/$defs/missing' does not exist" in lines[1]
