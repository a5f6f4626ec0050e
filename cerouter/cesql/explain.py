"""Say, in one line, why an expression did not match an event (for ``cerouter explain``).

The explanation names the smallest sub-expression responsible, rendered back as CESQL:

- an error: the node that raised it (for a missing attribute, the expression using the
  attribute), e.g. ``missing attribute 'myext' in myext = 'x'``;
- a false result: descend through ``AND`` into the operand that was false, and stop at
  anything else (both operands of a false ``OR`` are false, so the ``OR`` is the reason),
  e.g. ``INT(hop) < 5 was false (hop = '7')``;
- a non-Boolean result: the expression and its value.

Each line ends with the values of the attributes the named sub-expression reads.  CESQL is
pure and total, so a sub-expression evaluated on its own gives the value it has inside the
whole expression; this is a diagnostic path and simply compiles the sub-expressions again.
"""

from __future__ import annotations

from collections.abc import Mapping

from cerouter.cesql.compiler import compile_node, logic_step
from cerouter.cesql.nodes import (
    Attribute,
    Binary,
    Node,
    attribute_names,
    children,
    logic_chain,
    render,
    walk,
)
from cerouter.cesql.result import EvalFailure
from cerouter.cesql.values import Value, format_value, from_attribute


def explain(root: Node, attrs: Mapping[str, object]) -> str:
    """One human line on why ``root`` does (or does not) match ``attrs``."""
    value, failure = _run(root, attrs)
    if failure is not None:
        context = _context(root, failure.origin or root)
        return f"{failure.message} in {render(context)}{_bindings(context, attrs)}"
    if value is True:
        return f"matched: {render(root)} was true{_bindings(root, attrs)}"
    if value is not False:
        return (
            f"{render(root)} evaluated to {format_value(value)}, not a Boolean"
            f"{_bindings(root, attrs)}"
        )
    node = _smallest_false(root, attrs)
    return f"{render(node)} was false{_bindings(node, attrs)}"


def _run(node: Node, attrs: Mapping[str, object]) -> tuple[Value, EvalFailure | None]:
    try:
        return compile_node(node)(attrs), None
    except EvalFailure as failure:
        return False, failure


def _context(root: Node, origin: Node) -> Node:
    """The node to show for an error raised by ``origin``.

    A bare attribute says little, so a missing attribute is shown with its parent.
    """
    if not isinstance(origin, Attribute) or origin is root:
        return origin
    for node in walk(root):
        if any(child is origin for child in children(node)):
            return node
    return origin


def _smallest_false(node: Node, attrs: Mapping[str, object]) -> Node:
    # A false AND has a false left operand (then the right was never evaluated) or a true
    # left and a false right.  Operands that are merely cast to false stop here.  The left
    # operands along a chain (a AND b AND c) are evaluated once, in one pass.
    while isinstance(node, Binary) and node.op == "AND":
        chain = logic_chain(node)
        lefts = _left_values(chain, attrs)
        i = len(chain) - 1
        while chain[i].op == "AND" and lefts[i] is False and i > 0:
            i -= 1
        link = chain[i]
        if link.op != "AND":
            return link
        if lefts[i] is False:
            return link.left
        right, _ = _run(link.right, attrs)
        if right is not False:
            return link
        node = link.right
    return node


def _left_values(chain: list[Binary], attrs: Mapping[str, object]) -> list[Value]:
    """The value of each link's left side (an error counts as false), as evaluation goes."""
    value, _ = _run(chain[0].left, attrs)
    values = [value]
    for link in chain[:-1]:
        try:
            value = logic_step(link)(value, attrs)
        except EvalFailure:
            value = False
        values.append(value)
    return values


def _bindings(node: Node, attrs: Mapping[str, object]) -> str:
    shown = [
        f"{name} = {format_value(from_attribute(attrs[name]))}"
        for name in attribute_names(node)
        if attrs.get(name) is not None
    ]
    return f" ({', '.join(shown)})" if shown else ""
