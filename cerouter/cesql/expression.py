"""The compiled expression object: the entry point for evaluating CESQL against events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from cerouter.cesql.compiler import compile_node, static_type
from cerouter.cesql.explain import explain
from cerouter.cesql.nodes import Node
from cerouter.cesql.parser import parse
from cerouter.cesql.result import EvalError, EvalFailure, Result
from cerouter.cesql.values import zero_value

_TRUE: Final = Result(True)
_FALSE: Final = Result(False)


class Expression:
    """A CESQL expression, parsed and compiled once, evaluated against many events.

    Instances are immutable and hold no per-event state, so one instance can be shared
    between tasks and threads.
    """

    __slots__ = ("_evaluator", "_source", "_tree", "_zero")

    def __init__(self, source: str, tree: Node) -> None:
        self._source = source
        self._tree = tree
        self._evaluator = compile_node(tree)
        self._zero = zero_value(static_type(tree))

    @property
    def source(self) -> str:
        """The text the expression was compiled from."""
        return self._source

    @property
    def tree(self) -> Node:
        """The syntax tree (see :mod:`cerouter.cesql.nodes`)."""
        return self._tree

    def evaluate(self, attrs: Mapping[str, object]) -> Result:
        """Evaluate against an event's context attributes.

        ``attrs`` maps attribute names to ``str``, ``int`` or ``bool`` values (timestamps
        and URIs as strings); other values are read as their string form and ``None``
        as absent.  Errors are reported in the result, never raised.
        """
        try:
            value = self._evaluator(attrs)
        except EvalFailure as failure:
            # The erroring node keeps its own value only if it is the whole expression;
            # otherwise the root, an ancestor, returns its zero value (digest E.5).
            if failure.origin is self._tree and failure.value is not None:
                value = failure.value
            else:
                value = self._zero
            return Result(value, (EvalError(failure.kind, failure.message),))
        # Results are immutable, so the two outcomes of a filter can be shared.
        if value is True:
            return _TRUE
        if value is False:
            return _FALSE
        return Result(value)

    def matches(self, attrs: Mapping[str, object]) -> bool:
        """Filter semantics (section 1.2): true only for a Boolean true without errors."""
        try:
            return self._evaluator(attrs) is True
        except EvalFailure:
            return False

    def explain(self, attrs: Mapping[str, object]) -> str:
        """One line saying why the expression does not match ``attrs`` (or that it does)."""
        return explain(self._tree, attrs)

    def __repr__(self) -> str:
        return f"Expression({self._source!r})"


def compile_expression(source: str) -> Expression:
    """Parse and compile CESQL ``source``.

    Raises :class:`~cerouter.errors.CesqlParseError` (with a 1-based ``column``) if the
    text is not a valid CESQL v1.0.0 expression.  Unknown functions are not parse errors:
    they evaluate to false with a missingFunction error, as the spec requires.
    """
    return Expression(source, parse(source))
