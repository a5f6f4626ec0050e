"""YAML with line numbers: routes.yaml is read into a tree of :class:`YNode` values.

PyYAML's composer keeps a mark on every node; this module turns that node tree into plain values
wrapped with their line, so every later error can say ``file:line: key.path: message``. Duplicate
keys (which PyYAML silently overwrites) are errors; merge keys (``<<: *anchor``) are honoured;
timestamps and other exotic scalars stay strings. Scalars keep their source text too (``text``),
which filter values use so that ``NO`` or ``1.0`` are compared as written, not as YAML 1.1
booleans or floats.

**Limits**, against hostile or broken files (each a located :class:`ConfigError`): the file nests
at most :data:`MAX_DEPTH` (64) mappings and lists deep, and its aliases (``*name``, merge keys
included) copy at most ``MAX_ALIAS_NODES`` (10,000) nodes in all -- a "billion laughs" file
stops at once instead of hanging ``routes check`` and ``run``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cerouter.errors import ConfigError
from cerouter.validation.documents import BoundedLoader, YamlLimitError

MAX_DEPTH: Final = 64
"""How deeply routes.yaml may nest mappings and lists (the deepest real file needs about 10)."""

PathPart = str | int

_TAG = "tag:yaml.org,2002:"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_constructor = SafeConstructor()


@dataclass(slots=True, eq=False)
class YNode:
    """A located YAML value.

    ``value`` is a ``dict[str, YNode]``, a ``list[YNode]`` or a scalar (str, int, float, bool,
    None); ``line`` is 1-based; ``text`` is a scalar's source text; ``key_lines`` gives the line of
    each key of a mapping.
    """

    value: Any
    line: int
    text: str | None = None
    key_lines: dict[str, int] = field(default_factory=dict)

    @property
    def is_mapping(self) -> bool:
        """``True`` for a mapping node."""
        return isinstance(self.value, dict)

    @property
    def is_sequence(self) -> bool:
        """``True`` for a sequence node."""
        return isinstance(self.value, list)

    def get(self, key: str) -> YNode | None:
        """The child at ``key`` of a mapping node (``None`` if absent or not a mapping)."""
        if isinstance(self.value, dict):
            child: YNode | None = self.value.get(key)
            return child
        return None

    def items(self) -> Iterator[tuple[str, YNode]]:
        """The ``(key, child)`` pairs of a mapping node, in file order."""
        if isinstance(self.value, dict):
            yield from self.value.items()

    def children(self) -> list[YNode]:
        """The items of a sequence node."""
        return list(self.value) if isinstance(self.value, list) else []

    def plain(self, *, raw_scalars: bool = False) -> Any:
        """The value without locations; with ``raw_scalars``, scalars are their source text."""
        if isinstance(self.value, dict):
            return {k: v.plain(raw_scalars=raw_scalars) for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain(raw_scalars=raw_scalars) for v in self.value]
        if raw_scalars and self.text is not None and self.value is not None:
            return self.text
        return self.value


def format_path(path: tuple[PathPart, ...] | list[PathPart]) -> str:
    """``("routes", 2, "to", 0)`` → ``routes[2].to[0]``; odd keys are quoted: ``types["a.b"]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{_quote(part)}]"
    return out


class _RoutesLoader(BoundedLoader):
    """The safe loader, composing without recursion, within routes.yaml's limits."""

    max_depth = MAX_DEPTH


def _quote(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_yaml(text: str, file: str) -> YNode | None:
    """Parse YAML text into a located tree; ``None`` for an empty document.

    Raises :class:`ConfigError` for syntax errors, several documents, duplicate keys, non-string
    keys and unsupported tags.
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=_RoutesLoader))
    except YamlLimitError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise ConfigError(str(exc.problem), file=file, line=line) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, file) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML syntax error: {exc}", file=file) from None
    if len(nodes) > 1:
        line = nodes[1].start_mark.line + 1
        raise ConfigError("expected one YAML document, found several (---)", file=file, line=line)
    if not nodes or nodes[0] is None:
        return None
    return _convert(nodes[0], file, ())


_PLACEHOLDER = re.compile(r"\{[A-Za-z0-9_]+\}")
_TEMPLATE_HINT = ' (quote subject templates: "orders.{type}")'
_UNCLOSED = re.compile(r"expected ',' or '([]}])', but got")


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> ConfigError:
    """A PyYAML error in words, at the line where the mistake is (not where PyYAML noticed it)."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    if mark is None:  # pragma: no cover - PyYAML marks every syntax error
        return ConfigError(f"YAML syntax error: {problem}", file=file)
    line = mark.line + 1
    lines = text.splitlines()
    source = lines[mark.line] if mark.line < len(lines) else ""
    opened = exc.context_mark
    if (m := _UNCLOSED.match(problem)) and opened is not None and opened.line != mark.line:
        # A flow collection left open: PyYAML notices on a later line; the mistake is where the
        # bracket was opened.
        bracket = "{" if m.group(1) == "}" else "["
        message = (
            f"the '{bracket}' at column {opened.column + 1} is never closed "
            f"(expected ',' or '{m.group(1)}' before line {line})"
        )
        return ConfigError(f"YAML syntax error: {message}", file=file, line=opened.line + 1)
    if _PLACEHOLDER.search(source):
        message = problem + _TEMPLATE_HINT
    elif problem.startswith("found character") and "\\t" in problem:
        message = f"a tab at column {mark.column + 1}: YAML indents with spaces only"
    elif problem.startswith("expected <block end>"):
        message = "bad indentation: this line does not line up with the lines above it"
    elif problem.startswith("mapping values are not allowed"):
        message = f"{problem} (check the indentation, or quote a value that contains ': ')"
    else:
        message = problem
    return ConfigError(f"YAML syntax error: {message}", file=file, line=line)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _convert(node: Node, file: str, path: tuple[PathPart, ...]) -> YNode:
    if isinstance(node, ScalarNode):
        return YNode(_scalar(node, file, path), _line(node), text=str(node.value))
    if isinstance(node, SequenceNode):
        return YNode(
            [_convert(item, file, (*path, i)) for i, item in enumerate(node.value)], _line(node)
        )
    if isinstance(node, MappingNode):
        return _mapping(node, file, path)
    raise ConfigError("unsupported YAML node", file=file, line=_line(node), path=format_path(path))


def _mapping(node: MappingNode, file: str, path: tuple[PathPart, ...]) -> YNode:
    out: dict[str, YNode] = {}
    key_lines: dict[str, int] = {}
    merged: dict[str, YNode] = {}
    merged_lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _TAG + "merge":
            for source in _merge_sources(value_node, file, path):
                converted = _mapping(source, file, path)
                for k, v in converted.value.items():
                    if k not in merged:
                        merged[k] = v
                        merged_lines[k] = converted.key_lines[k]
            continue
        if not isinstance(key_node, ScalarNode) or key_node.tag == _TAG + "null":
            raise ConfigError(
                "mapping keys must be plain strings",
                file=file,
                line=_line(key_node),
                path=format_path(path),
            )
        key = str(key_node.value)
        if key in out:
            raise ConfigError(
                f"duplicate key '{key}' (first at line {key_lines[key]})",
                file=file,
                line=_line(key_node),
                path=format_path(path),
            )
        key_lines[key] = _line(key_node)
        out[key] = _convert(value_node, file, (*path, key))
    for k, v in merged.items():
        if k not in out:
            out[k] = v
            key_lines[k] = merged_lines[k]
    return YNode(out, _line(node), key_lines=key_lines)


def _merge_sources(node: Node, file: str, path: tuple[PathPart, ...]) -> list[MappingNode]:
    if isinstance(node, MappingNode):
        return [node]
    if isinstance(node, SequenceNode) and all(isinstance(n, MappingNode) for n in node.value):
        return list(node.value)
    raise ConfigError(
        "a merge key (<<) needs a mapping or a list of mappings",
        file=file,
        line=_line(node),
        path=format_path(path),
    )


def _scalar(node: ScalarNode, file: str, path: tuple[PathPart, ...]) -> Any:
    tag = node.tag
    try:
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return _constructor.construct_yaml_bool(node)
        if tag == _TAG + "int":
            return _constructor.construct_yaml_int(node)
        if tag == _TAG + "float":
            return _constructor.construct_yaml_float(node)
    except (ConstructorError, ValueError):
        return str(node.value)
    if tag.startswith(_TAG) or tag == "!":
        return str(node.value)  # str, timestamp, binary...: kept as text
    raise ConfigError(
        f"unsupported YAML tag {tag!r}", file=file, line=_line(node), path=format_path(path)
    )
