"""The schema registry: JSON Schemas for event data, loaded from a directory and compiled once.

Loading
    Every ``*.json``, ``*.yaml`` and ``*.yml`` file under the directory (default ``schemas/``,
    subdirectories included, hidden files skipped) is one schema. Each is checked against its
    metaschema: Draft 2020-12 unless ``$schema`` names another (draft-04, -06, -07, 2019-09 and
    2020-12 are supported; any other ``$schema`` is an error, never a download). ``format`` is
    asserted (``date-time``, ``email``, ``uri``, ``uuid``, ...), whatever the draft says.

References
    A schema's base URI is its ``$id`` (resolved against the file's location when relative), or
    the ``file:`` URI of the file when it has none. A ``$ref`` resolves against that base, as
    JSON Schema says, so ``"$ref": "common.json#/$defs/money"`` finds a sibling file whose ``$id``
    (or, for a file without ``$id``, whose path) matches. When the resolved URI is no known
    schema, the ref is tried once more relative to the *file* (so a schema with an ``https:``
    ``$id`` can still name ``common.json`` by path). Anything else is a load error naming the
    file and the ref.

No network, ever
    Every resource is registered with the validator library up front and compilation runs with
    retrieval disabled (``offline=True``); the library's metaschema helpers, which would download
    an unknown ``$schema``, are never called. A remote ``$ref`` that no local schema answers is a
    load error, as is a ``file:`` ref outside the directory.

From event to schema
    1. ``dataschema``, when it equals the ``$id`` of a loaded schema.
    2. Otherwise the event ``type``, through the type mapping, built from two sources:

       * the ``x-cloudevents-type`` keyword at the root of a schema file (a type or a list of
         types), which keeps the mapping next to the schema; and
       * ``SchemasSettings.types`` (routes.yaml's ``schemas.types``: event type -> schema
         ``$id`` or file path relative to the directory), for deployments that map types to
         schemas they do not own.

       **routes.yaml wins**: an entry in ``schemas.types`` overrides an ``x-cloudevents-type``
       declaration of the same type. Two schema files declaring the same type is a load error.
    3. No schema: ``SchemasSettings.unknown`` decides (``allow``, the default, or ``reject``); see
       :class:`cerouter.validation.EventValidator`.

A :class:`SchemaRegistry` is immutable once loaded; a reload builds a new one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import jsonschema_rs
import orjson
import yaml

from cerouter.errors import SchemaLoadError
from cerouter.validation.report import Problem, Stage

__all__ = [
    "SCHEMA_SUFFIXES",
    "TYPE_KEYWORD",
    "CompiledSchema",
    "SchemaEntry",
    "SchemaRegistry",
    "SchemasSettings",
]

SCHEMA_SUFFIXES: Final = (".json", ".yaml", ".yml")
TYPE_KEYWORD: Final = "x-cloudevents-type"
MAX_PROBLEMS: Final = 20  # detailed errors reported per instance; the rest are counted

# $schema values understood (normalized: no scheme, no trailing "#") -> draft name.
_DRAFTS: Final[Mapping[str, str]] = {
    "json-schema.org/draft-04/schema": "draft-04",
    "json-schema.org/draft-06/schema": "draft-06",
    "json-schema.org/draft-07/schema": "draft-07",
    "json-schema.org/draft/2019-09/schema": "2019-09",
    "json-schema.org/draft/2020-12/schema": "2020-12",
}
_DEFAULT_DRAFT: Final = "json-schema.org/draft/2020-12/schema"
_REMOTE_SCHEMES: Final = frozenset({"http", "https", "ftp", "ws", "wss"})
# Keywords whose values are instance data, not subschemas: a "$ref" in there is no reference.
_DATA_KEYWORDS: Final = frozenset({"const", "default", "enum", "examples"})
# Keywords whose values map names to subschemas.
_SCHEMA_MAPS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
)


@dataclass(frozen=True)
class SchemasSettings:
    """Where schemas live and how event types map to them (routes.yaml's ``schemas:``)."""

    directory: Path = Path("schemas")
    #: event type -> schema ``$id`` or file path relative to ``directory``; wins over the
    #: ``x-cloudevents-type`` keyword in schema files.
    types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: what to do with an event whose type has no schema
    unknown: Literal["allow", "reject"] = "allow"


class CompiledSchema:
    """One loaded schema with its compiled validator.

    ``is_valid(instance)`` is the compiled validator's own method (no Python frame in between):
    the hot path. :meth:`errors` walks the instance again for located messages: the slow path,
    for events that failed.
    """

    __slots__ = (
        "_validator",
        "declared_id",
        "document",
        "draft",
        "id",
        "is_valid",
        "path",
        "relpath",
        "uri",
    )

    is_valid: Callable[[Any], bool]

    def __init__(
        self,
        *,
        declared_id: str | None,
        path: Path,
        relpath: str,
        uri: str,
        draft: str,
        document: Any,
        validator: jsonschema_rs.Validator,
    ) -> None:
        self.declared_id = declared_id  # the $id, resolved against the file's location
        self.id = declared_id or relpath  # how to name it: the $id, else the relative path
        self.path = path  # the file it was loaded from
        self.relpath = relpath  # that file, relative to the schemas directory, with "/"
        self.uri = uri  # base URI used to resolve its $refs
        self.draft = draft  # "2020-12", "draft-07", ...
        self.document = document  # the schema as loaded
        self._validator = validator
        self.is_valid = validator.is_valid

    def errors(self, instance: Any, *, limit: int = MAX_PROBLEMS) -> tuple[Problem, ...]:
        """Every way ``instance`` breaks the schema, located by JSON pointer below ``data``.

        At most ``limit`` problems, then one more saying how many were left out.
        """
        problems: list[Problem] = []
        dropped = 0
        for error in self._validator.iter_errors(instance):
            if len(problems) >= limit:
                dropped += 1
                continue
            problems.append(Problem(Stage.DATA, _pointer(error.instance_path), _message(error)))
        if dropped:
            problems.append(Problem(Stage.DATA, "data", f"{dropped} more problems not shown"))
        return tuple(problems)

    def __repr__(self) -> str:
        return f"CompiledSchema(id={self.id!r}, path={str(self.path)!r})"


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """A row of ``cerouter schemas list``: an event type (or none) and its schema."""

    type: str | None
    schema: CompiledSchema
    declared_by: str  # "routes.yaml", "x-cloudevents-type" or "" (no type: dataschema only)


class SchemaRegistry:
    """The loaded, compiled schemas of a directory and the event type -> schema mapping."""

    __slots__ = ("_by_id", "_by_path", "_by_type", "_depends", "_entries", "settings")

    def __init__(
        self,
        settings: SchemasSettings,
        schemas: tuple[CompiledSchema, ...],
        by_type: Mapping[str, CompiledSchema],
        entries: tuple[SchemaEntry, ...],
        depends: Mapping[str, set[str]] | None = None,
    ) -> None:
        """Prefer :meth:`load`; this takes already checked parts.

        ``depends`` maps a schema's relative path to those of the schemas it ``$ref``s.
        """
        self.settings = settings
        self._by_id: dict[str, CompiledSchema] = {
            s.declared_id: s for s in schemas if s.declared_id is not None
        }
        self._by_path: dict[str, CompiledSchema] = {s.relpath: s for s in schemas}
        self._by_type: dict[str, CompiledSchema] = dict(by_type)
        self._entries = entries
        self._depends = {k: frozenset(v) for k, v in (depends or {}).items()}

    @classmethod
    def load(cls, settings: SchemasSettings) -> SchemaRegistry:
        """Load, check and compile every schema under ``settings.directory``.

        Raises :class:`~cerouter.errors.SchemaLoadError` listing every problem found, one per
        line, each as ``file: message``.
        """
        return _Loader(settings).load()

    # ------------------------------------------------------------------ lookups

    def lookup(self, attributes: Mapping[str, Any]) -> CompiledSchema | None:
        """The schema for an event: by ``dataschema`` when it is a known ``$id``, else by type."""
        dataschema = attributes.get("dataschema")
        if dataschema is not None:
            found = self._by_id.get(dataschema)
            if found is not None:
                return found
        event_type = attributes.get("type")
        return None if event_type is None else self._by_type.get(event_type)

    def has(self, ref: str) -> bool:
        """Tell whether ``ref`` (a schema ``$id`` or a path relative to the directory) is known."""
        return self._find(ref) is not None

    def get(self, ref: str) -> CompiledSchema:
        """The schema with ``$id`` or relative path ``ref``; ``KeyError`` when there is none."""
        found = self._find(ref)
        if found is None:
            raise KeyError(f"no schema with $id or path {ref!r} in {self.settings.directory}")
        return found

    def for_type(self, event_type: str) -> CompiledSchema | None:
        """The schema mapped to an event type, if any."""
        return self._by_type.get(event_type)

    def entries(self) -> tuple[SchemaEntry, ...]:
        """Every type mapping, then every schema no type maps to (reachable by dataschema)."""
        return self._entries

    def unused(self, refs: Iterable[str] = ()) -> tuple[CompiledSchema, ...]:
        """Schemas that no event type maps to, no ``refs`` names (routes' ``schema:``), and no
        such schema ``$ref``s, directly or not. (They may still be reached by ``dataschema``.)"""
        used: set[str] = {s.relpath for s in self._by_type.values()}
        used.update(found.relpath for ref in refs if (found := self._find(ref)) is not None)
        pending = list(used)
        while pending:
            for target in self._depends.get(pending.pop(), ()):
                if target not in used:
                    used.add(target)
                    pending.append(target)
        return tuple(s for s in self.schemas if s.relpath not in used)

    @property
    def schemas(self) -> tuple[CompiledSchema, ...]:
        """All loaded schemas, by relative path."""
        return tuple(self._by_path[key] for key in sorted(self._by_path))

    @property
    def unknown(self) -> Literal["allow", "reject"]:
        """The policy for events with no schema."""
        return self.settings.unknown

    def __len__(self) -> int:
        return len(self._by_path)

    def __iter__(self) -> Iterator[CompiledSchema]:
        return iter(self.schemas)

    def _find(self, ref: str) -> CompiledSchema | None:
        found = self._by_id.get(ref) or self._by_id.get(ref.removesuffix("#"))
        if found is not None:
            return found
        return self._by_path.get(_normal_relpath(ref))


# --------------------------------------------------------------------------- loading


@dataclass(eq=False)  # identity: documents are not compared
class _Source:
    """A schema file read and parsed, before compilation."""

    path: Path
    relpath: str
    file_uri: str
    document: Any
    draft_key: str = _DEFAULT_DRAFT
    base: str = ""  # base URI: resolved $id, or file_uri
    declared_id: str | None = None
    types: tuple[str, ...] = ()


class _Loader:
    def __init__(self, settings: SchemasSettings) -> None:
        self.settings = settings
        self.directory = settings.directory
        self.problems: list[str] = []
        self.bad: set[str] = set()  # relpaths of sources that must not be compiled
        self.broken_uris: set[str] = set()  # URIs of files that could not be used at all
        self.found: set[str] = set()  # relpaths of every schema file in the directory

    def problem(self, where: Path | str, message: str, source: _Source | None = None) -> None:
        self.problems.append(f"{where}: {message}")
        if source is not None:
            self.bad.add(source.relpath)

    def load(self) -> SchemaRegistry:
        directory = self.directory
        if not directory.exists():
            raise SchemaLoadError(f"{directory}: schema directory not found")
        if not directory.is_dir():
            raise SchemaLoadError(f"{directory}: not a directory")
        paths = self.files()
        self.found = {p.relative_to(directory).as_posix() for p in paths}
        parsed = [s for s in map(self.read, paths) if s is not None]
        sources = [s for s in parsed if self.inspect(s)]
        # Refs to files reported as unusable are not reported again (their referrers are left
        # out of compilation, silently: the cause is already listed).
        self.broken_uris = {p.resolve().as_uri() for p in paths} - {s.file_uri for s in sources}
        self.broken_uris.update(_declared_id(s) or "" for s in parsed if s not in sources)
        self.broken_uris.discard("")
        resources = self.index(sources)
        aliases, depends = self.check_refs(sources, resources)
        healthy = self.healthy(sources, depends)
        compiled = self.compile(healthy, [(u, s) for u, s in aliases if s in healthy])
        by_type, entries = self.map_types(sources, compiled)
        if self.problems:
            raise SchemaLoadError("\n".join(self.problems))
        schemas = tuple(compiled[s.relpath] for s in sources)
        return SchemaRegistry(self.settings, schemas, by_type, entries, depends)

    def files(self) -> list[Path]:
        found = []
        for path in sorted(self.directory.rglob("*")):
            relative = path.relative_to(self.directory)
            if any(part.startswith(".") for part in relative.parts):
                continue
            if path.suffix.lower() in SCHEMA_SUFFIXES and path.is_file():
                found.append(path)
        return found

    # -- parse

    def read(self, path: Path) -> _Source | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.problem(path, f"cannot read: {exc.strerror or exc}")
            return None
        document: Any
        if path.suffix.lower() == ".json":
            try:
                document = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                self.problem(f"{path}:{exc.lineno}:{exc.colno}", f"invalid JSON: {exc.msg}")
                return None
        else:
            try:
                document = yaml.load(raw, Loader=_YamlLoader)  # a SafeLoader subclass
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
                what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
                self.problem(where, f"YAML syntax error: {what}")
                return None
            except yaml.YAMLError as exc:
                self.problem(path, f"YAML syntax error: {exc}")
                return None
            incompatible = next(_json_incompatible(document, "#"), None)
            if incompatible is not None:
                self.problem(path, f"{incompatible[0]}: {incompatible[1]}")
                return None
        relpath = path.relative_to(self.directory).as_posix()
        return _Source(path, relpath, path.resolve().as_uri(), document)

    def inspect(self, source: _Source) -> bool:
        """Metaschema, $schema, $id and x-cloudevents-type of one file. False: unusable."""
        path, document = source.path, source.document
        if isinstance(document, bool):
            source.base = source.file_uri
            return True
        if not isinstance(document, dict):
            kind = "empty" if document is None else f"a JSON {_json_type(document)}"
            self.problem(path, f"a schema must be a JSON object or boolean, this is {kind}")
            return False
        declared = document.get("$schema")
        if declared is not None:
            key = _draft_key(declared)
            if key is None:
                self.problem(
                    path,
                    f"unsupported $schema {declared!r}: use draft-04, -06, -07, 2019-09 or "
                    "2020-12 (custom metaschemas would have to be fetched, which cerouter "
                    "never does)",
                )
                return False
            source.draft_key = key
        draft_name = _DRAFTS[source.draft_key]
        broken = False
        for error in _metaschema(source.draft_key).iter_errors(document):
            broken = True
            where = "#" + "".join(f"/{_escape(part)}" for part in error.instance_path)
            self.problem(path, f"{where}: {_message(error)} (metaschema: JSON Schema {draft_name})")
        if broken:
            return False
        id_keyword = "id" if draft_name == "draft-04" else "$id"
        declared_id = document.get(id_keyword)
        if declared_id is None:
            source.base = source.file_uri
        else:
            resolved, fragment = urldefrag(urljoin(source.file_uri, declared_id))
            if fragment:
                self.problem(path, f"{id_keyword} {declared_id!r} must not have a fragment")
                return False
            source.base = source.declared_id = resolved
        types = document.get(TYPE_KEYWORD)
        if types is not None:
            listed = [types] if isinstance(types, str) else types or None
            if not (
                isinstance(listed, list)
                and listed
                and all(isinstance(t, str) and t for t in listed)
            ):
                self.problem(
                    path, f"{TYPE_KEYWORD} must be an event type or a non-empty list of them"
                )
                return False
            source.types = tuple(listed)
        return True

    # -- references

    def index(self, sources: list[_Source]) -> dict[str, _Source]:
        """Every resource URI (file URIs, root and embedded $ids) -> its file."""
        resources: dict[str, _Source] = {}
        ids: dict[str, _Source] = {}
        for source in sources:
            resources[source.file_uri] = source
            if source.declared_id is not None:
                other = ids.get(source.declared_id)
                if other is not None:
                    self.problem(
                        source.path,
                        f"duplicate $id {source.declared_id!r}, already used by {other.path}",
                        source,
                    )
                    continue
                ids[source.declared_id] = source
            for uri in _embedded_ids(source.document, source.base, _id_keyword(source)):
                resources.setdefault(uri, source)
        resources.update(ids)
        return resources

    def check_refs(
        self, sources: list[_Source], resources: dict[str, _Source]
    ) -> tuple[list[tuple[str, _Source]], dict[str, set[str]]]:
        """Report unresolvable refs.

        Returns the aliases needed for file-relative refs, and for each source the relative
        paths of the sources it refers to.
        """
        by_file_uri = {s.file_uri: s for s in sources}
        aliases: dict[str, _Source] = {}
        depends: dict[str, set[str]] = {s.relpath: set() for s in sources}
        for source in sources:
            for ref, target in _refs(source.document, source.base, _id_keyword(source)):
                resource = urldefrag(target)[0]
                found = resources.get(resource) or aliases.get(resource)
                if found is None:
                    next_to_file = urldefrag(urljoin(source.file_uri, ref))[0]
                    found = by_file_uri.get(next_to_file)
                    if found is not None:
                        aliases[resource] = found
                    elif resource in self.broken_uris or next_to_file in self.broken_uris:
                        self.bad.add(source.relpath)
                        continue
                    else:
                        self.unresolvable(source, ref, resource, next_to_file)
                        continue
                depends[source.relpath].add(found.relpath)
        return list(aliases.items()), depends

    def unresolvable(self, source: _Source, ref: str, resource: str, next_to_file: str) -> None:
        if urlsplit(ref).scheme.lower() in _REMOTE_SCHEMES:
            self.problem(
                source.path,
                f"$ref {ref!r} is a remote URL and no schema in {self.directory} has it "
                "as $id; cerouter never fetches schemas over the network (put a copy "
                "with that $id in the directory)",
                source,
            )
            return
        candidates = [f"$id {resource!r}"] if resource != next_to_file else []
        candidates.append(f"path {_display_uri(next_to_file, self.directory)!r}")
        self.problem(
            source.path,
            f"$ref {ref!r} cannot be resolved: no schema in {self.directory} has "
            f"{' or '.join(candidates)}",
            source,
        )

    def healthy(self, sources: list[_Source], depends: dict[str, set[str]]) -> list[_Source]:
        """The sources with no problem that refer (transitively) only to such sources."""
        bad = set(self.bad)
        changed = True
        while changed:
            changed = False
            for source in sources:
                if source.relpath not in bad and depends[source.relpath] & bad:
                    bad.add(source.relpath)
                    changed = True
        return [s for s in sources if s.relpath not in bad]

    # -- compile

    def compile(
        self, sources: list[_Source], aliases: list[tuple[str, _Source]]
    ) -> dict[str, CompiledSchema]:
        resources = [(s.file_uri, s.document) for s in sources]
        resources += [(s.declared_id, s.document) for s in sources if s.declared_id is not None]
        resources += [(uri, s.document) for uri, s in aliases]
        try:
            registry = jsonschema_rs.Registry(
                resources, draft=jsonschema_rs.Draft202012, retriever=_refuse_retrieval
            )
        except (ValueError, jsonschema_rs.ReferencingError) as exc:
            self.problem(self.directory, f"cannot index the schemas: {_first_line(exc)}")
            return {}
        compiled: dict[str, CompiledSchema] = {}
        for source in sources:
            try:
                validator = jsonschema_rs.validator_for(
                    source.document,
                    registry=registry,
                    base_uri=source.file_uri,
                    validate_formats=True,
                    offline=True,
                )
            except (ValueError, jsonschema_rs.ReferencingError) as exc:  # ValidationError too
                self.problem(source.path, f"cannot compile: {_first_line(exc)}", source)
                continue
            compiled[source.relpath] = CompiledSchema(
                declared_id=source.declared_id,
                path=source.path,
                relpath=source.relpath,
                uri=source.base,
                draft=_DRAFTS[source.draft_key],
                document=source.document,
                validator=validator,
            )
        return compiled

    # -- types

    def map_types(
        self, sources: list[_Source], compiled: dict[str, CompiledSchema]
    ) -> tuple[dict[str, CompiledSchema], tuple[SchemaEntry, ...]]:
        by_type: dict[str, CompiledSchema] = {}
        origin: dict[str, str] = {}
        declared_in: dict[str, _Source] = {}
        for source in sources:
            for event_type in source.types:
                other = declared_in.get(event_type)
                if other is not None:
                    self.problem(
                        source.path,
                        f"{TYPE_KEYWORD} {event_type!r} is already declared by {other.path} "
                        "(map it in routes.yaml schemas.types to choose)",
                    )
                    continue
                declared_in[event_type] = source
                if source.relpath in compiled:
                    by_type[event_type] = compiled[source.relpath]
                    origin[event_type] = TYPE_KEYWORD
        by_id = {s.declared_id: s for s in sources if s.declared_id is not None}
        by_path = {s.relpath: s for s in sources}
        for event_type, ref in self.settings.types.items():
            target = by_id.get(ref) or by_id.get(ref.removesuffix("#"))
            target = target or by_path.get(_normal_relpath(ref))
            if target is None and _normal_relpath(ref) not in self.found:
                self.problem(
                    "schemas.types",
                    f"{event_type!r} maps to {ref!r}, which is neither the $id nor the path of "
                    f"a schema in {self.directory}",
                )
                continue
            if target is None or target.relpath not in compiled:
                continue  # the schema exists but is broken; that is reported already
            by_type[event_type] = compiled[target.relpath]
            origin[event_type] = "routes.yaml"
        entries = [SchemaEntry(t, by_type[t], origin[t]) for t in sorted(by_type)]
        mapped = {id(s) for s in by_type.values()}
        entries += [
            SchemaEntry(None, compiled[s.relpath], "")
            for s in sources
            if s.relpath in compiled and id(compiled[s.relpath]) not in mapped
        ]
        return by_type, tuple(entries)


# --------------------------------------------------------------------------- helpers


class _YamlLoader(yaml.SafeLoader):
    """A safe loader that keeps dates and times as strings, as JSON would."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _json_incompatible(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """Values YAML can hold that JSON cannot (non-string keys, sets, bytes, NaN...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield pointer, f"key {key!r} is not a string (quote it)"
                continue
            yield from _json_incompatible(item, f"{pointer}/{_escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_incompatible(item, f"{pointer}/{index}")
    elif isinstance(value, float) and not math.isfinite(value):
        yield pointer, f"{value} is not a JSON number"
    elif not (value is None or isinstance(value, str | int | float | bool)):
        yield pointer, f"a YAML {type(value).__name__} has no JSON equivalent"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _draft_key(declared: Any) -> str | None:
    if not isinstance(declared, str):
        return None
    key = declared.split("://", 1)[-1].removesuffix("#")
    return key if key in _DRAFTS and declared.startswith(("http://", "https://")) else None


_metaschemas: dict[str, jsonschema_rs.Validator] = {}


def _metaschema(key: str) -> jsonschema_rs.Validator:
    """A validator for a draft's metaschema, from the library's built-in copies (offline)."""
    validator = _metaschemas.get(key)
    if validator is None:
        uri = f"https://{key}" if "2019" in key or "2020" in key else f"http://{key}#"
        validator = jsonschema_rs.validator_for({"$schema": uri, "$ref": uri}, offline=True)
        _metaschemas[key] = validator
    return validator


def _refuse_retrieval(uri: str) -> Any:
    raise SchemaLoadError(f"cerouter never fetches schemas: {uri} is not a local schema")


def _declared_id(source: _Source) -> str | None:
    """The resolved root id of a source that may not have passed inspection."""
    document = source.document
    if not isinstance(document, dict):
        return None
    declared = document.get("$id", document.get("id"))
    if not isinstance(declared, str):
        return None
    return urldefrag(urljoin(source.file_uri, declared))[0]


def _id_keyword(source: _Source) -> str:
    return "id" if source.draft_key == "json-schema.org/draft-04/schema" else "$id"


def _walk(document: Any, base: str, id_keyword: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each subschema (dict) with its base URI, skipping keywords that hold instance data."""
    stack: list[tuple[Any, str, bool]] = [(document, base, False)]  # (node, base, is a map)
    while stack:
        node, node_base, is_map = stack.pop()
        if isinstance(node, list):
            stack.extend((item, node_base, False) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if is_map:  # {name: subschema, ...}
            stack.extend((value, node_base, False) for value in node.values())
            continue
        declared = node.get(id_keyword)
        if isinstance(declared, str) and not declared.startswith("#"):
            node_base = urldefrag(urljoin(node_base, declared))[0]
        yield node_base, node
        stack.extend(
            (value, node_base, key in _SCHEMA_MAPS)
            for key, value in node.items()
            if key not in _DATA_KEYWORDS and isinstance(value, dict | list)
        )


def _embedded_ids(document: Any, base: str, id_keyword: str) -> Iterator[str]:
    for node_base, node in _walk(document, base, id_keyword):
        if isinstance(node.get(id_keyword), str):
            yield node_base


def _refs(document: Any, base: str, id_keyword: str) -> Iterator[tuple[str, str]]:
    """``(ref, resolved URI)`` for every ``$ref`` and ``$dynamicRef`` in a document."""
    for node_base, node in _walk(document, base, id_keyword):
        for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
            ref = node.get(keyword)
            if isinstance(ref, str):
                yield ref, urljoin(node_base, ref)


def _display_uri(uri: str, directory: Path) -> str:
    """A ``file:`` URI as a path relative to the directory (or the working directory)."""
    if not uri.startswith("file:"):
        return uri
    path = Path(unquote(urlsplit(uri).path))
    for base in (directory.resolve(), Path.cwd()):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


def _normal_relpath(ref: str) -> str:
    parts = [part for part in ref.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts)


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _pointer(path: list[str | int]) -> str:
    return "data" + "".join(f"/{_escape(part)}" for part in path)


def _message(error: jsonschema_rs.ValidationError) -> str:
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format):
        message = f"{_short(error.instance)} is not a valid {kind.format}"
    elif isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        options = ", ".join(_short(option) for option in kind.options)
        message = f"{_short(error.instance)} is not one of {options}"
    else:
        message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
