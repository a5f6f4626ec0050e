"""Event validation: the envelope rules, then the data against its JSON Schema, as one report.

::

    validator = EventValidator(SchemaRegistry.load(settings))   # once, at (re)load
    report = validator.check(decode(headers, payload))          # per event
    if not report.ok:
        dead_letter(reason=report.summary())

The data step, when a schema applies (:meth:`SchemaRegistry.lookup`, or a route's ``schema:``):

* JSON data (``datacontenttype`` ``*/json``, ``*/*+json``, or absent) is validated; a binary-mode
  body is parsed only now, and a body that does not parse is a ``data`` problem;
* non-JSON data, or no data at all, is a ``data`` problem saying why it cannot be checked;
* the compiled validator's ``is_valid`` decides; only for invalid data is the instance walked
  again for located messages (``data/items/0/price: is less than the minimum of 0``).

Reports go to dead-letter headers and logs, so their messages name the place and the rule, not
the event's values: ``EventValidator(registry, include_values=True)`` puts the offending values
in (shortened to 64 characters). :meth:`EventValidator.check_json`, the checker of a developer's
own event files (``cerouter validate``), shows them unless told otherwise.

When no schema applies, ``SchemasSettings.unknown`` decides: ``allow`` passes the data unchecked,
``reject`` makes it a ``data`` problem. Without a registry only the envelope is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from cerouter.binding import STRUCTURED_CONTENT_TYPE, DataKind, DecodedEvent, Mode, decode
from cerouter.errors import BindingError
from cerouter.validation.envelope import check_attributes, check_envelope, check_json_members
from cerouter.validation.registry import CompiledSchema, SchemaRegistry
from cerouter.validation.report import VALID, Problem, Report, Stage, shorten

__all__ = ["EventValidator"]

_STRUCTURED_HEADERS = {"Content-Type": STRUCTURED_CONTENT_TYPE}
_JSON = DataKind.JSON  # an Enum member lookup costs ~0.1 µs on CPython 3.11; once is enough
# When is_valid says no but no located error turns up: never report such data as valid.
_INVALID = (Problem(Stage.DATA, "data", "is not valid under the schema"),)


class EventValidator:
    """Checks events against the envelope rules and a registry's schemas. Built once, reused.

    ``include_values``: report messages show the values that broke a rule (shortened), not only
    where and which rule. Off by default: reports end up in dead-letter headers and logs.
    """

    __slots__ = ("_forced_cache", "_reject_unknown", "_showing", "include_values", "registry")

    def __init__(self, registry: SchemaRegistry | None, *, include_values: bool = False) -> None:
        self.registry = registry
        self.include_values = include_values
        self._reject_unknown = registry is not None and registry.unknown == "reject"
        # schema_ref -> schema, at most 1,024 refs: refs come from routes.yaml (one per route),
        # never from events, and the registry is immutable
        self._forced_cache: dict[str, CompiledSchema | None] = {}
        self._showing: EventValidator | None = self if include_values else None

    def check(self, event: DecodedEvent, schema_ref: str | None = None) -> Report:
        """Check the envelope, then the data. ``schema_ref`` forces a schema (a route's override).

        Never raises for a bad event: every finding is a
        :class:`~cerouter.validation.report.Problem`.
        """
        values = self.include_values
        envelope = check_envelope(event, values)
        registry = self.registry
        if registry is None and schema_ref is None:
            return Report(envelope) if envelope else VALID
        if schema_ref is None:
            schema = registry.lookup(event.attributes) if registry is not None else None
            if schema is None:
                if self._reject_unknown and "type" in event.attributes:
                    return Report((*envelope, _no_schema(event.attributes, values)))
                return Report(envelope) if envelope else VALID
        else:
            schema = self._forced(schema_ref)
            if schema is None:
                missing = Problem(Stage.DATA, "data", f"schema {schema_ref!r} is not loaded")
                return Report((*envelope, missing))
        if event.data_kind is _JSON:
            instance = event.data
        else:
            instance, problem = _json_instance(event, schema, values)
            if problem is not None:
                return Report((*envelope, problem))
        if schema.is_valid(instance):
            return Report(envelope) if envelope else VALID
        return Report((*envelope, *(schema.errors(instance, include_values=values) or _INVALID)))

    def check_data(self, event: DecodedEvent, schema_ref: str) -> Report:
        """Check only the data, against a named schema (a route's ``schema:``).

        For an event whose envelope :meth:`check` has already passed: saves the envelope work.
        """
        schema = self._forced(schema_ref)
        if schema is None:
            missing = Problem(Stage.DATA, "data", f"schema {schema_ref!r} is not loaded")
            return Report((missing,))
        if event.data_kind is _JSON:
            instance = event.data
        else:
            instance, problem = _json_instance(event, schema, self.include_values)
            if problem is not None:
                return Report((problem,))
        if schema.is_valid(instance):
            return VALID
        return Report(schema.errors(instance, include_values=self.include_values) or _INVALID)

    def check_json(
        self, event: Any, schema_ref: str | None = None, *, include_values: bool = True
    ) -> Report:
        """Check a structured-mode JSON event (as parsed from a file) with every rule.

        Unlike :func:`cerouter.binding.decode`, which stops at the first problem, the JSON-format
        member rules (``data`` and ``data_base64`` never both, attribute values of CloudEvents
        types) are reported together with the attribute rules. This is the checker of a
        developer's own files, so messages show the values (shortened) unless
        ``include_values`` is false, whatever the validator was built with.
        """
        if include_values != self.include_values:
            return self._sibling().check_json(event, schema_ref, include_values=include_values)
        if not isinstance(event, dict):
            kind = "array" if isinstance(event, list) else type(event).__name__
            message = f"a structured event must be a JSON object, got {kind}"
            return Report((Problem(Stage.BINDING, "event", message),))
        members = check_json_members(event, include_values)
        if members:
            attributes = {
                name: value
                for name, value in event.items()
                if name not in ("data", "data_base64")
                and value is not None
                and value.__class__ in (str, int, bool)
            }
            return Report((*members, *check_attributes(attributes, include_values)))
        try:
            decoded = decode(_STRUCTURED_HEADERS, orjson.dumps(event))
        except (BindingError, TypeError) as exc:
            return Report((Problem(Stage.BINDING, "event", str(exc)),))
        return self.check(decoded, schema_ref)

    def schema_for(
        self, attributes: Mapping[str, Any], schema_ref: str | None = None
    ) -> CompiledSchema | None:
        """The schema :meth:`check` would use for an event with these attributes."""
        if schema_ref is not None:
            return self._forced(schema_ref)
        return None if self.registry is None else self.registry.lookup(attributes)

    def _sibling(self) -> EventValidator:
        """This validator with ``include_values`` the other way (made once)."""
        sibling = self._showing
        if sibling is None or sibling is self:
            sibling = EventValidator(self.registry, include_values=not self.include_values)
            sibling._showing = self
            self._showing = sibling
        return sibling

    def _forced(self, schema_ref: str) -> CompiledSchema | None:
        try:
            return self._forced_cache[schema_ref]
        except KeyError:
            pass
        registry = self.registry
        found = None
        if registry is not None and registry.has(schema_ref):
            found = registry.get(schema_ref)
        if len(self._forced_cache) < 1024:
            self._forced_cache[schema_ref] = found
        return found


def _no_schema(attributes: Mapping[str, Any], values: bool) -> Problem:
    named = f"event type {shorten(repr(attributes.get('type')))}" if values else "the event's type"
    return Problem(
        Stage.DATA,
        "data",
        f"no schema for {named} and unknown types are rejected (schemas.unknown: reject)",
    )


def _json_instance(
    event: DecodedEvent, schema: CompiledSchema, values: bool
) -> tuple[Any, Problem | None]:
    """The data as a JSON value, or the problem that prevents validating it."""
    kind = event.data_kind
    ctype = event.datacontenttype
    if kind is DataKind.ABSENT:
        return None, Problem(
            Stage.DATA, "data", f"the event has no data, but schema {schema.id} expects JSON data"
        )
    # A binary-mode body without a content type is read as JSON (the JSON format's default);
    # structured-mode data_base64 without one must not be assumed to be anything (section C.4).
    try:
        is_json, value = event.json_data(assume_json=event.mode is Mode.BINARY)
    except BindingError as exc:
        return None, Problem(Stage.DATA, "data", str(exc))
    if is_json:
        return value, None
    if ctype is None:
        reason = "data_base64 without a datacontenttype cannot be assumed to be JSON"
    else:
        named = f" {shorten(repr(ctype))}" if values else ""
        reason = f"datacontenttype{named} is not JSON (*/json or */*+json)"
    return None, Problem(
        Stage.DATA, "data", f"{reason}; schema {schema.id} can only validate JSON data"
    )
