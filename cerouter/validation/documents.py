"""One schema document: read from a file as JSON, and walked for the ``$id``s and ``$ref``s in it.

For :mod:`cerouter.validation.loader`. :func:`read_document` parses ``.json`` files as JSON and
``.yaml``/``.yml`` files as the part of YAML that JSON can express (dates stay strings). The
walk (no file or network access) gives each subschema's base URI (an ``$id`` changes it for its
subtree), the embedded ``$id`` resources a document defines, and every ``$ref`` with the URI it
resolves to. Keywords that hold instance data (``const``, ``enum``, ...) are not searched: a
``"$ref"`` key in there is data, not a reference.

**Limits.** A schema document nests at most :data:`MAX_DEPTH` (255) objects and arrays deep, the
most jsonschema-rs compiles; YAML aliases (``*name``, merge keys included) may copy at most
:data:`MAX_ALIAS_NODES` (10,000) nodes in all, so a "billion laughs" file is refused at once.
:class:`BoundedLoader` enforces both while composing, without recursion, for routes.yaml too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import orjson
import yaml
from yaml.composer import ComposerError
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
)
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "BoundedLoader",
    "DocumentError",
    "YamlLimitError",
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

MAX_DEPTH: Final = 255
"""How deeply a schema document may nest objects and arrays (jsonschema-rs compiles no deeper)."""
MAX_ALIAS_NODES: Final = 10_000
"""How many nodes the YAML aliases of one document may copy, all together."""

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

    Raises :class:`DocumentError` for a syntax error, YAML that JSON cannot hold, or a document
    beyond the limits (nesting, aliases).
    """
    if path.suffix.lower() == ".json":
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if not exc.msg.startswith("depth limit exceeded"):  # orjson stops at 1024 levels
                where = f"{path}:{exc.lineno}:{exc.colno}"
                raise DocumentError(where, f"invalid JSON: {exc.msg}") from None
        else:
            if not _deeper_than(document, MAX_DEPTH):
                return document
        line, column = _too_deep_at(raw, MAX_DEPTH)
        raise DocumentError(f"{path}:{line}:{column}", _too_deep())
    try:
        document = yaml.load(raw, Loader=_YamlLoader)  # a BoundedLoader (SafeLoader) subclass
    except YamlLimitError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise DocumentError(where, _too_deep() if exc.too_deep else str(exc.problem)) from None
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


class YamlLimitError(ComposerError):
    """A YAML document nests too deeply or its aliases copy too much; ``problem_mark`` is where."""

    def __init__(self, message: str, mark: Any, *, too_deep: bool = False) -> None:
        super().__init__(None, None, message, mark)
        self.too_deep = too_deep


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a composer that does not recurse and refuses hostile documents.

    PyYAML composes nodes recursively (a deep document is a ``RecursionError``) and expands
    aliases wherever a node is copied later (a few lines of ``&a [*b, *b, ...]`` are billions of
    nodes).  This composer keeps the open collections on a list instead, and raises
    :class:`YamlLimitError` at the first collection nested more than ``max_depth`` deep and at
    the first alias that brings the nodes copied by aliases (counted with the aliases inside
    them) past ``max_alias_nodes``.  A recursive alias (``&a [*a]``) is an error too.  Path
    resolvers, which safe loading does not use, are not supported.
    """

    max_depth: ClassVar[int] = MAX_DEPTH
    max_alias_nodes: ClassVar[int] = MAX_ALIAS_NODES

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        sizes: dict[str, int] = {}  # anchor -> nodes in its node, aliases expanded
        copied = 0  # nodes copied by aliases so far
        # The open collections: [node, nodes in it so far, a mapping's pending key, anchor]
        open_nodes: list[list[Any]] = []
        next_event: Callable[[], Any] = self.get_event  # (untyped in the stubs)
        while True:
            event = next_event()
            node: Node
            if isinstance(event, AliasEvent):
                node, size = self._alias(event, sizes)
                copied += size
                if copied > self.max_alias_nodes:
                    raise YamlLimitError(
                        f"YAML aliases copy more than {self.max_alias_nodes} nodes in all "
                        f"(this *{event.anchor} is one too many; a 'billion laughs' file?)",
                        event.start_mark,
                    )
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                node, size, _, anchor = open_nodes.pop()
                node.end_mark = event.end_mark
                if anchor is not None:
                    sizes[anchor] = size
            elif isinstance(event, ScalarEvent):
                self._check_anchor(event)
                node, size = self._scalar(event), 1
                if event.anchor is not None:
                    sizes[event.anchor] = 1
            elif isinstance(event, CollectionStartEvent):
                self._check_anchor(event)
                if len(open_nodes) >= self.max_depth:
                    raise YamlLimitError(
                        f"YAML mappings and lists nested more than {self.max_depth} levels deep",
                        event.start_mark,
                        too_deep=True,
                    )
                open_nodes.append([self._collection(event), 1, None, event.anchor])
                continue
            else:  # pragma: no cover - the parser emits nothing else inside a document
                raise YamlLimitError(f"unexpected {type(event).__name__}", event.start_mark)
            if not open_nodes:
                return node
            top = open_nodes[-1]
            top[1] += size
            collection = top[0]
            if isinstance(collection, SequenceNode):
                collection.value.append(node)
            elif top[2] is None:
                top[2] = node
            else:
                collection.value.append((top[2], node))
                top[2] = None

    def _alias(self, event: Any, sizes: dict[str, int]) -> tuple[Node, int]:
        anchor = event.anchor
        if anchor not in self.anchors:
            raise ComposerError(None, None, f"found undefined alias {anchor!r}", event.start_mark)
        size = sizes.get(anchor)
        if size is None:
            raise YamlLimitError(
                f"the alias *{anchor} is inside the node it names (a recursive alias)",
                event.start_mark,
            )
        return self.anchors[anchor], size

    def _check_anchor(self, event: Any) -> None:
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )

    def _scalar(self, event: Any) -> ScalarNode:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolve(ScalarNode, event.value, event.implicit)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        return node

    def _collection(self, event: Any) -> CollectionNode:
        kind = MappingNode if isinstance(event, MappingStartEvent) else SequenceNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        return node

    def _resolve(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        resolve: Callable[..., str] = self.resolve  # (untyped in the stubs)
        return resolve(kind, value, implicit)


class _YamlLoader(BoundedLoader):
    """A bounded safe loader that keeps dates and times as strings, as JSON would."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _too_deep() -> str:
    return f"nested more than {MAX_DEPTH} levels deep (the most JSON Schema validation handles)"


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` deep in a parsed JSON document."""
    pending: list[tuple[Any, int]] = [(document, 1)] if isinstance(document, dict | list) else []
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        pending.extend((v, depth + 1) for v in children if isinstance(v, dict | list))
    return False


def _too_deep_at(raw: bytes, limit: int) -> tuple[int, int]:
    """The line and column of the first ``{`` or ``[`` nested more than ``limit`` deep in JSON."""
    depth = 0
    line, start = 1, 0  # start: the offset where the line begins
    in_string = escaped = False
    for offset, byte in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # "
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            if depth > limit:
                return line, len(raw[start:offset].decode("utf-8", "replace")) + 1
        elif byte in b"]}":
            depth -= 1
        if byte == 0x0A:
            line, start = line + 1, offset + 1
    return line, 1  # pragma: no cover - only called for a document that nests too deep


def _json_incompatible(document: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """Values YAML can hold that JSON cannot (non-string keys, sets, bytes, NaN...)."""
    pending: list[tuple[Any, str]] = [(document, pointer)]
    while pending:
        value, here = pending.pop()
        if isinstance(value, dict):
            children: list[tuple[Any, str]] = []
            for key, item in value.items():
                if not isinstance(key, str):
                    yield here, f"key {key!r} is not a string (quote it)"
                    continue
                children.append((item, f"{here}/{pointer_token(key)}"))
            pending.extend(reversed(children))
        elif isinstance(value, list):
            pending.extend((item, f"{here}/{i}") for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, float) and not math.isfinite(value):
            yield here, f"{value} is not a JSON number"
        elif not (value is None or isinstance(value, str | int | float | bool)):
            yield here, f"a YAML {type(value).__name__} has no JSON equivalent"


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
