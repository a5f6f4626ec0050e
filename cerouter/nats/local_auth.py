"""The embedded server's token: how cerouter's own nats-server is locked, and how clients open it.

``cerouter run`` and ``cerouter server`` start the embedded nats-server with token
authentication (unless ``--no-auth``). The token is random, made on the first start and kept in
the JetStream store directory as ``auth.token`` (mode 0600: its owner alone can read it); later
starts reuse it.

Clients find it by one rule: when a connection carries no credentials of its own and every URL
names this machine (a loopback address or ``localhost``), the token is read from the store
directory, if that has one: ``--store-dir``, else ``CEROUTER_STORE_DIR``, else
``.cerouter/jetstream`` in the current directory (where ``cerouter run`` keeps it by default).
``publish``, ``sub``, ``worker``, ``run`` joining a server and :mod:`cerouter.client` follow it;
given credentials always win, and the token never goes to a server on another machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from cerouter.errors import ServerError

DEFAULT_STORE_DIR = Path(".cerouter/jetstream")
STORE_DIR_ENVVAR = "CEROUTER_STORE_DIR"
TOKEN_FILE = "auth.token"


def store_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """The store directory: ``given``, else ``$CEROUTER_STORE_DIR``, else the default."""
    if given is not None:
        return Path(given)
    return Path(os.environ.get(STORE_DIR_ENVVAR) or DEFAULT_STORE_DIR)


def token_path(store: Path) -> Path:
    """Where the token of the server whose store is ``store`` lives."""
    return store / TOKEN_FILE


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ServerError(f"cannot read the server token {path}: {detail}") from None
    token = text.strip()
    if not token:
        raise ServerError(f"the server token {path} is empty (delete it to make a new one)")
    return token


def ensure_token(store: Path) -> str:
    """The token of the server whose store is ``store``: made on first use (mode 0600), reused
    after. Raises :class:`ServerError` if the file is unreadable, empty or open to others."""
    store.mkdir(parents=True, exist_ok=True)
    path = token_path(store)
    token = _read(path)
    if token is None:
        # Written in full to a file of our own, then linked into place: another start racing
        # this one either sees no file or a complete one, and exactly one token wins.
        fresh = secrets.token_urlsafe(32)
        draft = store / f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(fresh + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
        finally:
            draft.unlink(missing_ok=True)
        token = _read(path)
        if token is None:  # removed under our feet
            raise ServerError(f"the server token {path} vanished while it was made; start again")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ServerError(
            f"the server token {path} can be read by other users (mode {mode:04o}): "
            f"`chmod 600 {path}`, or delete it to make a new one"
        )
    return token


def read_token(store: Path) -> str | None:
    """The token in ``store``, or ``None`` when it has none."""
    return _read(token_path(store))


def is_loopback(url: str) -> bool:
    """Whether ``url`` (``nats://host:port``, ``host:port``…) names this machine."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host = parts.hostname
    if host is None or host == "localhost":
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def has_credentials(url: str) -> bool:
    """Whether ``url`` carries credentials of its own (``nats://token@host``, ``user:pass@``)."""
    return "@" in urlsplit(url if "://" in url else f"nats://{url}").netloc


def local_token(urls: Sequence[str], store: str | os.PathLike[str] | None = None) -> str | None:
    """The token a connection without credentials to ``urls`` offers: the one in the store
    directory (see :func:`store_dir`) when every URL names this machine and carries no
    credentials; else ``None``."""
    if not urls or not all(is_loopback(u) and not has_credentials(u) for u in urls):
        return None
    return read_token(store_dir(store))
