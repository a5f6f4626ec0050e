"""The CESQL syntax tree (frozen dataclasses) and its rendering back to CESQL text.

Nodes carry no source positions: two parses of equivalent text give equal trees, and
:func:`render` gives canonical text (upper-case keywords and function names, single
spaces around binary operators, parentheses only where precedence needs them).

A tree nests at most ``parser.MAX_DEPTH`` levels, except along a chain of ``AND``/``OR``/``XOR``
(``a OR b OR c`` is ``(a OR b) OR c``: the chain runs down the left operands), which may be
as long as the expression.  So everything here that descends a tree follows such chains
with a loop (:func:`logic_chain`) and recurses only into the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from cerouter.cesql.values import Value, format_value


@dataclass(frozen=True, slots=True)
class Literal:
    """A Boolean, Integer or String literal."""

    value: Value


@dataclass(frozen=True, slots=True)
class Attribute:
    """A context attribute reference; ``name`` is lower-case."""

    name: str


@dataclass(frozen=True, slots=True)
class Exists:
    """``EXISTS name``."""

    name: str


@dataclass(frozen=True, slots=True)
class Unary:
    """``NOT operand`` or ``-operand``; ``op`` is ``"NOT"`` or ``"-"``."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    """``left op right``; ``op`` is an upper-case keyword or an operator symbol as written.

    Equality, hash and repr walk the chain of left operands with a loop (see above).
    """

    op: str
    left: Node
    right: Node

    def __eq__(self, other: object) -> bool:
        a: object = self
        b: object = other
        while isinstance(a, Binary) and isinstance(b, Binary):
            if a is b:
                return True
            if a.op != b.op or a.right != b.right:
                return False
            a, b = a.left, b.left
        return a == b

    def __hash__(self) -> int:
        node: Node = self
        parts: list[object] = []
        while isinstance(node, Binary):
            parts.append((node.op, node.right))
            node = node.left
        parts.append(node)
        return hash(tuple(parts))

    def __repr__(self) -> str:
        node: Node = self
        heads: list[str] = []
        tails: list[str] = []
        while isinstance(node, Binary):
            heads.append(f"Binary(op={node.op!r}, left=")
            tails.append(f", right={node.right!r})")
            node = node.left
        return "".join(heads) + repr(node) + "".join(reversed(tails))


@dataclass(frozen=True, slots=True)
class Like:
    """``operand [NOT] LIKE 'pattern'``; ``pattern`` is the decoded string literal."""

    operand: Node
    pattern: str
    negated: bool = False


@dataclass(frozen=True, slots=True)
class In:
    """``operand [NOT] IN (items...)``; ``items`` is never empty."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Call:
    """A function invocation; ``name`` is upper-case."""

    name: str
    args: tuple[Node, ...]


Node = Literal | Attribute | Exists | Unary | Binary | Like | In | Call

LOGIC_OPS: Final = frozenset({"AND", "OR", "XOR"})
COMPARISON_OPS: Final = frozenset({"=", "!=", "<>", "<", "<=", ">", ">="})
ADDITIVE_OPS: Final = frozenset({"+", "-"})
MULTIPLICATIVE_OPS: Final = frozenset({"*", "/", "%"})

# Binding powers, low to high, in the order of CESQL v1.0.0 section 3.6.  AND, OR and XOR
# share one level and associate to the left, as the section's "left to right" says (the
# ANTLR grammar's <assoc=right> disagrees; see the digest, section H.9).
LOGIC_BP: Final = 1
COMPARISON_BP: Final = 2
ADDITIVE_BP: Final = 3
MULTIPLICATIVE_BP: Final = 4
IN_BP: Final = 5
LIKE_BP: Final = 7
UNARY_BP: Final = 8
ATOM_BP: Final = 9


def binary_bp(op: str) -> int:
    """The binding power of a binary operator."""
    if op in LOGIC_OPS:
        return LOGIC_BP
    if op in COMPARISON_OPS:
        return COMPARISON_BP
    if op in ADDITIVE_OPS:
        return ADDITIVE_BP
    return MULTIPLICATIVE_BP


def _bp(node: Node) -> int:
    match node:
        case Binary(op=op):
            return binary_bp(op)
        case In():
            return IN_BP
        case Like():
            return LIKE_BP
        case Unary():
            return UNARY_BP
        case _:
            return ATOM_BP


def logic_chain(node: Binary) -> list[Binary]:
    """The ``AND``/``OR``/``XOR`` nodes from ``node`` down its left operands, deepest first.

    ``chain[0].left`` is the first operand (not itself an AND/OR/XOR), each ``chain[i].right``
    the next one, and ``chain[-1]`` is ``node``; empty when ``node`` is no logic operator.
    """
    chain: list[Binary] = []
    current: Node = node
    while isinstance(current, Binary) and current.op in LOGIC_OPS:
        chain.append(current)
        current = current.left
    chain.reverse()
    return chain


def _wrap(node: Node, min_bp: int) -> str:
    text = render(node)
    return f"({text})" if _bp(node) < min_bp else text


def render(node: Node) -> str:
    """Render ``node`` as CESQL text that parses back to an equal tree."""
    match node:
        case Literal(value=value):
            return format_value(value)
        case Attribute(name=name):
            return name
        case Exists(name=name):
            return f"EXISTS {name}"
        case Unary(op="NOT", operand=operand):
            return f"NOT {_wrap(operand, UNARY_BP)}"
        case Unary(operand=operand):
            text = _wrap(operand, UNARY_BP)
            # "-" glued to digits would lex as a signed integer literal instead.
            return f"- {text}" if text[:1].isdigit() else f"-{text}"
        case Binary(op=op) if op in LOGIC_OPS:
            chain = logic_chain(node)
            parts = [_wrap(chain[0].left, LOGIC_BP)]
            parts.extend(f"{link.op} {_wrap(link.right, LOGIC_BP + 1)}" for link in chain)
            return " ".join(parts)
        case Binary(op=op, left=left, right=right):
            bp = binary_bp(op)
            return f"{_wrap(left, bp)} {op} {_wrap(right, bp + 1)}"
        case Like(operand=operand, pattern=pattern, negated=negated):
            keyword = "NOT LIKE" if negated else "LIKE"
            return f"{_wrap(operand, LIKE_BP)} {keyword} {format_value(pattern)}"
        case In(operand=operand, items=items, negated=negated):
            keyword = "NOT IN" if negated else "IN"
            inner = ", ".join(render(item) for item in items)
            return f"{_wrap(operand, IN_BP)} {keyword} ({inner})"
        case Call(name=name, args=args):
            return f"{name}({', '.join(render(arg) for arg in args)})"


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of ``node``, left to right."""
    match node:
        case Unary(operand=operand) | Like(operand=operand):
            return (operand,)
        case Binary(left=left, right=right):
            return (left, right)
        case In(operand=operand, items=items):
            return (operand, *items)
        case Call(args=args):
            return args
        case _:
            return ()


def walk(node: Node) -> Iterator[Node]:
    """``node`` and all its descendants, pre-order, left to right."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(reversed(children(current)))


def attribute_names(node: Node) -> tuple[str, ...]:
    """The attribute names ``node`` reads (including via EXISTS), first occurrence order."""
    names: dict[str, None] = {}
    for sub in walk(node):
        if isinstance(sub, Attribute | Exists):
            names.setdefault(sub.name)
    return tuple(names)
