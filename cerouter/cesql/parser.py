"""A precedence-climbing parser from CESQL text to the tree of :mod:`cerouter.cesql.nodes`.

Operator precedence is section 3.6 of CESQL v1.0.0 (see the binding powers in ``nodes``):
unary ``NOT``/``-`` bind tighter than ``LIKE``, which binds tighter than ``IN``, then
``* / %``, ``+ -``, comparisons, and finally ``AND``/``OR``/``XOR`` on one left-associative
level.  Every :class:`~cerouter.errors.CesqlParseError` names the 1-based column of the
offending token and what was expected there.  Columns count characters from the start of
the expression; in a multi-line expression a newline counts as one character.

**Nesting limit.**  An expression nests at most :data:`MAX_DEPTH` (100) levels deep, so that
parsing, compiling, evaluating and rendering it stay far from Python's recursion limit.  Each
parenthesis, ``NOT``, unary ``-``, function call, ``IN`` set, ``LIKE`` and comparison or
arithmetic operator adds a level to what it contains; a chain of ``AND``/``OR``/``XOR`` does
not, so a flat ``a = 1 OR a = 2 OR ...`` of any length parses (and is compiled into a loop,
see :mod:`cerouter.cesql.logic`).  A deeper expression is a :class:`CesqlParseError` at
the token that goes one level too deep.
"""

from __future__ import annotations

import re
from typing import Final

from cerouter.cesql.lexer import Token, TokenKind, tokenize
from cerouter.cesql.nodes import (
    ADDITIVE_OPS,
    COMPARISON_OPS,
    IN_BP,
    LIKE_BP,
    LOGIC_OPS,
    MULTIPLICATIVE_OPS,
    UNARY_BP,
    Attribute,
    Binary,
    Call,
    Exists,
    In,
    Like,
    Literal,
    Node,
    Unary,
    binary_bp,
)
from cerouter.cesql.values import in_int32
from cerouter.errors import CesqlParseError

_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9]+")
_FUNCTION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z_]*")
_BINARY_OPS: Final = COMPARISON_OPS | ADDITIVE_OPS | MULTIPLICATIVE_OPS
_EXPECTED_VALUE: Final = (
    "an expression (a literal, attribute, function call, NOT, -, EXISTS or '(')"
)

MAX_DEPTH: Final = 100
"""How deeply an expression may nest (see the module docstring for what counts)."""


def parse(source: str) -> Node:
    """Parse ``source`` into a syntax tree, raising :class:`CesqlParseError` if it is invalid."""
    return _Parser(source).parse()


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0  # expression() calls in progress: the nesting level at the next call
        # Node -> its nesting level (leaves 0), by id: every node is alive until parse() returns.
        self.levels: dict[int, int] = {}

    # -- token helpers -------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not TokenKind.END:
            self.index += 1
        return token

    def error(self, message: str, token: Token) -> CesqlParseError:
        return CesqlParseError(message, expression=self.source, column=token.column)

    def expected(self, what: str, token: Token) -> CesqlParseError:
        return self.error(f"expected {what}, found {token.describe()}", token)

    def is_op(self, token: Token, text: str) -> bool:
        return token.kind is TokenKind.OPERATOR and token.text == text

    def is_keyword(self, token: Token, text: str) -> bool:
        return token.kind is TokenKind.KEYWORD and token.text == text

    def level(self, node: Node) -> int:
        return self.levels.get(id(node), 0)

    def nested(self, node: Node, level: int, token: Token) -> Node:
        """Record ``node``'s nesting level; ``token`` is where it would go too deep."""
        if level > MAX_DEPTH:
            raise self.too_deep(token)
        self.levels[id(node)] = level
        return node

    def too_deep(self, token: Token) -> CesqlParseError:
        return self.error(
            f"the expression nests more than {MAX_DEPTH} levels deep (parentheses, NOT, "
            "functions and operators other than AND/OR/XOR each add a level)",
            token,
        )

    def expect_close(self, what: str) -> None:
        token = self.advance()
        if not self.is_op(token, ")"):
            raise self.expected(what, token)

    # -- grammar -------------------------------------------------------------------------

    def parse(self) -> Node:
        node = self.expression(0)
        token = self.peek()
        if token.kind is not TokenKind.END:
            if self.is_op(token, ")"):
                raise self.error("unbalanced ')': no '(' is open here", token)
            raise self.expected("an operator or the end of the expression", token)
        return node

    def expression(self, min_bp: int) -> Node:
        if self.depth > MAX_DEPTH:  # inside more than MAX_DEPTH parentheses, NOTs, ...
            # The token just read opened the level: '(', NOT, an operator, ',', ...
            raise self.too_deep(self.tokens[self.index - 1])
        self.depth += 1
        try:
            return self.operations(min_bp)
        finally:
            self.depth -= 1

    def operations(self, min_bp: int) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            negated = self.is_keyword(token, "NOT")
            keyword = self.peek(1) if negated else token
            if self.is_keyword(keyword, "LIKE"):
                if min_bp > LIKE_BP:
                    return left
                self.index += 2 if negated else 1
                like = Like(left, self.like_pattern(), negated)
                left = self.nested(like, self.level(left) + 1, keyword)
            elif self.is_keyword(keyword, "IN"):
                if min_bp > IN_BP:
                    return left
                self.index += 2 if negated else 1
                items = self.set_items()
                level = max(self.level(node) for node in (left, *items)) + 1
                left = self.nested(In(left, items, negated), level, keyword)
            elif negated:
                raise self.expected("LIKE or IN after NOT", keyword)
            elif self.is_binary_op(token):
                op = token.text
                bp = binary_bp(op)
                if bp < min_bp:
                    return left
                self.index += 1
                right = self.expression(bp + 1)
                if op in LOGIC_OPS:  # a chain of these is a loop, not a nesting
                    level = max(self.level(left), self.level(right) + 1)
                else:
                    level = max(self.level(left), self.level(right)) + 1
                left = self.nested(Binary(op, left, right), level, token)
            else:
                return left

    def is_binary_op(self, token: Token) -> bool:
        if token.kind is TokenKind.OPERATOR:
            return token.text in _BINARY_OPS
        return token.kind is TokenKind.KEYWORD and token.text in LOGIC_OPS

    def prefix(self) -> Node:
        token = self.advance()
        match token.kind:
            case TokenKind.INTEGER:
                return self.integer(token, token, 1)
            case TokenKind.STRING:
                assert isinstance(token.value, str)
                return Literal(token.value)
            case TokenKind.WORD:
                return self.word(token)
            case TokenKind.KEYWORD:
                return self.keyword(token)
            case TokenKind.OPERATOR:
                return self.operator(token)
            case _:
                raise self.expected(_EXPECTED_VALUE, token)

    def operator(self, token: Token) -> Node:
        nxt = self.peek()
        # As in the ANTLR lexer, a sign directly followed by digits is part of the literal.
        signed = nxt.kind is TokenKind.INTEGER and nxt.pos == token.end
        if token.text in ("+", "-") and signed:
            self.index += 1
            return self.integer(token, nxt, -1 if token.text == "-" else 1)
        if token.text == "-":
            operand = self.expression(UNARY_BP)
            return self.nested(Unary("-", operand), self.level(operand) + 1, token)
        if token.text == "(":
            inner = self.expression(0)
            self.expect_close(f"')' to close the '(' at column {token.column}")
            return inner
        if token.text == "+":
            raise self.error("'+' is not a unary operator (write the number without it)", token)
        raise self.expected(_EXPECTED_VALUE, token)

    def integer(self, first: Token, digits: Token, sign: int) -> Literal:
        assert isinstance(digits.value, int)
        value = sign * digits.value
        if not in_int32(value):
            text = self.source[first.pos : digits.end]
            raise self.error(
                f"integer literal {text} is outside the 32-bit range -2147483648..2147483647",
                first,
            )
        return Literal(value)

    def keyword(self, token: Token) -> Node:
        match token.text:
            case "TRUE":
                return Literal(True)
            case "FALSE":
                return Literal(False)
            case "NOT":
                operand = self.expression(UNARY_BP)
                return self.nested(Unary("NOT", operand), self.level(operand) + 1, token)
            case "EXISTS":
                name = self.advance()
                if name.kind is not TokenKind.WORD:
                    raise self.expected("an attribute name after EXISTS", name)
                return Exists(self.attribute_name(name))
            case _:
                raise self.expected(_EXPECTED_VALUE, token)

    def word(self, token: Token) -> Node:
        opener = self.peek()
        if not self.is_op(opener, "("):
            return Attribute(self.attribute_name(token))
        if not _FUNCTION_NAME.fullmatch(token.text):
            raise self.error(
                f"invalid function name '{token.text}': use letters and '_', "
                "starting with a letter",
                token,
            )
        self.index += 1
        args: list[Node] = []
        if self.is_op(self.peek(), ")"):
            self.index += 1
            return Call(token.text.upper(), ())
        while True:
            args.append(self.expression(0))
            if not self.is_op(self.peek(), ","):
                break
            self.index += 1
        self.expect_close(f"',' or ')' to close {token.text.upper()}( at column {token.column}")
        level = max(self.level(arg) for arg in args) + 1
        return self.nested(Call(token.text.upper(), tuple(args)), level, token)

    def attribute_name(self, token: Token) -> str:
        if not _ATTRIBUTE_NAME.fullmatch(token.text):
            raise self.error(
                f"invalid attribute name '{token.text}': attribute names use only "
                "letters and digits",
                token,
            )
        return token.text.lower()

    def like_pattern(self) -> str:
        token = self.advance()
        if token.kind is not TokenKind.STRING:
            raise self.expected("a string literal as the LIKE pattern", token)
        assert isinstance(token.value, str)
        return token.value

    def set_items(self) -> tuple[Node, ...]:
        opener = self.advance()
        if not self.is_op(opener, "("):
            raise self.expected("'(' to start the IN set", opener)
        if self.is_op(self.peek(), ")"):
            raise self.expected("at least one expression in the IN set", self.peek())
        items = [self.expression(0)]
        while self.is_op(self.peek(), ","):
            self.index += 1
            items.append(self.expression(0))
        self.expect_close(f"',' or ')' to close the IN set at column {opener.column}")
        return tuple(items)
