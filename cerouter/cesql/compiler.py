"""Turn a syntax tree into nested Python closures, once, when an expression is compiled.

Evaluating a compiled expression calls one closure per node: no parsing, no dispatch on
operator names, no pattern compilation per event.  Casts whose source type is known at
compile time are dropped, LIKE patterns become matchers, IN sets of literals become
pre-cast ``frozenset`` lookups, and the frequent ``attribute <op> literal`` shapes read the
attribute inline.

A closure returns the node's value or raises :class:`~cerouter.cesql.result.EvalFailure`
naming the node where the error arose; by the propagation rule every ancestor would return
its zero value, so nothing in between needs to catch (see :mod:`cerouter.cesql.expression`).

``NOT``, ``AND``, ``OR`` and ``XOR`` (and chains of them, compiled into one loop) are
compiled by :mod:`cerouter.cesql.logic`, to which :func:`compile_node` passes itself for the
operands; the evaluator type and :func:`static_type` are :mod:`cerouter.cesql.compiled`'s.

Operand order follows sdk-go: both operands are evaluated (left first) before either is
cast, so when both sides fail the left one's error wins.

**Integer overflow** (left open by CESQL v1.0.0): ``+``, ``-``, ``*``, ``/`` and unary ``-``
whose exact result falls outside the 32-bit range return the nearest 32-bit value
(saturation) together with a MathError -- the behaviour the TCK requires of
``ABS(-2147483648)``.  sdk-go wraps around silently instead; an error is safer in a filter,
since the event is rejected rather than matched on a meaningless value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Final

from cerouter.cesql.casts import cast, to_int, to_str
from cerouter.cesql.compiled import Attrs, Evaluator, static_type
from cerouter.cesql.functions import FunctionFailure, is_identity, resolve
from cerouter.cesql.like import compile_like
from cerouter.cesql.logic import Step, compile_logic, compile_not, compile_step
from cerouter.cesql.nodes import (
    COMPARISON_OPS,
    LOGIC_OPS,
    Attribute,
    Binary,
    Call,
    Exists,
    In,
    Like,
    Literal,
    Node,
    Unary,
)
from cerouter.cesql.result import CesqlErrorKind, EvalFailure
from cerouter.cesql.values import INT32_MAX, INT32_MIN, Type, Value, from_attribute, type_of

# static_type lives in compiled (logic needs it too) and stays importable from here.
__all__ = ["compile_node", "logic_step", "static_type"]

_PY_CLASS: Final[Mapping[Type, type]] = {Type.BOOLEAN: bool, Type.INTEGER: int, Type.STRING: str}
_ORDERING: Final[Mapping[str, Callable[[int, int], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_MATH = CesqlErrorKind.MATH


def compile_node(node: Node) -> Evaluator:
    """Compile ``node`` (and its subtree) into an evaluator."""
    match node:
        case Literal(value=value):
            return lambda attrs: value
        case Attribute():
            return _attribute(node)
        case Exists(name=name):
            return lambda attrs: attrs.get(name) is not None
        case Unary(op="NOT"):
            return compile_not(node, compile_node)
        case Unary():
            return _negate(node)
        case Binary(op=op) if op in LOGIC_OPS:
            return compile_logic(node, compile_node)
        case Binary(op="=" | "!=" | "<>"):
            return _equality(node)
        case Binary(op=op) if op in COMPARISON_OPS:
            return _ordering(node)
        case Binary():
            return _arithmetic(node)
        case Like():
            return _like(node)
        case In():
            return _in(node)
        case Call():
            return _call(node)


def logic_step(node: Binary) -> Step:
    """Compile ``node.right`` into a link of its chain (``node.left`` is evaluated by the caller).

    For :mod:`cerouter.cesql.explain`, which evaluates a chain link by link; see
    :func:`cerouter.cesql.logic.compile_step`.
    """
    return compile_step(node, compile_node)


def _missing(node: Attribute) -> EvalFailure:
    return EvalFailure(
        CesqlErrorKind.MISSING_ATTRIBUTE, f"missing attribute '{node.name}'", None, node
    )


def _attribute(node: Attribute) -> Evaluator:
    name = node.name

    def attribute(attrs: Attrs) -> Value:
        value = attrs.get(name)
        if value.__class__ is str:
            return value
        if value is None:
            raise _missing(node)
        return from_attribute(value)

    return attribute


def _int(value: Value, origin: Node) -> int:
    return value if value.__class__ is int else to_int(value, origin)


def _overflow(n: int, origin: Node) -> EvalFailure:
    clamped = INT32_MAX if n > INT32_MAX else INT32_MIN
    return EvalFailure(
        _MATH,
        f"integer overflow: {n} is outside the 32-bit range (clamped to {clamped})",
        clamped,
        origin,
    )


def _negate(node: Unary) -> Evaluator:
    operand = compile_node(node.operand)

    def negate(attrs: Attrs) -> int:
        n = _int(operand(attrs), node)
        if n == INT32_MIN:
            raise _overflow(-n, node)
        return -n

    return negate


def _equality(node: Binary) -> Evaluator:
    # Ambiguous overload: the right operand's type decides, the left one is cast to it.
    left = compile_node(node.left)
    negated = node.op != "="
    if isinstance(node.right, Literal):
        const = node.right.value
        cls = const.__class__
        target = type_of(const)
        if isinstance(node.left, Attribute):
            return _attribute_equals(node, node.left.name, const, negated)

        def equals_const(attrs: Attrs) -> bool:
            value = left(attrs)
            if value.__class__ is not cls:
                value = cast(value, target, node)
            return (value == const) is not negated

        return equals_const
    right = compile_node(node.right)

    def equals(attrs: Attrs) -> bool:
        a, b = left(attrs), right(attrs)
        if a.__class__ is not b.__class__:
            a = cast(a, type_of(b), node)
        return (a == b) is not negated

    return equals


def _attribute_equals(node: Binary, name: str, const: Value, negated: bool) -> Evaluator:
    # Attribute integers may lie outside the 32-bit range (from_attribute turns those into
    # strings), so only strings and booleans are compared as they come.
    cls = const.__class__ if not isinstance(const, int) or isinstance(const, bool) else None
    target = type_of(const)
    attribute = node.left
    assert isinstance(attribute, Attribute)

    def attribute_equals(attrs: Attrs) -> bool:
        raw = attrs.get(name)
        if raw.__class__ is cls:
            return (raw == const) is not negated
        if raw is None:
            raise _missing(attribute)
        value = cast(from_attribute(raw), target, node)
        return (value == const) is not negated

    return attribute_equals


def _ordering(node: Binary) -> Evaluator:
    left = compile_node(node.left)
    compare = _ORDERING[node.op]
    if isinstance(node.right, Literal):
        try:
            const = to_int(node.right.value, node)
        except EvalFailure:
            pass  # fails on every event: the generic path reports it in the right order
        else:
            return lambda attrs: compare(_int(left(attrs), node), const)
    right = compile_node(node.right)

    def ordering(attrs: Attrs) -> bool:
        a, b = left(attrs), right(attrs)
        return compare(_int(a, node), _int(b, node))

    return ordering


def _arithmetic(node: Binary) -> Evaluator:
    left = compile_node(node.left)
    right = compile_node(node.right)
    op = node.op
    if op in ("/", "%"):
        divide = op == "/"

        def division(attrs: Attrs) -> int:
            a, b = left(attrs), right(attrs)
            x, y = _int(a, node), _int(b, node)
            if y == 0:
                raise EvalFailure(
                    _MATH, "division by zero" if divide else "modulo by zero", 0, node
                )
            # Truncate toward zero; the remainder takes the sign of the dividend.
            if divide:
                q = abs(x) // abs(y)
                q = q if (x < 0) == (y < 0) else -q
                if q > INT32_MAX:
                    raise _overflow(q, node)
                return q
            r = abs(x) % abs(y)
            return r if x >= 0 else -r

        return division
    apply: Callable[[int, int], int] = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op]

    def arithmetic(attrs: Attrs) -> int:
        a, b = left(attrs), right(attrs)
        n = apply(_int(a, node), _int(b, node))
        if INT32_MIN <= n <= INT32_MAX:
            return n
        raise _overflow(n, node)

    return arithmetic


def _like(node: Like) -> Evaluator:
    match = compile_like(node.pattern)
    negated = node.negated
    if isinstance(node.operand, Attribute):
        attribute = node.operand
        name = attribute.name

        def attribute_like(attrs: Attrs) -> bool:
            raw = attrs.get(name)
            if raw.__class__ is not str:
                if raw is None:
                    raise _missing(attribute)
                raw = to_str(from_attribute(raw))
            return match(raw) is not negated

        return attribute_like
    operand = compile_node(node.operand)

    def like(attrs: Attrs) -> bool:
        value = operand(attrs)
        text = value if value.__class__ is str else to_str(value)
        return match(text) is not negated

    return like


def _in(node: In) -> Evaluator:
    operand = compile_node(node.operand)
    found = not node.negated
    if all(isinstance(item, Literal) for item in node.items):
        table = {_PY_CLASS[t]: _literal_set(node, t) for t in Type}

        def in_literals(attrs: Attrs) -> bool:
            value = operand(attrs)
            members, error = table[value.__class__]
            if value in members:
                return found
            if error is not None:
                # A fresh exception each time: a raised instance accumulates tracebacks.
                raise EvalFailure(CesqlErrorKind.CAST, error, None, node)
            return not found

        return in_literals
    items = tuple(compile_node(item) for item in node.items)

    def in_set(attrs: Attrs) -> bool:
        value = operand(attrs)
        target = type_of(value)
        for item in items:
            candidate = item(attrs)
            if candidate.__class__ is not value.__class__:
                candidate = cast(candidate, target, node)
            if candidate == value:
                return found
        return not found

    return in_set


def _literal_set(node: In, target: Type) -> tuple[frozenset[Value], str | None]:
    """The set items cast to ``target`` up to the first failing cast, and its message.

    Items are compared in order and the first match wins, so a value found before a
    failing item matches while any other value gets the CastError.
    """
    members: list[Value] = []
    for item in node.items:
        assert isinstance(item, Literal)
        try:
            members.append(cast(item.value, target, node))
        except EvalFailure as failure:
            return frozenset(members), failure.message
    return frozenset(members), None


def _call(node: Call) -> Evaluator:
    arity = len(node.args)
    spec = resolve(node.name, arity)
    if spec is None:
        message = f"no function {node.name} taking {arity} argument{'s' * (arity != 1)}"

        def missing_function(attrs: Attrs) -> Value:
            raise EvalFailure(CesqlErrorKind.MISSING_FUNCTION, message, False, node)

        return missing_function
    args = tuple(compile_node(arg) for arg in node.args)
    targets = tuple(spec.param_type(i) for i in range(arity))
    classes = tuple(_PY_CLASS[t] for t in targets)
    impl = spec.impl
    if arity == 1:
        arg, target, cls = args[0], targets[0], classes[0]
        if is_identity(spec):
            # INT, BOOL and STRING: the argument cast is the whole function.
            def cast_function(attrs: Attrs) -> Value:
                value = arg(attrs)
                return value if value.__class__ is cls else cast(value, target, node)

            return cast_function

        def call_one(attrs: Attrs) -> Value:
            value = arg(attrs)
            if value.__class__ is not cls:
                value = cast(value, target, node)
            try:
                return impl(value)
            except FunctionFailure as failure:
                raise EvalFailure(failure.kind, failure.message, failure.value, node) from None

        return call_one

    def call(attrs: Attrs) -> Value:
        values = [arg(attrs) for arg in args]
        cast_values = [
            v if v.__class__ is c else cast(v, t, node)
            for v, c, t in zip(values, classes, targets, strict=True)
        ]
        try:
            return impl(*cast_values)
        except FunctionFailure as failure:
            raise EvalFailure(failure.kind, failure.message, failure.value, node) from None

    return call
