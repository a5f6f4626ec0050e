"""Subject templates: the NATS subject a destination publishes to, rendered from the event.

A template is a NATS subject whose tokens may hold placeholders::

    orders.{type}          audit.{source}          {subject}          tenants.{tenant}.orders

A placeholder ``{name}`` is a CloudEvents attribute name (``[a-z0-9]+``), extensions included. The
dead-letter template also knows ``{reason}`` (:data:`cerouter.routing.model.DEADLETTER_REASONS`).
Literal text may use any printable ASCII except whitespace, ``*``, ``>``, ``{`` and ``}``; tokens
are never empty.

**Escaping rule.** An event must never be able to choose a wildcard, an empty token or another
subject tree, so every value put into a placeholder is made a safe token first
(:func:`escape_token`):

1. the value's canonical string is taken (``true``, ``42``, the string itself);
2. every character that is not an ASCII letter, digit, ``-`` or ``_`` becomes ``_`` (so ``.``,
   ``*``, ``>``, whitespace, ``$``, ``/``, ``:`` and all non-ASCII characters do);
3. an empty or missing value becomes ``_``;
4. a value longer than 100 characters keeps its first 91, then ``-`` and 8 hex digits of the
   SHA-256 of the original value, so a subject stays short and long values stay distinct.

So ``orders.{type}`` with type ``com.example.order.created`` renders
``orders.com_example_order_created``. The rule is not reversible (``a.b`` and ``a_b`` give the
same token); the event keeps its attributes, so nothing is lost. Rendered subjects have exactly
as many tokens as the template.

Escaped tokens are memoised (values repeat) for values of at most
:data:`~cerouter.bounded.MEMO_KEY_CHARS` (256) characters, at most :data:`TOKEN_MEMO_SIZE` of
them (then the memo starts over): with tokens of at most 100 characters, at most ~5.5 MB
whatever producers send, ~2.5 MB for ASCII values. Longer values are escaped afresh every time,
reading only their first 91 characters (and hashing the whole value).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cerouter.binding import canonical_string
from cerouter.bounded import MEMO_KEY_CHARS

MAX_TOKEN_VALUE = 100
"""The longest token a placeholder renders; longer values are shortened with a digest."""

MISSING_TOKEN = "_"
"""What a missing or empty attribute renders to."""

TOKEN_MEMO_SIZE = 4096
"""How many escaped tokens are kept before the memo starts over; see the module docstring."""

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_-]{1,100}")
_BAD_LITERAL = re.compile(r"[^\x21-\x7e]|[*>{}]")
_RENDERED_TOKEN = r"[A-Za-z0-9_-]+"


class SubjectError(ValueError):
    """A subject, subject pattern or template is malformed (the message says how)."""


_tokens: dict[str, str] = {}  # value -> token, for values of at most MEMO_KEY_CHARS characters


def escape_token(value: str) -> str:
    """Make an attribute value a safe NATS subject token (rule in the module docstring)."""
    token = _tokens.get(value)
    if token is None:
        token = _escape(value)
        if len(value) <= MEMO_KEY_CHARS:
            if len(_tokens) >= TOKEN_MEMO_SIZE:
                _tokens.clear()
            _tokens[value] = token
    return token


def _escape(value: str) -> str:
    if _SAFE_VALUE.fullmatch(value):
        return value
    if not value:
        return MISSING_TOKEN
    if len(value) <= MAX_TOKEN_VALUE:
        return _UNSAFE.sub("_", value)
    # One character in, one out: the first characters are all a shortened token keeps.
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_UNSAFE.sub('_', value[: MAX_TOKEN_VALUE - 9])}-{digest}"


def _token_of(value: Any) -> str:
    if value is None:
        return MISSING_TOKEN
    if value.__class__ is str:
        return escape_token(value)
    return escape_token(canonical_string(value))


@dataclass(frozen=True, slots=True)
class TemplateToken:
    """One token of a template: literal text pieces around placeholder names."""

    text: str  # the token as written, e.g. "x-{tenant}"
    names: tuple[str, ...]  # placeholder names in order (empty for a literal token)
    regex: re.Pattern[str]  # full-match regex of every token this can render

    @property
    def is_literal(self) -> bool:
        """``True`` when the token holds no placeholder."""
        return not self.names


@dataclass(frozen=True, slots=True)
class SubjectTemplate:
    """A compiled subject template; :meth:`render` fills it from an event's attributes."""

    source: str
    tokens: tuple[TemplateToken, ...] = field(compare=False, repr=False)
    _render: Callable[[Mapping[str, Any], Mapping[str, Any] | None], str] = field(
        compare=False, repr=False
    )

    @classmethod
    def parse(cls, text: str) -> SubjectTemplate:
        """Compile ``text``; raise :class:`SubjectError` when it is not a valid template."""
        if not isinstance(text, str) or not text:
            raise SubjectError("a subject template must be a non-empty string")
        tokens = tuple(_parse_token(token, text) for token in text.split("."))
        pieces: list[str | tuple[str]] = []
        for i, token in enumerate(tokens):
            if i:
                pieces.append(".")
            pos = 0
            for m in _PLACEHOLDER.finditer(token.text):
                pieces.append(token.text[pos : m.start()])
                pieces.append((m.group(1),))
                pos = m.end()
            pieces.append(token.text[pos:])
        return cls(text, tokens, _compile_renderer(pieces))

    @property
    def names(self) -> frozenset[str]:
        """Every placeholder name used."""
        return frozenset(n for token in self.tokens for n in token.names)

    @property
    def is_constant(self) -> bool:
        """``True`` when the template has no placeholder (it renders to itself)."""
        return all(token.is_literal for token in self.tokens)

    @property
    def wildcard_pattern(self) -> str:
        """The subject pattern covering every rendering: placeholder tokens become ``*``."""
        return ".".join(t.text if t.is_literal else "*" for t in self.tokens)

    def render(self, attributes: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
        """The subject for an event: placeholders filled from ``extra`` first, then attributes."""
        return self._render(attributes, extra)

    @property
    def renderer(self) -> Callable[[Mapping[str, Any], Mapping[str, Any] | None], str]:
        """The compiled ``(attributes, extra) -> subject`` function behind :meth:`render`."""
        return self._render

    def covered_by(self, pattern: str) -> bool:
        """``True`` when every subject this template can render matches ``pattern``."""
        ptoks = pattern.split(".")
        for i, ptok in enumerate(ptoks):
            if ptok == ">":
                return len(self.tokens) > i
            if i >= len(self.tokens):
                return False
            if ptok != "*" and not (self.tokens[i].is_literal and self.tokens[i].text == ptok):
                return False
        return len(ptoks) == len(self.tokens)

    def overlaps(self, pattern: str) -> bool:
        """``True`` when some subject this template can render matches ``pattern``."""
        ptoks = pattern.split(".")
        for i, ptok in enumerate(ptoks):
            if ptok == ">":
                return len(self.tokens) > i
            if i >= len(self.tokens):
                return False
            if ptok != "*" and not self.tokens[i].regex.fullmatch(ptok):
                return False
        return len(ptoks) == len(self.tokens)

    def __str__(self) -> str:
        return self.source


def _parse_token(token: str, template: str) -> TemplateToken:
    if not token:
        raise SubjectError(f"subject template {template!r} has an empty token")
    names: list[str] = []
    regex: list[str] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(token):
        regex.append(_literal(token[pos : m.start()], template))
        name = m.group(1)
        if not _ATTRIBUTE_NAME.fullmatch(name):
            raise SubjectError(
                f"subject template {template!r}: placeholder {{{name}}} must name an attribute "
                "(lowercase letters and digits)"
            )
        names.append(name)
        regex.append(_RENDERED_TOKEN)
        pos = m.end()
    regex.append(_literal(token[pos:], template))
    return TemplateToken(token, tuple(names), re.compile("".join(regex)))


def _literal(text: str, template: str) -> str:
    bad = _BAD_LITERAL.search(text)
    if bad is not None:
        char = bad.group()
        what = {"{": "an unmatched '{'", "}": "an unmatched '}'", "*": "'*'", ">": "'>'"}.get(
            char, f"{char!r}"
        )
        raise SubjectError(
            f"subject template {template!r} contains {what}; wildcards, whitespace and braces "
            "outside {placeholders} are not allowed"
        )
    return re.escape(text)


def _compile_renderer(
    pieces: list[str | tuple[str]],
) -> Callable[[Mapping[str, Any], Mapping[str, Any] | None], str]:
    merged: list[str | tuple[str]] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif piece != "":
            merged.append(piece)
    if all(isinstance(p, str) for p in merged):
        constant = "".join(p for p in merged if isinstance(p, str))

        def render_constant(attrs: Mapping[str, Any], extra: Mapping[str, Any] | None) -> str:
            return constant

        return render_constant

    names = [p[0] for p in merged if not isinstance(p, str)]
    if len(names) == 1:
        # The common shape, "prefix.{name}.suffix", specialised: no loop, no list.
        index = next(i for i, p in enumerate(merged) if not isinstance(p, str))
        head = "".join(p for p in merged[:index] if isinstance(p, str))
        tail = "".join(p for p in merged[index + 1 :] if isinstance(p, str))
        name = names[0]
        known = _tokens.get

        def render_one(attrs: Mapping[str, Any], extra: Mapping[str, Any] | None) -> str:
            value = extra[name] if extra is not None and name in extra else attrs.get(name)
            if value.__class__ is str:
                token = known(value)
                return head + (escape_token(value) if token is None else token) + tail
            return head + _token_of(value) + tail

        return render_one

    parts = tuple(merged)

    def render(attrs: Mapping[str, Any], extra: Mapping[str, Any] | None) -> str:
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
            else:
                name = part[0]
                if extra is not None and name in extra:
                    out.append(_token_of(extra[name]))
                else:
                    out.append(_token_of(attrs.get(name)))
        return "".join(out)

    return render


# --------------------------------------------------------------------------- subject patterns


def check_subject(text: object, *, wildcards: bool) -> str:
    """Validate a literal subject (``wildcards=False``) or a subscription pattern.

    Tokens are non-empty and free of whitespace; with wildcards, ``*`` is a whole token and ``>``
    only the last one. Returns the subject; raises :class:`SubjectError`.
    """
    if not isinstance(text, str) or not text:
        raise SubjectError("a subject must be a non-empty string")
    tokens = text.split(".")
    for i, token in enumerate(tokens):
        if not token:
            raise SubjectError(f"subject {text!r} has an empty token")
        if re.search(r"[^\x21-\x7e]", token):
            raise SubjectError(f"subject {text!r} contains whitespace or a non-ASCII character")
        if token in ("*", ">"):
            if not wildcards:
                raise SubjectError(f"subject {text!r} must not contain the wildcard {token!r}")
            if token == ">" and i != len(tokens) - 1:
                raise SubjectError(f"subject {text!r}: '>' may only be the last token")
        elif "*" in token or ">" in token:
            raise SubjectError(
                f"subject {text!r}: wildcards '*' and '>' must be whole tokens "
                f"(not part of {token!r})"
            )
    return text


def patterns_overlap(a: str, b: str) -> bool:
    """``True`` when some subject matches both subscription patterns."""
    at, bt = a.split("."), b.split(".")
    for i in range(max(len(at), len(bt))):
        x = at[i] if i < len(at) else None
        y = bt[i] if i < len(bt) else None
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != "*" and y != "*" and x != y:
            return False
    return True


def pattern_covers(general: str, specific: str) -> bool:
    """``True`` when every subject matching ``specific`` also matches ``general``."""
    gt, st = general.split("."), specific.split(".")
    for i, g in enumerate(gt):
        if g == ">":
            return len(st) > i
        if i >= len(st):
            return False
        s = st[i]
        if s == ">":
            return False
        if g != "*" and g != s:
            return False
    return len(gt) == len(st)


def subject_matches(pattern: str, subject: str) -> bool:
    """``True`` when a concrete subject matches a subscription pattern."""
    return pattern_covers(pattern, subject)
