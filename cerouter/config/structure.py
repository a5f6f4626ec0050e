"""The structural check of routes.yaml: the packaged JSON Schema, applied with located messages.

``routes.schema.json`` (shipped in the package, printed by ``cerouter routes schema``) is the one
description of the file's shape: editors use it for completion and this module uses it for the
structural check. General-purpose validators report ``oneOf`` failures as "is not valid under any of
the given schemas"; users need ``routes[2].to[0]: unknown key 'subjet' (did you mean 'subject'?)``
on the right line. So this module walks the located YAML tree with the subset of JSON Schema 2020-12
the file uses (``$ref``, ``type``, ``const``, ``enum``, ``pattern``, ``minLength``, ``minimum``,
``maximum``, ``items``, ``minItems``, ``properties``, ``required``, ``additionalProperties``,
``propertyNames``, ``minProperties``, ``anyOf``, ``oneOf``), picks the branch of a ``oneOf`` the
user evidently meant (by its required keys and type), and words each failure itself.
``errorMessage`` (the ajv-errors convention, ignored by other tools) supplies wording for patterns
and branches. The test suite checks that ``jsonschema`` agrees with this walker on valid and
invalid documents.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from cerouter.config.yaml_tree import PathPart, YNode

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def routes_schema_text() -> str:
    """The packaged JSON Schema of routes.yaml, as text."""
    return (
        resources.files("cerouter.config")
        .joinpath("routes.schema.json")
        .read_text(encoding="utf-8")
    )


@cache
def routes_schema() -> dict[str, Any]:
    """The packaged JSON Schema of routes.yaml."""
    schema: dict[str, Any] = json.loads(routes_schema_text())
    return schema


@dataclass(frozen=True, slots=True)
class Issue:
    """One structural problem: where (line, key path) and what."""

    line: int
    path: tuple[PathPart, ...]
    message: str


def check_structure(node: YNode, schema: dict[str, Any] | None = None) -> list[Issue]:
    """Check a located document against the routes.yaml schema; issues in file order."""
    root = routes_schema() if schema is None else schema
    issues = _Walker(root).check(node, root, ())
    return sorted(issues, key=lambda i: i.line)


def json_type(value: Any) -> str:
    """The JSON Schema type name of a plain value."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def _type_ok(value: Any, expected: str | list[str]) -> bool:
    actual = json_type(value)
    allowed = [expected] if isinstance(expected, str) else expected
    return actual in allowed or (actual == "integer" and "number" in allowed)


def _words(expected: str | list[str]) -> str:
    allowed = [expected] if isinstance(expected, str) else expected
    names = [_TYPE_WORDS.get(t, t) for t in allowed]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _hint(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Walker:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $ref is supported, got {ref!r}")
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            merged = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **{k: v for k, v in merged.items() if k not in target}}
        return schema

    def accepts_type(self, schema: dict[str, Any], value: Any) -> bool:
        """Whether ``value``'s JSON type is one the schema (or any of its branches) allows."""
        schema = self.resolve(schema)
        if "type" in schema:
            return _type_ok(value, schema["type"])
        branches = schema.get("oneOf") or schema.get("anyOf")
        if branches:
            return any(self.accepts_type(b, value) for b in branches)
        return True

    def check(self, node: YNode, schema: dict[str, Any], path: tuple[PathPart, ...]) -> list[Issue]:
        schema = self.resolve(schema)
        value = node.value
        custom = schema.get("errorMessage")
        for key in ("oneOf", "anyOf"):
            if key in schema:
                issues = self._branches(node, schema, schema[key], path, one=key == "oneOf")
                if issues:
                    return issues
        if "type" in schema and not _type_ok(value, schema["type"]):
            message = custom or f"expected {_words(schema['type'])}"
            hint = ""
            if isinstance(value, dict) and len(value) == 1 and "string" in schema["type"]:
                (key, child), *_ = value.items()
                if child.value is None:  # `subject: {type}` is a YAML mapping, not a template
                    hint = f"; quote a value that starts with '{{': \"{{{key}}}\""
            return [Issue(node.line, path, f"{message}, got {_show_kind(value)}{hint}")]
        if "const" in schema and value != schema["const"]:
            return [Issue(node.line, path, f"{custom or 'must be ' + _show(schema['const'])}"
                          f" (got {_show(value)})")]  # fmt: skip
        if "enum" in schema and value not in schema["enum"]:
            choices = [str(c) for c in schema["enum"]]
            hint = _hint(str(value), choices) if isinstance(value, str) else ""
            return [
                Issue(
                    node.line,
                    path,
                    f"must be one of {', '.join(choices)}, got {_show(value)}{hint}",
                )
            ]
        if isinstance(value, str):
            return self._string(node, schema, path)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._number(node, schema, path)
        if isinstance(value, list):
            return self._array(node, schema, path)
        if isinstance(value, dict):
            return self._object(node, schema, path)
        return []

    def _string(
        self, node: YNode, schema: dict[str, Any], path: tuple[PathPart, ...]
    ) -> list[Issue]:
        value: str = node.value
        if len(value) < schema.get("minLength", 0):
            return [Issue(node.line, path, "must not be empty")]
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            message = schema.get("errorMessage") or f"must match {pattern}"
            return [Issue(node.line, path, f"{message} (got {value!r})")]
        return []

    def _number(
        self, node: YNode, schema: dict[str, Any], path: tuple[PathPart, ...]
    ) -> list[Issue]:
        value = node.value
        if "minimum" in schema and value < schema["minimum"]:
            return [Issue(node.line, path, f"must be at least {schema['minimum']} (got {value})")]
        if "maximum" in schema and value > schema["maximum"]:
            return [Issue(node.line, path, f"must be at most {schema['maximum']} (got {value})")]
        return []

    def _array(
        self, node: YNode, schema: dict[str, Any], path: tuple[PathPart, ...]
    ) -> list[Issue]:
        items: list[YNode] = node.value
        minimum = schema.get("minItems", 0)
        if len(items) < minimum:
            what = "must not be empty" if minimum == 1 else f"needs at least {minimum} items"
            return [Issue(node.line, path, what)]
        issues: list[Issue] = []
        if "items" in schema:
            for i, item in enumerate(items):
                issues.extend(self.check(item, schema["items"], (*path, i)))
        return issues

    def _object(
        self, node: YNode, schema: dict[str, Any], path: tuple[PathPart, ...]
    ) -> list[Issue]:
        members: dict[str, YNode] = node.value
        issues: list[Issue] = []
        if len(members) < schema.get("minProperties", 0):
            return [Issue(node.line, path, schema.get("errorMessage") or "must not be empty")]
        for key in schema.get("required", ()):
            if key not in members:
                issues.append(Issue(node.line, path, f"missing required key '{key}'"))
        properties: dict[str, Any] = schema.get("properties", {})
        names = schema.get("propertyNames")
        extra = schema.get("additionalProperties", True)
        for key, child in members.items():
            line = node.key_lines.get(key, node.line)
            if key in properties:
                issues.extend(self.check(child, properties[key], (*path, key)))
                continue
            hint = _hint(key, list(properties))
            if extra is False:
                allowed = "" if hint else f" (allowed: {', '.join(properties)})"
                issues.append(Issue(line, path, f"unknown key '{key}'{hint}{allowed}"))
                continue
            if names is not None and "pattern" in names and not re.search(names["pattern"], key):
                why = names.get("errorMessage") or f"must match {names['pattern']}"
                issues.append(Issue(line, path, f"invalid key '{key}'{hint}: {why}"))
                continue
            if isinstance(extra, dict):
                found = self.check(child, extra, (*path, key))
                if found and hint:
                    issues.append(Issue(line, path, f"unknown key '{key}'{hint}"))
                else:
                    issues.extend(found)
        return issues

    def _branches(
        self,
        node: YNode,
        schema: dict[str, Any],
        branches: list[dict[str, Any]],
        path: tuple[PathPart, ...],
        *,
        one: bool,
    ) -> list[Issue]:
        resolved = [self.resolve(b) for b in branches]
        results = [(b, self.check(node, b, path)) for b in resolved]
        valid = sum(1 for _, issues in results if not issues)
        if valid == 1 or (valid > 1 and not one):
            return []
        custom = schema.get("errorMessage") or "does not match any allowed form"
        if valid > 1:
            return [Issue(node.line, path, f"ambiguous: {custom}")]
        value = node.value
        candidates = [
            (b, issues)
            for b, issues in results
            if self.accepts_type(b, value)
            and all(isinstance(value, dict) and k in value for k in b.get("required", ()))
        ]
        if candidates:
            top = max(len(b.get("required", ())) for b, _ in candidates)
            best = [(b, issues) for b, issues in candidates if len(b.get("required", ())) == top]
            if len(best) == 1 or top == 0:
                return min(best, key=lambda bi: len(bi[1]))[1]
            return [Issue(node.line, path, custom)]
        if isinstance(value, dict):
            allowed: list[str] = []
            for b in resolved:
                allowed.extend(k for k in b.get("properties", {}) if k not in allowed)
            # Without a near miss, say what would do: the forms (a destination's kinds).
            fallback = (
                f"; {schema['errorMessage']}"
                if schema.get("errorMessage")
                else f" (allowed: {', '.join(allowed)})"
            )
            unknown = [
                Issue(
                    node.key_lines.get(k, node.line),
                    path,
                    f"unknown key '{k}'{_hint(k, allowed) or fallback}",
                )
                for k in value
                if k not in allowed
            ]
            if unknown:
                return unknown
        if isinstance(value, dict):
            return [Issue(node.line, path, custom)]
        return [Issue(node.line, path, f"{custom}, got {_show_kind(value)}")]


def _show_kind(value: Any) -> str:
    kind = json_type(value)
    word = _TYPE_WORDS.get(kind, kind)
    if kind in ("string", "integer", "number", "boolean"):
        return f"{word} {_show(value)}"
    return word
