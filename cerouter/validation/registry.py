"""The schema registry: loaded schemas by event ``type`` and ``dataschema``, validators compiled.

Loading, ``$ref`` resolution and the no-network rule are :mod:`cerouter.validation.loader`'s;
this module maps events to the schemas it loaded and holds their compiled validators.

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
       :class:`cerouter.validation.validator.EventValidator`.

A :class:`SchemaRegistry` is immutable once loaded; a reload builds a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal

import jsonschema_rs

from cerouter.errors import SchemaLoadError
from cerouter.validation.documents import MAX_DEPTH, pointer_token
from cerouter.validation.loader import (
    TYPE_KEYWORD,
    LoadedDirectory,
    SchemaFile,
    load_directory,
)
from cerouter.validation.messages import rule_message
from cerouter.validation.report import Problem, Stage, shorten

__all__ = ["CompiledSchema", "SchemaEntry", "SchemaRegistry", "SchemasSettings"]

MAX_PROBLEMS: Final = 20  # detailed errors reported per instance
LIST_VALUES: Final = 2_000  # the most values (members and items, nested) of an instance whose
# errors are all looked for (jsonschema-rs: a few ms for 2,000 errors); see CompiledSchema.errors
_MORE: Final = Problem(Stage.DATA, "data", "and more problems, not shown")
_NOT_LOOKED_FOR: Final = Problem(
    Stage.DATA,
    "data",
    f"further problems not looked for (the data holds over {LIST_VALUES} values)",
)
_TOO_DEEP: Final = Problem(
    Stage.DATA,
    "data",
    f"does not match the schema, nested too deeply (more than {MAX_DEPTH} levels) to say where",
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

    def errors(
        self, instance: Any, *, limit: int = MAX_PROBLEMS, include_values: bool = False
    ) -> tuple[Problem, ...]:
        """How ``instance`` breaks the schema, located by JSON pointer below ``data``.

        Each message names the rule, not the failing value (:mod:`cerouter.validation.messages`);
        ``include_values`` puts the value (a scalar, shortened) first. Pointer tokens, which are
        the data's member names, are shortened too.

        At most ``limit`` problems, then one more saying that there are more, uncounted. The work
        is bounded whatever the instance holds: jsonschema-rs finds every error before it yields
        the first, in time growing faster than their number (100,000 bad items: over a second),
        so only an instance of at most :data:`LIST_VALUES` values has its errors listed; a larger
        one gets the first error alone (``validate`` stops there), and a note saying so.
        """
        if _more_values_than(instance, LIST_VALUES):
            try:
                self._validator.validate(instance)
            except jsonschema_rs.ValidationError as first:
                return (_problem(first, include_values), _NOT_LOOKED_FOR)
            except ValueError:  # nested deeper than jsonschema-rs converts
                return (_TOO_DEEP,)
            return ()
        problems: list[Problem] = []
        try:
            for error in self._validator.iter_errors(instance):
                if len(problems) >= limit:
                    problems.append(_MORE)
                    break
                problems.append(_problem(error, include_values))
        except ValueError:  # jsonschema-rs cannot show data nested deeper than it converts
            problems.append(_TOO_DEEP)
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
        loaded = load_directory(settings.directory)
        compiled = {
            f.relpath: CompiledSchema(
                declared_id=f.declared_id,
                path=f.path,
                relpath=f.relpath,
                uri=f.base,
                draft=f.draft,
                document=f.document,
                validator=validator,
            )
            for f in loaded.files
            if (validator := loaded.validators.get(f.relpath)) is not None
        }
        problems = list(loaded.problems)
        by_type, entries = _map_types(settings, loaded, compiled, problems)
        if problems:
            raise SchemaLoadError("\n".join(problems))
        schemas = tuple(compiled[f.relpath] for f in loaded.files)
        return cls(settings, schemas, by_type, entries, loaded.depends)

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


# --------------------------------------------------------------------------- type mapping


def _map_types(
    settings: SchemasSettings,
    loaded: LoadedDirectory,
    compiled: Mapping[str, CompiledSchema],
    problems: list[str],
) -> tuple[dict[str, CompiledSchema], tuple[SchemaEntry, ...]]:
    """The event type -> schema mapping and the rows of ``schemas list``; problems appended."""
    sources = loaded.files
    by_type: dict[str, CompiledSchema] = {}
    origin: dict[str, str] = {}
    declared_in: dict[str, SchemaFile] = {}
    for source in sources:
        for event_type in source.types:
            other = declared_in.get(event_type)
            if other is not None:
                problems.append(
                    f"{source.path}: {TYPE_KEYWORD} {event_type!r} is already declared by "
                    f"{other.path} (map it in routes.yaml schemas.types to choose)"
                )
                continue
            declared_in[event_type] = source
            if source.relpath in compiled:
                by_type[event_type] = compiled[source.relpath]
                origin[event_type] = TYPE_KEYWORD
    by_id = {s.declared_id: s for s in sources if s.declared_id is not None}
    by_path = {s.relpath: s for s in sources}
    for event_type, ref in settings.types.items():
        target = by_id.get(ref) or by_id.get(ref.removesuffix("#"))
        target = target or by_path.get(_normal_relpath(ref))
        if target is None and _normal_relpath(ref) not in loaded.found:
            problems.append(
                f"schemas.types: {event_type!r} maps to {ref!r}, which is neither the $id nor "
                f"the path of a schema in {settings.directory}"
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


def _normal_relpath(ref: str) -> str:
    parts = [part for part in ref.replace("\\", "/").split("/") if part not in ("", ".")]
    return "/".join(parts)


def _more_values_than(instance: Any, budget: int) -> bool:
    """Tell whether ``instance`` holds more than ``budget`` values, in O(budget) steps at most."""
    if instance.__class__ is not dict and instance.__class__ is not list:
        return False
    count = 0
    pending = [instance]
    while pending:
        container = pending.pop()
        count += len(container)
        if count > budget:
            return True
        for value in container.values() if container.__class__ is dict else container:
            if value.__class__ is dict or value.__class__ is list:
                pending.append(value)
    return False


def _problem(error: jsonschema_rs.ValidationError, include_values: bool) -> Problem:
    message = rule_message(error, include_values=include_values)
    return Problem(Stage.DATA, _pointer(error.instance_path), message)


def _pointer(path: list[str | int]) -> str:
    return "data" + "".join(f"/{shorten(pointer_token(part))}" for part in path)
