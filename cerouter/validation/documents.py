"""One schema document: read from a file as JSON, and walked for the ``$id``s and ``$ref``s in it.

For :mod:`cerouter.validation.loader`. :func:`read_document` parses ``.json`` files as JSON and
``.yaml``/``.yml`` files as the part of YAML that JSON can express (dates stay strings). The
walk (no file or network access) gives each subschema's base URI (an ``$id`` changes it for its
subtree), the embedded ``$id`` resources a document defines, and every ``$ref`` with the URI it
resolves to. Keywords that hold instance data (``const``, ``enum``, ...) are not searched: a
``"$ref"`` key in there is data, not a reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import orjson
import yaml

__all__ = [
    "DocumentError",
    "display_uri",
    "embedded_ids",
    "is_remote",
    "json_type",
    "pointer_token",
    "read_document",
    "refs",
    "resolve",
    "walk",
]

_REMOTE_SCHEMES: Final = frozenset({"http", "https", "ftp", "ws", "wss"})
# Keywords whose values are instance data, not subschemas: a "$ref" in there is no reference.
_DATA_KEYWORDS: Final = frozenset({"const", "default", "enum", "examples"})
# Keywords whose values map names to subschemas.
_SCHEMA_MAPS: Final = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"}
)


class DocumentError(ValueError):
    """A file that holds no JSON document; ``where`` names the file (and line:column if known)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def read_document(path: Path, raw: bytes) -> Any:
    """The JSON value in ``raw``, the bytes of ``path``: JSON for ``.json``, else YAML.

    Raises :class:`DocumentError` for a syntax error, or YAML that JSON cannot hold.
    """
    if path.suffix.lower() == ".json":
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            where = f"{path}:{exc.lineno}:{exc.colno}"
            raise DocumentError(where, f"invalid JSON: {exc.msg}") from None
    try:
        document = yaml.load(raw, Loader=_YamlLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise DocumentError(where, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(str(path), f"YAML syntax error: {exc}") from None
    incompatible = next(_json_incompatible(document, "#"), None)
    if incompatible is not None:
        raise DocumentError(str(path), f"{incompatible[0]}: {incompatible[1]}")
    return document


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
            yield from _json_incompatible(item, f"{pointer}/{pointer_token(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_incompatible(item, f"{pointer}/{index}")
    elif isinstance(value, float) and not math.isfinite(value):
        yield pointer, f"{value} is not a JSON number"
    elif not (value is None or isinstance(value, str | int | float | bool)):
        yield pointer, f"a YAML {type(value).__name__} has no JSON equivalent"


def json_type(value: Any) -> str:
    """The JSON type name of a value that is not an object or null."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def pointer_token(part: str | int) -> str:
    """``part`` escaped as a JSON Pointer reference token (RFC 6901: ``~0``, ``~1``)."""
    return str(part).replace("~", "~0").replace("/", "~1")


def resolve(base: str, reference: str) -> str:
    """``reference`` resolved against ``base``, without its fragment."""
    return urldefrag(urljoin(base, reference))[0]


def is_remote(reference: str) -> bool:
    """Tell whether a reference names a network resource (``http:``, ``https:``, ...)."""
    return urlsplit(reference).scheme.lower() in _REMOTE_SCHEMES


def walk(document: Any, base: str, id_keyword: str) -> Iterator[tuple[str, dict[str, Any]]]:
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
            node_base = resolve(node_base, declared)
        yield node_base, node
        stack.extend(
            (value, node_base, key in _SCHEMA_MAPS)
            for key, value in node.items()
            if key not in _DATA_KEYWORDS and isinstance(value, dict | list)
        )


def embedded_ids(document: Any, base: str, id_keyword: str) -> Iterator[str]:
    """The base URI of every subschema that declares an ``id_keyword`` (``$id`` or ``id``)."""
    for node_base, node in walk(document, base, id_keyword):
        if isinstance(node.get(id_keyword), str):
            yield node_base


def refs(document: Any, base: str, id_keyword: str) -> Iterator[tuple[str, str]]:
    """``(ref, resolved URI)`` for every ``$ref`` and ``$dynamicRef`` in a document."""
    for node_base, node in walk(document, base, id_keyword):
        for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
            ref = node.get(keyword)
            if isinstance(ref, str):
                yield ref, urljoin(node_base, ref)


def display_uri(uri: str, directory: Path) -> str:
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
