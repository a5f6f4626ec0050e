"""The gateway's bearer tokens: the tokens file (``http.auth.tokens_file``) and variable
(``http.auth.tokens_env``), read once at start-up.

The file::

    tokens:
      - name: shop                         # names the caller in logs and errors; unique
        token: 3q2-7wVzN8kYx1aQbC4dEf5gHi  # the secret: 16+ characters of A-Z a-z 0-9 -._~+/
      - name: billing
        sha256: 9f86d081884c7d65...        # or its SHA-256 (64 hex digits): no secret on disk
        publish:                           # omitted (or true): any event; false: none
          types: ["com.example.order.*"]   #   omitted: any type; []: none
          sources: ["/shop/*"]             #   omitted: any source; []: none
        subscribe: [orders]                # SSE feeds it may read; "*": all, ad-hoc filters
                                           # too; omitted: all; []: none

Patterns are globs in which only ``*`` is special (:mod:`cerouter.gateway.principal`). Make a
token with ``python -c 'import secrets; print(secrets.token_urlsafe(32))'`` and its digest with
``printf %s "$TOKEN" | sha256sum``.

The variable holds either the same YAML (it contains a ``:``; a flow mapping fits on one line:
``{tokens: [{name: ci, token: ...}]}``) or, simpler, unrestricted tokens as comma-separated
``name=token`` pairs (``ci=3q2-7w...,deploy=Zx9...``). With both a file and a variable, the tokens
of both count; names and tokens must be unique across them.

Every problem is a :class:`~cerouter.errors.ConfigError` naming the file (or ``$VARIABLE``), the
line and the key, and never quoting a secret.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cerouter.config.model import HttpAuth
from cerouter.config.yaml_tree import PathPart, YNode, format_path, load_yaml
from cerouter.errors import ConfigError
from cerouter.gateway.principal import Patterns, Principal
from cerouter.log import get_logger

log = get_logger("cerouter.gateway")

MIN_TOKEN_LENGTH = 16
"""The shortest secret accepted (16 random characters of the token alphabet: ~96 bits)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750's b64token: header-safe, no ',' or ':'
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_ENTRY_KEYS = ("name", "token", "sha256", "publish", "subscribe")
_PUBLISH_KEYS = ("types", "sources")
_MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))' makes one"

Where = tuple[PathPart, ...]


def token_digest(token: str) -> bytes:
    """The SHA-256 of a token as the client sent it (header text is latin-1 decoded bytes, so
    encoding it back gives the bytes on the wire; ``sha256sum`` of them matches)."""
    try:
        raw = token.encode("latin-1")
    except UnicodeEncodeError:
        raw = token.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).digest()


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One token: the caller it authenticates and the SHA-256 of its secret."""

    principal: Principal
    digest: bytes = field(repr=False)
    file: str = ""  # where it is declared: the tokens file, or $VARIABLE
    line: int | None = None
    path: str = ""

    @property
    def where(self) -> str:
        """``tokens.yaml:3`` (or ``$VARIABLE: entry 2``), for "already used at" messages."""
        if self.line is not None:
            return f"{self.file}:{self.line}"
        return f"{self.file}: {self.path}" if self.path else self.file


def load_tokens(auth: HttpAuth, environ: Mapping[str, str] | None = None) -> tuple[TokenEntry, ...]:
    """Every token ``auth`` points at; raises :class:`ConfigError` for the first problem."""
    env = os.environ if environ is None else environ
    entries: list[TokenEntry] = []
    if auth.tokens_file is not None:
        entries += _from_file(auth.tokens_file)
    if auth.tokens_env is not None:
        value = env.get(auth.tokens_env, "")
        if value.strip():
            entries += _from_variable(auth.tokens_env, value)
        elif auth.tokens_file is None:
            raise ConfigError(
                f"the environment variable {auth.tokens_env} is not set or empty; it must hold "
                "the gateway's tokens",
                path="http.auth.tokens_env",
            )
    _check_unique(entries)
    return tuple(entries)


def _from_file(path: Path) -> list[TokenEntry]:
    file = str(path)
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(
            f"cannot read the tokens file (http.auth.tokens_file): {exc.strerror}", file=file
        ) from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "the tokens file is accessible to other users; chmod 600 it",
            file=file,
            mode=oct(stat.S_IMODE(mode)),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=file) from None
    return _document(load_yaml(text, file), file)


def _from_variable(name: str, value: str) -> list[TokenEntry]:
    where = f"${name}"
    if ":" in value:
        return _document(load_yaml(value, where), where)
    entries: list[TokenEntry] = []
    for i, pair in enumerate(value.split(","), 1):
        pair = pair.strip()
        token_name, sep, token = pair.partition("=")
        if not sep or not token_name or not token:
            raise ConfigError(f"entry {i}: expected name=token (comma-separated)", file=where)
        problem = _name_problem(token_name) or _token_problem(token)
        if problem is not None:
            raise ConfigError(f"entry {i}: {problem}", file=where)
        principal = Principal(token_name)
        entries.append(TokenEntry(principal, token_digest(token), where, None, f"entry {i}"))
    return entries


def _document(root: YNode | None, file: str) -> list[TokenEntry]:
    if root is None or not root.is_mapping:
        line = root.line if root is not None else 1
        raise ConfigError("expected a mapping with a 'tokens' list", file=file, line=line)
    for key in root.value:
        if key != "tokens":
            raise _error(file, root.key_lines[key], (key,), "unknown key (expected 'tokens')")
    node = root.get("tokens")
    if node is None or not node.is_sequence:
        line = root.key_lines.get("tokens", root.line)
        raise _error(file, line, ("tokens",), "must be a list of tokens")
    if not node.children():
        raise _error(file, node.line, ("tokens",), "declares no tokens")
    return [_entry(item, file, ("tokens", i)) for i, item in enumerate(node.children())]


def _entry(item: YNode, file: str, at: Where) -> TokenEntry:
    if not item.is_mapping:
        raise _error(file, item.line, at, "must be a mapping with name and token (or sha256)")
    for key in item.value:
        if key not in _ENTRY_KEYS:
            expected = ", ".join(_ENTRY_KEYS)
            raise _error(
                file, item.key_lines[key], (*at, key), f"unknown key (expected {expected})"
            )
    name_node = item.get("name")
    if name_node is None:
        raise _error(file, item.line, at, "needs a 'name'")
    name = _text(name_node, file, (*at, "name"))
    if (problem := _name_problem(name)) is not None:
        raise _error(file, name_node.line, (*at, "name"), problem)
    token_node, sha_node = item.get("token"), item.get("sha256")
    if (token_node is None) == (sha_node is None):
        raise _error(file, item.line, at, "needs either 'token' or 'sha256' (one of them)")
    if token_node is not None:
        token = _text(token_node, file, (*at, "token"))
        if (problem := _token_problem(token)) is not None:
            raise _error(file, token_node.line, (*at, "token"), problem)
        digest = token_digest(token)
    else:
        assert sha_node is not None
        hex_digest = _text(sha_node, file, (*at, "sha256"))
        if _HEX_DIGEST.fullmatch(hex_digest) is None:
            raise _error(
                file, sha_node.line, (*at, "sha256"), "must be a SHA-256 digest (64 hex digits)"
            )
        digest = bytes.fromhex(hex_digest)
    types, sources = _publish(item.get("publish"), file, (*at, "publish"))
    reads = _subscribe(item.get("subscribe"), file, (*at, "subscribe"))
    principal = Principal(name, types, sources, reads)
    return TokenEntry(principal, digest, file, item.line, format_path(at))


def _publish(node: YNode | None, file: str, at: Where) -> tuple[Patterns | None, Patterns | None]:
    if node is None or node.value is True:
        return None, None
    if node.value is False:
        return Patterns(()), Patterns(())
    if not node.is_mapping:
        raise _error(file, node.line, at, "must be true, false or a mapping of types and sources")
    for key in node.value:
        if key not in _PUBLISH_KEYS:
            raise _error(
                file, node.key_lines[key], (*at, key), "unknown key (expected types, sources)"
            )
    out: list[Patterns | None] = []
    for key in _PUBLISH_KEYS:
        child = node.get(key)
        out.append(None if child is None else Patterns.of(*_strings(child, file, (*at, key))))
    return out[0], out[1]


def _subscribe(node: YNode | None, file: str, at: Where) -> frozenset[str] | None:
    if node is None:
        return None
    return frozenset(_strings(node, file, at))


def _strings(node: YNode, file: str, at: Where) -> list[str]:
    """A list of non-empty strings (or one string, as a list of one)."""
    items = node.children() if node.is_sequence else [node]
    out = []
    for i, child in enumerate(items):
        where = (*at, i) if node.is_sequence else at
        text = _text(child, file, where)
        if not text:
            raise _error(file, child.line, where, "must not be empty")
        out.append(text)
    return out


def _text(node: YNode, file: str, at: Where) -> str:
    # The source text, not the YAML value: a token of digits stays a string of digits.
    if node.is_mapping or node.is_sequence:
        raise _error(file, node.line, at, "must be a string")
    if node.value is None or node.text is None:
        raise _error(file, node.line, at, "is empty")
    return node.text


def _name_problem(name: str) -> str | None:
    if _NAME.fullmatch(name) is None:
        return (
            "a token name must be letters, digits, '.', '-' or '_' (starting with a letter or "
            "digit)"
        )
    return None


def _token_problem(token: str) -> str | None:
    # Never quote the token: this message ends up in logs.
    if not token:
        return "the token is empty"
    if _B64TOKEN.fullmatch(token) is None:
        return f"a token may hold only A-Z a-z 0-9 - . _ ~ + / (and trailing =); {_MAKE_ONE}"
    if len(token) < MIN_TOKEN_LENGTH:
        return (
            f"the token is {len(token)} characters long; use at least {MIN_TOKEN_LENGTH} "
            f"({_MAKE_ONE})"
        )
    return None


def _check_unique(entries: list[TokenEntry]) -> None:
    names: dict[str, TokenEntry] = {}
    digests: dict[bytes, TokenEntry] = {}
    for entry in entries:
        name = entry.principal.name
        if (first := names.get(name)) is not None:
            raise _duplicate(entry, f"token name '{name}' is already used at {first.where}")
        if (first := digests.get(entry.digest)) is not None:
            raise _duplicate(
                entry, f"the same token as '{first.principal.name}' ({first.where}); "
                "every caller needs a token of its own"
            )  # fmt: skip
        names[name] = entry
        digests[entry.digest] = entry


def _duplicate(entry: TokenEntry, message: str) -> ConfigError:
    return ConfigError(message, file=entry.file, line=entry.line, path=entry.path)


def _error(file: str, line: int, at: Where, message: str) -> ConfigError:
    return ConfigError(message, file=file, line=line, path=format_path(at))
