"""What a compiled expression is, and what is known of a node before it is evaluated.

Shared by the compiler's modules (:mod:`cerouter.cesql.compiler` and
:mod:`cerouter.cesql.logic`), which is why it sits below both: an :data:`Evaluator` is what
compiling any node gives, a :data:`Compile` is how a compiler of one kind of node compiles
its operands, and :func:`static_type` tells when a cast can be dropped at compile time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cerouter.cesql.functions import resolve
from cerouter.cesql.nodes import Attribute, Binary, Call, Literal, Node, Unary
from cerouter.cesql.values import Type, Value, type_of

Attrs = Mapping[str, object]
Evaluator = Callable[[Attrs], Value]
"""A compiled (sub-)expression: attributes in, value out, errors raised as EvalFailure."""
Compile = Callable[[Node], Evaluator]
"""The compiler of whole subtrees, handed to the compilers of single node kinds."""


def static_type(node: Node) -> Type | None:
    """The type ``node`` always evaluates to, or ``None`` if only known at run time."""
    match node:
        case Literal(value=value):
            return type_of(value)
        case Attribute():
            return None
        case Unary(op="-") | Binary(op="+" | "-" | "*" | "/" | "%"):
            return Type.INTEGER
        case Call(name=name, args=args):
            spec = resolve(name, len(args))
            # A missing function returns false with its MissingFunctionError.
            return spec.returns if spec is not None else Type.BOOLEAN
        case _:
            return Type.BOOLEAN
