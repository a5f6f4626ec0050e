"""Who is calling the gateway, and what they may do.

Without ``http.auth`` every caller is :data:`ANONYMOUS`, allowed everything (the gateway then
listens on loopback only, unless ``allow_unauthenticated`` says otherwise). With it, a request
needs ``Authorization: Bearer <token>`` naming a token of the tokens file or variable
(:mod:`cerouter.gateway.tokens`); the token's :class:`Principal` says what it may publish and read.

A browser's ``EventSource`` cannot set headers, so ``POST /auth/sse-token`` (bearer-authenticated)
hands out a **query token**, ``<name>.<expiry>.<mac>`` (the token's name in base64url, Unix
milliseconds, and the base64url HMAC-SHA256 of both under a random key made at start-up),
valid for ``http.sse.token_ttl`` and only as ``?token=`` of ``GET /events/stream`` and of the
live page (``GET /ui``, ``GET /ui/stats``): the only callers of
``authenticate(..., query_token=...)``. It is never a bearer: a leaked URL cannot publish, nor
mint itself a successor. A restart invalidates every query token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping

from cerouter.config.model import HttpAuth, SseSettings
from cerouter.gateway.principal import ANONYMOUS, Principal
from cerouter.gateway.tokens import TokenEntry, load_tokens, token_digest

__all__ = ["ANONYMOUS", "Authenticator", "Principal"]

MAX_CREDENTIAL = 4096
"""Longer credentials are refused unread (a real bearer or query token is under 300 bytes)."""

_QUERY_CONTEXT = b"cerouter-sse-query-token\x00"
_DEFAULT_TTL = SseSettings().token_ttl


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """Checks bearer tokens (header), and short-lived query tokens for EventSource.

    Built once per gateway: the tokens are read here (a :class:`~cerouter.errors.ConfigError`
    for a missing or broken file, a token too short...). ``ttl`` is the query tokens' lifetime;
    ``clock`` and ``environ`` are for tests. The clock is the wall clock, so a query token's
    expiry reads as Unix milliseconds (a monotonic one would tell the host's uptime).
    """

    def __init__(
        self,
        auth: HttpAuth,
        *,
        ttl: float = _DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.auth = auth
        self.ttl = ttl
        self._clock = clock
        self._entries: tuple[TokenEntry, ...] = (
            load_tokens(auth, environ) if auth.configured else ()
        )
        self._by_name = {e.principal.name: e.principal for e in self._entries}
        self._key = secrets.token_bytes(32)

    @property
    def required(self) -> bool:
        """Whether callers must present a token (``False``: everyone is :data:`ANONYMOUS`)."""
        return bool(self._entries)

    @property
    def principals(self) -> tuple[Principal, ...]:
        """Every configured caller, in file order."""
        return tuple(e.principal for e in self._entries)

    def authenticate(
        self, authorization: str | None, query_token: str | None = None
    ) -> Principal | None:
        """The caller, or ``None`` when credentials are required and missing or wrong.

        ``authorization`` is the ``Authorization`` header; ``query_token`` a ``?token=`` minted
        by :meth:`mint`, which only the event stream may pass.
        """
        if not self._entries:
            return ANONYMOUS
        principal = self._bearer(authorization) if authorization is not None else None
        if principal is None and query_token is not None:
            principal = self._query(query_token)
        return principal

    def _bearer(self, header: str) -> Principal | None:
        scheme, _, credentials = header.strip().partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_CREDENTIAL:
            return None
        digest = token_digest(token)
        found: Principal | None = None
        # Compare with every token, in constant time, without stopping at a match: how long
        # this takes says nothing about which token (if any) matched, nor how much of it.
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.principal
        return found

    def mint(self, principal: Principal) -> str:
        """A query token for ``principal``, valid for :attr:`ttl` seconds from now."""
        name = principal.name.encode()
        expiry = str(int((self._clock() + self.ttl) * 1000)).encode()
        mac = self._mac(name, expiry)
        return f"{_b64(name)}.{expiry.decode()}.{_b64(mac)}"

    def _query(self, token: str) -> Principal | None:
        if len(token) > MAX_CREDENTIAL:
            return None
        parts = token.split(".")
        if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
            return None
        try:
            name, mac = _unb64(parts[0]), _unb64(parts[2])
        except (binascii.Error, ValueError):
            return None
        if _b64(name) != parts[0] or _b64(mac) != parts[2]:
            return None  # one spelling per token (the decoder skips stray characters)
        expiry = parts[1].encode()
        if not hmac.compare_digest(mac, self._mac(name, expiry)):
            return None  # forged, or minted by another process (or before a restart)
        if int(expiry) <= self._clock() * 1000:
            return None  # expired
        return self._by_name.get(name.decode("utf-8", "replace"))

    def _mac(self, name: bytes, expiry: bytes) -> bytes:
        message = _QUERY_CONTEXT + name + b"\x00" + expiry
        return hmac.new(self._key, message, hashlib.sha256).digest()
