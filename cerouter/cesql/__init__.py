"""CESQL v1.0.0 (CloudEvents SQL): parse once, evaluate against many events.

>>> expr = compile_expression("type LIKE 'com.example.%' AND INT(hop) < 5")
>>> expr.matches({"type": "com.example.order", "hop": "2"})
True
>>> expr.evaluate({"type": "com.example.order"}).errors[0].kind.value
'missingAttribute'

Modules: :mod:`.lexer` and :mod:`.parser` (text to the tree of :mod:`.nodes`),
:mod:`.values` (values, types, literal text), :mod:`.result` (results and errors),
:mod:`.casts` (section 3.7 casts), :mod:`.like` (LIKE patterns),
:mod:`.functions` (built-ins), :mod:`.compiler` (tree to closures; documents the
integer overflow rule) with :mod:`.logic` (NOT, AND, OR, XOR) and :mod:`.compiled` (the
evaluator type, static types), :mod:`.expression` (the public object), :mod:`.explain`.
"""

from cerouter.cesql.expression import Expression, compile_expression
from cerouter.cesql.result import CesqlErrorKind, EvalError, Result
from cerouter.cesql.values import Value

__all__ = ["CesqlErrorKind", "EvalError", "Expression", "Result", "Value", "compile_expression"]
