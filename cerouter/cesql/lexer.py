"""Split CESQL text into tokens, following the ANTLR lexer of CESQL v1.0.0.

- Whitespace is ``[ \\t\\r\\n]``; anything else unexpected is a parse error.
- Keywords (``AND OR XOR NOT LIKE IN EXISTS TRUE FALSE``) are case-insensitive.
- A word is ``[A-Za-z0-9_]+``; all digits make an integer, otherwise the parser decides
  whether it names an attribute (letters and digits) or a function (letters and ``_``).
- Signs are separate tokens; the parser glues a sign to the digits right after it where
  a value is expected, so ``-2147483648`` is one literal but ``4 -1`` is a subtraction.
- String literals use ``'`` or ``"``.  As in the ANTLR lexer a backslash takes the next
  character with it and a doubled quote stands for one quote.  Decoding turns ``\\'``
  (in ``'...'``), ``\\"`` (in ``"..."``) and doubled quotes into the quote; every other
  backslash pair is kept as written, so LIKE patterns still see ``\\%`` and ``\\_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from cerouter.errors import CesqlParseError

KEYWORDS: Final = frozenset({"AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE"})
_WHITESPACE: Final = frozenset(" \t\r\n")
_WORD_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TWO_CHAR_OPS: Final = frozenset({"!=", "<>", "<=", ">="})
_ONE_CHAR_OPS: Final = frozenset("=<>+-*/%(),")


class TokenKind(Enum):
    """What a token is."""

    INTEGER = "integer"
    STRING = "string"
    WORD = "word"
    KEYWORD = "keyword"
    OPERATOR = "operator"
    END = "end of input"


@dataclass(frozen=True, slots=True)
class Token:
    """One token; ``pos`` is the 0-based offset of its first character, ``end`` one past it.

    ``text`` is upper-cased for keywords and verbatim otherwise; ``value`` is the decoded
    content of a string literal or the (unsigned) value of an integer.
    """

    kind: TokenKind
    text: str
    pos: int
    end: int
    value: str | int | None = None

    @property
    def column(self) -> int:
        """The 1-based column of the token."""
        return self.pos + 1

    def describe(self) -> str:
        """The token as named in error messages."""
        match self.kind:
            case TokenKind.END:
                return "end of input"
            case TokenKind.KEYWORD:
                return f"keyword {self.text}"
            case TokenKind.INTEGER:
                return f"integer {self.text}"
            case TokenKind.STRING:
                return f"string {self.text}"
            case _:
                return f"'{self.text}'"


def tokenize(source: str) -> list[Token]:
    """Tokenize ``source``; the last token is always :attr:`TokenKind.END`."""
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        c = source[i]
        if c in _WHITESPACE:
            i += 1
        elif c in "'\"":
            token = _string(source, i)
            tokens.append(token)
            i = token.end
        elif c in _WORD_CHARS:
            j = i + 1
            while j < n and source[j] in _WORD_CHARS:
                j += 1
            text = source[i:j]
            if text.isdigit():
                tokens.append(Token(TokenKind.INTEGER, text, i, j, int(text)))
            elif text.upper() in KEYWORDS:
                tokens.append(Token(TokenKind.KEYWORD, text.upper(), i, j))
            else:
                tokens.append(Token(TokenKind.WORD, text, i, j))
            i = j
        elif source[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append(Token(TokenKind.OPERATOR, source[i : i + 2], i, i + 2))
            i += 2
        elif c in _ONE_CHAR_OPS:
            tokens.append(Token(TokenKind.OPERATOR, c, i, i + 1))
            i += 1
        else:
            hint = " (did you mean '!='?)" if c == "!" else ""
            raise CesqlParseError(
                f"unexpected character {c!r}{hint}", expression=source, column=i + 1
            )
    tokens.append(Token(TokenKind.END, "", n, n))
    return tokens


def _string(source: str, start: int) -> Token:
    quote = source[start]
    out: list[str] = []
    i = start + 1
    n = len(source)
    while i < n:
        c = source[i]
        if c == "\\" and i + 1 < n:
            nxt = source[i + 1]
            out.append(nxt if nxt == quote else c + nxt)
            i += 2
        elif c == quote:
            if i + 1 < n and source[i + 1] == quote:
                out.append(quote)
                i += 2
            else:
                end = i + 1
                return Token(TokenKind.STRING, source[start:end], start, end, "".join(out))
        else:
            out.append(c)
            i += 1
    raise CesqlParseError(
        f"unterminated string literal: no closing {quote} before the end of input",
        expression=source,
        column=start + 1,
    )
