"""Compile the Boolean connectives: ``NOT``, and ``AND``/``OR``/``XOR`` alone or in chains.

The rules (operand order as in sdk-go): the left operand is cast to Boolean first; ``AND``
and ``OR`` do not evaluate the right operand when the left one decides; ``XOR`` evaluates
both, then casts.  When both operands are Boolean by their
:func:`~cerouter.cesql.compiled.static_type` the casts are left out of the closure.

A chain of ``AND``/``OR``/``XOR`` (``a OR b OR c``, a tree leaning left) compiles into one
loop over its operands rather than one closure per operator, so its length is limited by
nothing but memory; the parser bounds every other kind of nesting (``parser.MAX_DEPTH``).

The operands are compiled by the ``compile_node`` each function takes: the dispatcher of
:mod:`cerouter.cesql.compiler` passes itself, so this module needs nothing from it.  That
happens at compile time only; the closures built here call the operands' evaluators directly.
"""

from __future__ import annotations

from collections.abc import Callable

from cerouter.cesql.casts import to_bool
from cerouter.cesql.compiled import Attrs, Compile, Evaluator, static_type
from cerouter.cesql.nodes import LOGIC_OPS, Binary, Node, Unary, logic_chain
from cerouter.cesql.values import Type, Value

Step = Callable[[Value, Attrs], Value]
"""One link of an AND/OR/XOR chain: the value of its left side in, its own value out."""


def _bool(value: Value, origin: Node) -> bool:
    return value if value.__class__ is bool else to_bool(value, origin)


def compile_not(node: Unary, compile_node: Compile) -> Evaluator:
    """Compile ``NOT operand``."""
    operand = compile_node(node.operand)
    if static_type(node.operand) is Type.BOOLEAN:
        return lambda attrs: not operand(attrs)
    return lambda attrs: not _bool(operand(attrs), node)


def compile_logic(node: Binary, compile_node: Compile) -> Evaluator:
    """Compile an ``AND``, ``OR`` or ``XOR`` node, and the chain below it if there is one."""
    if isinstance(node.left, Binary) and node.left.op in LOGIC_OPS:
        return _logic_chain(node, compile_node)
    left = compile_node(node.left)
    right = compile_node(node.right)
    both_bool = static_type(node.left) is static_type(node.right) is Type.BOOLEAN
    if node.op == "AND":
        if both_bool:
            return lambda attrs: left(attrs) and right(attrs)
        return lambda attrs: _bool(left(attrs), node) and _bool(right(attrs), node)
    if node.op == "OR":
        if both_bool:
            return lambda attrs: left(attrs) or right(attrs)
        return lambda attrs: _bool(left(attrs), node) or _bool(right(attrs), node)

    def xor(attrs: Attrs) -> bool:
        # XOR is not short-circuited: both operands are evaluated before casting.
        a, b = left(attrs), right(attrs)
        return _bool(a, node) is not _bool(b, node)

    return xor


def compile_step(node: Binary, compile_node: Compile) -> Step:
    """Compile ``node.right`` into a link of its chain (``node.left`` is evaluated by the caller).

    The same semantics as :func:`compile_logic`: the left side is cast first; ``AND``/``OR`` do
    not evaluate the right side when the left one decides; ``XOR`` evaluates both, then casts.
    """
    right = compile_node(node.right)
    if node.op == "AND":
        return lambda left, attrs: _bool(left, node) and _bool(right(attrs), node)
    if node.op == "OR":
        return lambda left, attrs: _bool(left, node) or _bool(right(attrs), node)

    def xor(left: Value, attrs: Attrs) -> bool:
        b = right(attrs)
        return _bool(left, node) is not _bool(b, node)

    return xor


def _logic_chain(node: Binary, compile_node: Compile) -> Evaluator:
    chain = logic_chain(node)
    first = compile_node(chain[0].left)
    ops = {link.op for link in chain}
    if ops == {"AND"} or ops == {"OR"}:
        # One operator throughout: the first operand cast to false (AND) or true (OR) decides.
        operands = ((first, chain[0]), *((compile_node(link.right), link) for link in chain))
        if static_type(chain[0].left) is Type.BOOLEAN and all(
            static_type(link.right) is Type.BOOLEAN for link in chain
        ):
            evaluators = tuple(operand for operand, _ in operands)
            return _all_bool(evaluators) if ops == {"AND"} else _any_bool(evaluators)
        return _all_of(operands) if ops == {"AND"} else _any_of(operands)
    steps = tuple(compile_step(link, compile_node) for link in chain)

    def logic_loop(attrs: Attrs) -> Value:
        value = first(attrs)
        for step in steps:
            value = step(value, attrs)
        return value

    return logic_loop


# Plain loops, not all()/any() over a generator: that costs a generator frame per event.
def _all_bool(operands: tuple[Evaluator, ...]) -> Evaluator:
    def all_bool(attrs: Attrs) -> bool:
        for operand in operands:  # noqa: SIM110
            if not operand(attrs):
                return False
        return True

    return all_bool


def _any_bool(operands: tuple[Evaluator, ...]) -> Evaluator:
    def any_bool(attrs: Attrs) -> bool:
        for operand in operands:  # noqa: SIM110
            if operand(attrs):
                return True
        return False

    return any_bool


def _all_of(operands: tuple[tuple[Evaluator, Node], ...]) -> Evaluator:
    def all_of(attrs: Attrs) -> bool:
        for operand, origin in operands:
            value = operand(attrs)
            if value is not True and (value is False or not to_bool(value, origin)):
                return False
        return True

    return all_of


def _any_of(operands: tuple[tuple[Evaluator, Node], ...]) -> Evaluator:
    def any_of(attrs: Attrs) -> bool:
        for operand, origin in operands:
            value = operand(attrs)
            if value is True or (value is not False and to_bool(value, origin)):
                return True
        return False

    return any_of
