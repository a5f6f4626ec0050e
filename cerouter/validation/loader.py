"""The schema loader: a directory of schema files, read, checked and compiled offline.

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

:func:`load_directory` collects every problem rather than stopping at the first, and returns
them with what it could load; :meth:`cerouter.validation.registry.SchemaRegistry.load` adds the
type mapping's own problems and raises them together. Event types are not this module's
business beyond reading each file's ``x-cloudevents-type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urldefrag, urljoin

import jsonschema_rs
import orjson

from cerouter.errors import SchemaLoadError
from cerouter.validation.documents import (
    DocumentError,
    display_uri,
    embedded_ids,
    is_remote,
    json_type,
    pointer_token,
    read_document,
    refs,
    resolve,
)

__all__ = [
    "SCHEMA_SUFFIXES",
    "TYPE_KEYWORD",
    "LoadedDirectory",
    "SchemaFile",
    "error_message",
    "load_directory",
]

SCHEMA_SUFFIXES: Final = (".json", ".yaml", ".yml")
TYPE_KEYWORD: Final = "x-cloudevents-type"

# $schema values understood (normalized: no scheme, no trailing "#") -> draft name.
_DRAFTS: Final[Mapping[str, str]] = {
    "json-schema.org/draft-04/schema": "draft-04",
    "json-schema.org/draft-06/schema": "draft-06",
    "json-schema.org/draft-07/schema": "draft-07",
    "json-schema.org/draft/2019-09/schema": "2019-09",
    "json-schema.org/draft/2020-12/schema": "2020-12",
}
_DEFAULT_DRAFT: Final = "json-schema.org/draft/2020-12/schema"


@dataclass(eq=False)  # identity: documents are not compared
class SchemaFile:
    """A schema file read and parsed; :meth:`_Loader.inspect` fills in the rest."""

    path: Path
    relpath: str  # the file, relative to the directory, with "/"
    file_uri: str
    document: Any
    draft_key: str = _DEFAULT_DRAFT
    base: str = ""  # base URI: resolved $id, or file_uri
    declared_id: str | None = None
    types: tuple[str, ...] = ()  # its x-cloudevents-type declaration

    @property
    def draft(self) -> str:
        """The draft's short name: ``"2020-12"``, ``"draft-07"``, ..."""
        return _DRAFTS[self.draft_key]


@dataclass(frozen=True)
class LoadedDirectory:
    """What :func:`load_directory` found: usable files, their validators, and the problems."""

    #: every file that parsed and passed its checks, by path (some may still not compile)
    files: tuple[SchemaFile, ...]
    #: relative path -> compiled validator, for the files that compiled and whose refs resolved
    validators: Mapping[str, jsonschema_rs.Validator]
    #: relative paths of every schema file in the directory, usable or not
    found: frozenset[str]
    #: relative path -> relative paths of the files it ``$ref``s
    depends: Mapping[str, set[str]]
    #: ``file: message`` lines, in the order found
    problems: tuple[str, ...]


def load_directory(directory: Path) -> LoadedDirectory:
    """Read, check and compile every schema file under ``directory``.

    Raises :class:`~cerouter.errors.SchemaLoadError` only when ``directory`` is missing or not a
    directory; every other problem is in the result's ``problems``.
    """
    return _Loader(directory).load()


class _Loader:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.problems: list[str] = []
        self.bad: set[str] = set()  # relpaths of sources that must not be compiled
        self.broken_uris: set[str] = set()  # URIs of files that could not be used at all
        self.found: set[str] = set()  # relpaths of every schema file in the directory

    def problem(self, where: Path | str, message: str, source: SchemaFile | None = None) -> None:
        self.problems.append(f"{where}: {message}")
        if source is not None:
            self.bad.add(source.relpath)

    def load(self) -> LoadedDirectory:
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
        validators = self.compile(healthy, [(u, s) for u, s in aliases if s in healthy])
        return LoadedDirectory(
            tuple(sources), validators, frozenset(self.found), depends, tuple(self.problems)
        )

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

    def read(self, path: Path) -> SchemaFile | None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.problem(path, f"cannot read: {exc.strerror or exc}")
            return None
        try:
            document = read_document(path, raw)
        except DocumentError as exc:
            self.problem(exc.where, exc.message)
            return None
        relpath = path.relative_to(self.directory).as_posix()
        return SchemaFile(path, relpath, path.resolve().as_uri(), document)

    def inspect(self, source: SchemaFile) -> bool:
        """Metaschema, $schema, $id and x-cloudevents-type of one file. False: unusable."""
        path, document = source.path, source.document
        if isinstance(document, bool):
            source.base = source.file_uri
            return True
        if not isinstance(document, dict):
            kind = "empty" if document is None else f"a JSON {json_type(document)}"
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
            where = "#" + "".join(f"/{pointer_token(part)}" for part in error.instance_path)
            self.problem(
                path, f"{where}: {error_message(error)} (metaschema: JSON Schema {draft_name})"
            )
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

    def index(self, sources: list[SchemaFile]) -> dict[str, SchemaFile]:
        """Every resource URI (file URIs, root and embedded $ids) -> its file."""
        resources: dict[str, SchemaFile] = {}
        ids: dict[str, SchemaFile] = {}
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
            for uri in embedded_ids(source.document, source.base, _id_keyword(source)):
                resources.setdefault(uri, source)
        resources.update(ids)
        return resources

    def check_refs(
        self, sources: list[SchemaFile], resources: dict[str, SchemaFile]
    ) -> tuple[list[tuple[str, SchemaFile]], dict[str, set[str]]]:
        """Report unresolvable refs.

        Returns the aliases needed for file-relative refs, and for each source the relative
        paths of the sources it refers to.
        """
        by_file_uri = {s.file_uri: s for s in sources}
        aliases: dict[str, SchemaFile] = {}
        depends: dict[str, set[str]] = {s.relpath: set() for s in sources}
        for source in sources:
            for ref, target in refs(source.document, source.base, _id_keyword(source)):
                resource = urldefrag(target)[0]
                found = resources.get(resource) or aliases.get(resource)
                if found is None:
                    next_to_file = resolve(source.file_uri, ref)
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

    def unresolvable(self, source: SchemaFile, ref: str, resource: str, next_to_file: str) -> None:
        if is_remote(ref):
            self.problem(
                source.path,
                f"$ref {ref!r} is a remote URL and no schema in {self.directory} has it "
                "as $id; cerouter never fetches schemas over the network (put a copy "
                "with that $id in the directory)",
                source,
            )
            return
        candidates = [f"$id {resource!r}"] if resource != next_to_file else []
        candidates.append(f"path {display_uri(next_to_file, self.directory)!r}")
        self.problem(
            source.path,
            f"$ref {ref!r} cannot be resolved: no schema in {self.directory} has "
            f"{' or '.join(candidates)}",
            source,
        )

    def healthy(self, sources: list[SchemaFile], depends: dict[str, set[str]]) -> list[SchemaFile]:
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
        self, sources: list[SchemaFile], aliases: list[tuple[str, SchemaFile]]
    ) -> dict[str, jsonschema_rs.Validator]:
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
        compiled: dict[str, jsonschema_rs.Validator] = {}
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
            compiled[source.relpath] = validator
        return compiled


# --------------------------------------------------------------------------- helpers


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


def _declared_id(source: SchemaFile) -> str | None:
    """The resolved root id of a source that may not have passed inspection."""
    document = source.document
    if not isinstance(document, dict):
        return None
    declared = document.get("$id", document.get("id"))
    if not isinstance(declared, str):
        return None
    return resolve(source.file_uri, declared)


def _id_keyword(source: SchemaFile) -> str:
    return "id" if source.draft_key == "json-schema.org/draft-04/schema" else "$id"


def error_message(error: jsonschema_rs.ValidationError) -> str:
    """One line on a validation error: values shortened, at most 200 characters."""
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
