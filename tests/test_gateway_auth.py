"""Gateway authentication: the tokens file and variable, bearer checks, query tokens for SSE.

Unit tests for the pieces (patterns, principals, the tokens format and its errors, constant-time
lookup, query-token minting with an injected clock), then end to end over real HTTP on loopback
against a router on a real nats-server: 401 and 403 per token, the sse-token endpoint, and the
start-up rule (no auth beyond loopback) through the config and the CLI.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from nats.aio.client import Client
from structlog.testing import capture_logs

from cerouter.config.load import parse_config
from cerouter.config.model import HttpAuth, HttpSettings, Subscription
from cerouter.errors import ConfigError
from cerouter.gateway import authenticator as gateway_authenticator
from cerouter.gateway.auth import MAX_CREDENTIAL, Authenticator
from cerouter.gateway.principal import ANONYMOUS, Glob, Patterns, Principal
from cerouter.service.serve import Service
from tests.cli_helpers import DEAD_URL
from tests.helpers import run_cli
from tests.routerkit import Inbox, event, eventually, running_gateway, write_routes

SHOP = "shop-secret-0123456789"
ADMIN = "admin-secret-0123456789"
READER = "reader-secret-0123456789"
DIGESTED = "digested-secret-0123456789"

TOKENS = f"""\
tokens:
  - name: admin
    token: {ADMIN}
  - name: shop
    token: {SHOP}
    publish:
      types: ["com.example.thing", "com.example.order.*"]
      sources: ["/shop/*"]
    subscribe: [orders]
  - name: reader
    token: {READER}
    publish: false
    subscribe: ["*"]
  - name: digested
    sha256: {hashlib.sha256(DIGESTED.encode()).hexdigest()}
"""


def write_tokens(directory: Path, text: str, name: str = "tokens.yaml") -> Path:
    """A tokens file only its owner may read (as the docs say to keep it)."""
    path = directory / name
    path.write_text(textwrap.dedent(text))
    path.chmod(0o600)
    return path


def authenticator(tmp_path: Path, text: str = TOKENS, **kw: Any) -> Authenticator:
    return Authenticator(HttpAuth(tokens_file=write_tokens(tmp_path, text)), **kw)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- patterns and principals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("com.example.order.*", "com.example.order.created", True),
        ("com.example.order.*", "com.example.order.", True),
        ("com.example.order.*", "com.example.orders", False),
        ("com.example.order.*", "xcom.example.order.created", False),
        ("/shop/*", "/shop/eu/1", True),  # '*' crosses '/'
        ("*", "", True),
        ("a*b*c", "abc", True),
        ("a*b*c", "aXbYbZc", True),
        ("a*b*c", "acb", False),
        ("ab*ba", "aba", False),  # prefix and suffix may not overlap
        ("exact", "exact", True),
        ("exact", "Exact", False),  # case-sensitive
        ("https://[::1]/?x", "https://[::1]/?x", True),  # '[' and '?' are literal
        ("https://[::1]/?x", "https://:/ax", False),
    ],
)
def test_glob(pattern: str, text: str, expected: bool) -> None:
    assert Glob(pattern).matches(text) is expected


def test_glob_is_linear_on_hostile_input() -> None:
    # A backtracking matcher takes ages here; leftmost matching of the parts does not.
    text = "a" * 200_000
    started = time.perf_counter()
    assert not Glob("*a*a*a*a*a*a*a*a*b").matches(text)
    assert time.perf_counter() - started < 1.0


def test_principal_semantics() -> None:
    shop = Principal(
        "shop", Patterns.of("com.example.order.*"), Patterns.of("/shop/*"), frozenset({"orders"})
    )
    assert shop.restricted
    assert shop.may_publish({"type": "com.example.order.created", "source": "/shop/1"})
    assert not shop.may_publish({"type": "com.example.user.created", "source": "/shop/1"})
    assert not shop.may_publish({"type": "com.example.order.created", "source": "/other"})
    assert not shop.may_publish({"source": "/shop/1"})  # no type: cannot be shown allowed
    assert not shop.may_publish({"type": 7, "source": "/shop/1"})
    assert shop.may_read("orders")
    assert not shop.may_read("payments")
    assert not shop.may_read(None)  # ad-hoc filters need "*"
    types_only = Principal("t", types=Patterns.of("x"))
    assert types_only.may_publish({"type": "x", "source": "/anything"})
    nothing = Principal("n", Patterns(()), Patterns(()), frozenset())
    assert not nothing.may_publish({"type": "x", "source": "/y"})
    assert not nothing.may_read("orders")
    everything = Principal("all", reads=frozenset({"*"}))
    assert everything.may_read(None)
    assert everything.may_read("orders")
    assert not ANONYMOUS.restricted
    assert ANONYMOUS.may_publish({})
    assert ANONYMOUS.may_read(None)


# -- the tokens file ----------------------------------------------------------------------------


def test_tokens_file_is_read_with_restrictions(tmp_path: Path) -> None:
    auth = authenticator(tmp_path)
    assert auth.required
    names = [p.name for p in auth.principals]
    assert names == ["admin", "shop", "reader", "digested"]
    shop = auth.authenticate(f"Bearer {SHOP}")
    assert shop is not None
    assert shop.name == "shop"
    assert shop.restricted
    assert shop.may_read("orders")
    assert not shop.may_read(None)
    reader = auth.authenticate(f"Bearer {READER}")
    assert reader is not None
    assert not reader.may_publish({"type": "x", "source": "/y"})
    assert reader.may_read(None)
    admin = auth.authenticate(f"Bearer {ADMIN}")
    assert admin is not None
    assert not admin.restricted
    assert admin.may_read(None)


def test_sha256_entries_hold_no_secret_but_authenticate_it(tmp_path: Path) -> None:
    auth = authenticator(tmp_path)
    principal = auth.authenticate(f"Bearer {DIGESTED}")
    assert principal is not None
    assert principal.name == "digested"
    assert DIGESTED not in (tmp_path / "tokens.yaml").read_text()


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        f"Basic {SHOP}",
        f"Bearer {SHOP}x",
        f"Bearer {SHOP[:-1]}",
        f"Token {SHOP}",
        "Bearer " + "a" * (MAX_CREDENTIAL + 1),
        "Bearer \x00\xff\u20ac",
    ],
)
def test_wrong_credentials_are_no_one(tmp_path: Path, header: str) -> None:
    assert authenticator(tmp_path).authenticate(header) is None


def test_bearer_scheme_is_case_insensitive_and_spaces_are_trimmed(tmp_path: Path) -> None:
    auth = authenticator(tmp_path)
    for header in (f"bearer {SHOP}", f"BEARER {SHOP}", f"  Bearer   {SHOP}  "):
        principal = auth.authenticate(header)
        assert principal is not None
        assert principal.name == "shop"


def test_lookup_compares_every_token_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Which token matched, and whether one did, must not change how much work is done: every
    # entry is compared with hmac.compare_digest over SHA-256 digests, with no early exit.
    auth = authenticator(tmp_path)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    for header in (f"Bearer {ADMIN}", f"Bearer {DIGESTED}", "Bearer nobody-knows-this-one"):
        calls.clear()
        auth.authenticate(header)
        assert len(calls) == 4
        assert all(len(a) == len(b) == 32 for a, b in calls)  # digests, not the secrets


def test_no_auth_configured_means_anonymous() -> None:
    auth = Authenticator(HttpAuth())
    assert not auth.required
    assert auth.authenticate(None) is ANONYMOUS
    assert auth.authenticate("Bearer whatever") is ANONYMOUS


def test_an_open_tokens_file_is_warned_about(tmp_path: Path) -> None:
    path = write_tokens(tmp_path, TOKENS)
    path.chmod(0o644)
    with capture_logs() as logs:
        Authenticator(HttpAuth(tokens_file=path))
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert warned
    assert "chmod 600" in warned[0]["event"]
    assert warned[0]["file"] == str(path)
    path.chmod(0o600)
    with capture_logs() as logs:
        Authenticator(HttpAuth(tokens_file=path))
    assert not [e for e in logs if e["log_level"] == "warning"]


def test_reading_an_undeclared_subscription_is_warned_about(tmp_path: Path) -> None:
    settings = HttpSettings(
        auth=HttpAuth(tokens_file=write_tokens(tmp_path, TOKENS)),
        subscriptions=(Subscription("orders", None, "orders.>"),),
    )
    with capture_logs() as logs:
        gateway_authenticator(settings)
    assert not [e for e in logs if e["log_level"] == "warning"]  # shop reads orders; "*" is fine
    settings = replace(settings, subscriptions=(Subscription("payments", None, "payments.>"),))
    with capture_logs() as logs:
        gateway_authenticator(settings)
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert [(e["token"], e["subscription"]) for e in warned] == [("shop", "orders")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tokens: [", "tokens.yaml:1: YAML syntax error"),
        ("", "tokens.yaml:1: expected a mapping with a 'tokens' list"),
        ("- a\n", "tokens.yaml:1: expected a mapping"),
        ("tokens: []\n", "tokens.yaml:1: tokens: declares no tokens"),
        ("tokens: {}\n", "tokens.yaml:1: tokens: must be a list of tokens"),
        ("tokns: []\n", "tokens.yaml:1: tokns: unknown key (expected 'tokens')"),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n  - name: a\n    token: {ADMIN}\n",
            "tokens.yaml:4: tokens[1]: token name 'a' is already used at ",
        ),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n  - name: b\n    token: {SHOP}\n",
            "tokens.yaml:4: tokens[1]: the same token as 'a' (",
        ),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n  - name: b\n"
            f"    sha256: {hashlib.sha256(SHOP.encode()).hexdigest()}\n",
            "tokens.yaml:4: tokens[1]: the same token as 'a'",
        ),
        ("tokens:\n  - name: a\n    token:\n", "tokens.yaml:3: tokens[0].token: is empty"),
        ('tokens:\n  - name: a\n    token: ""\n', "tokens.yaml:3: tokens[0].token: the token is"),
        (
            "tokens:\n  - name: a\n    token: short\n",
            "tokens.yaml:3: tokens[0].token: the token is 5 characters long; use at least 16",
        ),
        (
            "tokens:\n  - name: a\n    token: has spaces in it, sadly\n",
            "tokens.yaml:3: tokens[0].token: a token may hold only",
        ),
        ("tokens:\n  - name: a\n", "tokens.yaml:2: tokens[0]: needs either 'token' or 'sha256'"),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n    sha256: {'0' * 64}\n",
            "tokens.yaml:2: tokens[0]: needs either 'token' or 'sha256' (one of them)",
        ),
        (
            "tokens:\n  - name: a\n    sha256: abc\n",
            "tokens.yaml:3: tokens[0].sha256: must be a SHA-256 digest (64 hex digits)",
        ),
        (f"tokens:\n  - token: {SHOP}\n", "tokens.yaml:2: tokens[0]: needs a 'name'"),
        (
            f"tokens:\n  - name: 'a b'\n    token: {SHOP}\n",
            "tokens.yaml:2: tokens[0].name: a token name must be",
        ),
        (
            f"tokens:\n  - name: a\n    tokn: {SHOP}\n",
            "tokens.yaml:3: tokens[0].tokn: unknown key (expected name, token, sha256",
        ),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n    publish: {{type: [x]}}\n",
            "tokens.yaml:4: tokens[0].publish.type: unknown key (expected types, sources)",
        ),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n    publish: [x]\n",
            "tokens.yaml:4: tokens[0].publish: must be true, false or a mapping",
        ),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n    subscribe: [orders, '']\n",
            "tokens.yaml:4: tokens[0].subscribe[1]: must not be empty",
        ),
        (
            f"tokens:\n  - name: a\n    token: {SHOP}\n    subscribe: [[x]]\n",
            "tokens.yaml:4: tokens[0].subscribe[0]: must be a string",
        ),
        ("tokens:\n  - just-a-string\n", "tokens.yaml:2: tokens[0]: must be a mapping"),
    ],
)
def test_tokens_file_errors_are_located(tmp_path: Path, text: str, expected: str) -> None:
    path = write_tokens(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        Authenticator(HttpAuth(tokens_file=path))
    message = str(caught.value)
    assert message.startswith(str(path.parent) + os.sep + expected), message
    assert "\n" not in message
    for secret in (SHOP, ADMIN):  # never quoted in an error
        assert secret not in message


def test_a_missing_tokens_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read the tokens file .*No such"):
        Authenticator(HttpAuth(tokens_file=tmp_path / "missing.yaml"))


def test_tokens_from_a_variable_simple_format(tmp_path: Path) -> None:
    auth = Authenticator(
        HttpAuth(tokens_env="GW_TOKENS"), environ={"GW_TOKENS": f" ci={SHOP} , deploy={ADMIN}"}
    )
    assert [p.name for p in auth.principals] == ["ci", "deploy"]
    principal = auth.authenticate(f"Bearer {ADMIN}")
    assert principal is not None
    assert principal.name == "deploy"
    assert not principal.restricted


def test_tokens_from_a_variable_yaml_format(tmp_path: Path) -> None:
    value = f"{{tokens: [{{name: ci, token: {SHOP}, publish: {{types: [a.*]}}}}]}}"
    auth = Authenticator(HttpAuth(tokens_env="GW_TOKENS"), environ={"GW_TOKENS": value})
    principal = auth.authenticate(f"Bearer {SHOP}")
    assert principal is not None
    assert principal.restricted
    assert principal.may_publish({"type": "a.b", "source": "/"})


def test_tokens_from_a_file_and_a_variable_together(tmp_path: Path) -> None:
    auth = Authenticator(
        HttpAuth(tokens_file=write_tokens(tmp_path, TOKENS), tokens_env="GW_TOKENS"),
        environ={"GW_TOKENS": "ci=ci-secret-0123456789"},
    )
    assert len(auth.principals) == 5
    # The variable may be unset when a file is there too ...
    auth = Authenticator(
        HttpAuth(tokens_file=tmp_path / "tokens.yaml", tokens_env="GW_TOKENS"), environ={}
    )
    assert len(auth.principals) == 4
    # ... but names and tokens are unique across both.
    with pytest.raises(ConfigError, match=r"^\$GW_TOKENS: entry 1: token name 'shop' is already"):
        Authenticator(
            HttpAuth(tokens_file=tmp_path / "tokens.yaml", tokens_env="GW_TOKENS"),
            environ={"GW_TOKENS": "shop=another-secret-0123456789"},
        )
    with pytest.raises(ConfigError, match=r"^\$GW_TOKENS: entry 1: the same token as 'admin'"):
        Authenticator(
            HttpAuth(tokens_file=tmp_path / "tokens.yaml", tokens_env="GW_TOKENS"),
            environ={"GW_TOKENS": f"root={ADMIN}"},
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "http.auth.tokens_env: the environment variable GW_TOKENS is not set or empty"),
        (None, "http.auth.tokens_env: the environment variable GW_TOKENS is not set or empty"),
        ("ci", "$GW_TOKENS: entry 1: expected name=token"),
        (f"ci={SHOP},", "$GW_TOKENS: entry 2: expected name=token"),
        ("ci=short", "$GW_TOKENS: entry 1: the token is 5 characters long"),
        (f"c i={SHOP}", "$GW_TOKENS: entry 1: a token name must be"),
        ("{tokens: [", "$GW_TOKENS:1: YAML syntax error"),
        ("{tokens: [{name: a, token: short}]}", "$GW_TOKENS:1: tokens[0].token: the token is 5"),
    ],
)
def test_token_variable_errors(value: str | None, expected: str) -> None:
    environ = {} if value is None else {"GW_TOKENS": value}
    with pytest.raises(ConfigError) as caught:
        Authenticator(HttpAuth(tokens_env="GW_TOKENS"), environ=environ)
    assert str(caught.value).startswith(expected), str(caught.value)


# -- query tokens -------------------------------------------------------------------------------


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_query_tokens_expire(tmp_path: Path) -> None:
    clock = Clock()
    auth = authenticator(tmp_path, ttl=60.0, clock=clock)
    shop = auth.authenticate(f"Bearer {SHOP}")
    assert shop is not None
    token = auth.mint(shop)
    assert auth.authenticate(None, query_token=token) == shop
    clock.now += 59.9
    assert auth.authenticate(None, query_token=token) == shop
    clock.now += 0.2
    assert auth.authenticate(None, query_token=token) is None


def test_query_tokens_are_not_bearers_and_bearers_are_not_query_tokens(tmp_path: Path) -> None:
    auth = authenticator(tmp_path)
    shop = auth.authenticate(f"Bearer {SHOP}")
    assert shop is not None
    token = auth.mint(shop)
    assert auth.authenticate(f"Bearer {token}") is None
    assert auth.authenticate(None, query_token=SHOP) is None
    assert auth.authenticate(None) is None
    # The stream passes both; a valid one of either kind is enough.
    assert auth.authenticate("Basic dXNlcjpwYXNz", query_token=token) == shop
    assert auth.authenticate(f"Bearer {ADMIN}", query_token="junk") is not None


ARABIC_ONE = "\u0661"


def _forgeries(token: str) -> list[str]:
    name, expiry, mac = token.split(".")
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    later = str(int(expiry) + 10_000_000)
    admin = "YWRtaW4"  # base64url("admin") without padding
    return [
        f"{name}.{expiry}.{flipped}",  # a MAC that is not ours
        f"{name}.{later}.{mac}",  # a later expiry under the old MAC
        f"{admin}.{expiry}.{mac}",  # another name under the old MAC
        f"{name}.{expiry}.{mac}.x",
        f"{name}.{expiry}",
        f"{name}!.{expiry}.{mac}",  # stray characters the base64 decoder would skip
        f"{name}.+{expiry}.{mac}",
        f"{name}.{expiry.replace('1', ARABIC_ONE)}.{mac}",  # a digit, but not ASCII
        "",
        "." * 10,
        "x" * (MAX_CREDENTIAL + 1),
    ]


def test_forged_query_tokens_are_refused(tmp_path: Path) -> None:
    auth = authenticator(tmp_path)
    shop = auth.authenticate(f"Bearer {SHOP}")
    assert shop is not None
    token = auth.mint(shop)
    for forged in _forgeries(token):
        assert auth.authenticate(None, query_token=forged) is None, forged
    # Another process (or this one after a restart) has another key.
    other = Authenticator(HttpAuth(tokens_file=tmp_path / "tokens.yaml"))
    assert other.authenticate(None, query_token=token) is None


# -- end to end ---------------------------------------------------------------------------------

ROUTES = """\
http:
  listen: 127.0.0.1:0
  batch: {max_events: 10}
  auth: {tokens_file: tokens.yaml}
  sse: {token_ttl: %s}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {subject: "things.out"}
  - name: orders
    match: {prefix: {type: com.example.order.}}
    to: {subject: "orders.out"}
"""


@pytest.fixture
def gateway_dir(tmp_path: Path) -> Path:
    write_routes(tmp_path, ROUTES % "5m")
    write_tokens(tmp_path, TOKENS)
    return tmp_path


@pytest.fixture
async def gateway(nats_url: str, gateway_dir: Path) -> AsyncIterator[Service]:
    async with running_gateway(nats_url, gateway_dir / "routes.yaml") as service:
        yield service


@pytest.fixture
async def client(gateway: Service) -> AsyncIterator[httpx.AsyncClient]:
    assert gateway.gateway is not None
    async with httpx.AsyncClient(base_url=gateway.gateway.url, timeout=10.0) as http:
        yield http


def ce(type_: str = "com.example.thing", source: str = "/shop/1", id_: str = "1") -> bytes:
    return orjson.dumps(event(type_, id_, source=source, data={"n": 1}))


STRUCTURED = {"Content-Type": "application/cloudevents+json"}


@pytest.mark.nats
async def test_publishing_needs_a_known_bearer(client: httpx.AsyncClient) -> None:
    for headers in ({}, bearer("not-a-token-we-know-at-all"), {"Authorization": f"Basic {SHOP}"}):
        response = await client.post("/events", content=ce(), headers={**STRUCTURED, **headers})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401
    response = await client.post("/events", content=ce(), headers={**STRUCTURED, **bearer(ADMIN)})
    assert response.status_code == 202, response.text


@pytest.mark.nats
async def test_each_token_publishes_only_what_it_may(
    client: httpx.AsyncClient, nc: Client, gateway: Service
) -> None:
    inbox = await Inbox.on(nc, "things.out")

    async def post(token: str, body: bytes) -> httpx.Response:
        return await client.post("/events", content=body, headers={**STRUCTURED, **bearer(token)})

    # shop: com.example.thing and com.example.order.*, from /shop/* only.
    assert (await post(SHOP, ce("com.example.thing", "/shop/1", "a"))).status_code == 202
    assert (await post(SHOP, ce("com.example.order.created", "/shop/eu/2"))).status_code == 202
    refused = await post(SHOP, ce("com.example.user.created", "/shop/1"))
    assert refused.status_code == 403
    assert "token 'shop' may not publish" in refused.json()["detail"]
    assert (await post(SHOP, ce("com.example.thing", "/elsewhere"))).status_code == 403
    # reader: nothing at all; admin: anything; digested (sha256 entry): anything.
    assert (await post(READER, ce())).status_code == 403
    assert (await post(ADMIN, ce("com.example.user.created", "/elsewhere"))).status_code == 404
    assert (await post(DIGESTED, ce("com.example.thing", "/x", "b"))).status_code == 202
    # Binary mode is checked the same way (ce- headers).
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "c",
        "ce-type": "com.example.thing",
        "ce-source": "/elsewhere",
        "Content-Type": "application/json",
        **bearer(SHOP),
    }
    response = await client.post("/events", content=b'{"n": 1}', headers=binary)
    assert response.status_code == 403
    response = await client.post(
        "/events", content=b'{"n": 1}', headers={**binary, "ce-source": "/shop/9"}
    )
    assert response.status_code == 202
    # A batch is refused whole when one of its events is not allowed.
    batch = orjson.dumps(
        [
            event("com.example.thing", "d", source="/shop/1", data={"n": 1}),
            event("com.example.thing", "e", source="/elsewhere", data={"n": 1}),
        ]
    )
    response = await client.post(
        "/events",
        content=batch,
        headers={"Content-Type": "application/cloudevents-batch+json", **bearer(SHOP)},
    )
    assert response.status_code == 403
    # What was refused never reached NATS: the three accepted things only (each was published
    # before its 202, so a round trip on our connection has them all in).
    messages = await inbox.wait(3)
    await nc.flush()
    ids = [(m.headers or {}).get("ce-id") or orjson.loads(m.data)["id"] for m in messages]
    assert sorted(ids) == ["a", "b", "c"]


@pytest.mark.nats
async def test_probes_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.nats
async def test_sse_token_endpoint_mints_query_tokens(
    client: httpx.AsyncClient, gateway: Service
) -> None:
    assert gateway.gateway is not None
    auth = gateway.gateway.ctx.auth
    response = await client.post("/auth/sse-token", headers=bearer(SHOP))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["expires_in"] == 300
    token = body["token"]
    # What GET /events/stream will call, and what it checks next.
    principal = auth.authenticate(None, query_token=token)
    assert principal is not None
    assert principal.name == "shop"
    assert principal.may_read("orders")
    assert not principal.may_read("payments")
    # Without a bearer (or with the query token as one): no token.
    for headers in ({}, bearer(token), bearer("not-a-token-we-know-at-all")):
        refused = await client.post("/auth/sse-token", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
    # A query token does not publish, as a bearer nor as ?token=.
    for params, headers in (({}, bearer(token)), ({"token": token}, {})):
        response = await client.post(
            "/events", params=params, content=ce(), headers={**STRUCTURED, **headers}
        )
        assert response.status_code == 401


@pytest.mark.nats
async def test_query_tokens_expire_end_to_end(nats_url: str, tmp_path: Path) -> None:
    write_routes(tmp_path, ROUTES % "1s")
    write_tokens(tmp_path, TOKENS)
    async with running_gateway(nats_url, tmp_path / "routes.yaml") as service:
        assert service.gateway is not None
        auth = service.gateway.ctx.auth
        async with httpx.AsyncClient(base_url=service.gateway.url, timeout=10.0) as http:
            response = await http.post("/auth/sse-token", headers=bearer(READER))
        assert response.json()["expires_in"] == 1
        token = response.json()["token"]

        async def expired() -> bool:
            return auth.authenticate(None, query_token=token) is None

        # Valid until a second after minting (checked exactly with a test clock above); here
        # only that it does end, whatever the machine's load.
        await eventually(expired, within=15.0, what="the query token to expire")


@pytest.mark.nats
async def test_a_broken_tokens_file_stops_the_start(nats_url: str, tmp_path: Path) -> None:
    write_routes(tmp_path, ROUTES % "5m")
    write_tokens(tmp_path, "tokens:\n  - name: a\n    token: short\n")
    with pytest.raises(ConfigError, match=r"tokens\.yaml:3: tokens\[0\]\.token: the token is 5"):
        async with running_gateway(nats_url, tmp_path / "routes.yaml"):
            pass


# -- the start-up rule: no auth beyond loopback -------------------------------------------------


def _http_errors(http: str) -> list[str]:
    text = "version: 1\nroutes: []\nhttp:\n" + textwrap.indent(textwrap.dedent(http), "  ")
    return [str(e) for e in parse_config(text, check_schemas=False).errors]


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "192.0.2.1:0", "example.com:80"])
def test_listening_beyond_loopback_needs_auth(listen: str) -> None:
    errors = _http_errors(f"listen: '{listen}'\n")
    assert len(errors) == 1
    # At the section's first line (here the listen line), with the address as given.
    assert errors[0].startswith(f"routes.yaml:4: http: the gateway would listen on {listen} ")
    assert (
        "without authentication; declare http.auth (tokens_file or tokens_env) or set "
        in (errors[0])
    )


@pytest.mark.parametrize(
    "http",
    [
        "listen: 127.0.0.1:0\n",
        "listen: '[::1]:0'\n",
        "listen: localhost:0\n",
        "listen: 0.0.0.0:0\nauth: {tokens_file: tokens.yaml}\n",
        "listen: 0.0.0.0:0\nauth: {tokens_env: GW_TOKENS}\n",
        "listen: 0.0.0.0:0\nauth: {allow_unauthenticated: true}\n",
    ],
)
def test_loopback_or_auth_or_an_explicit_opt_out_is_fine(http: str) -> None:
    assert _http_errors(http) == []


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_cli_http_beyond_loopback_without_auth_exits_2(tmp_path: Path, log_format: str) -> None:
    write_routes(tmp_path, "routes: []\n")
    result = run_cli(
        "run", "-s", DEAD_URL, "--http", "0.0.0.0:0", "--log-format", log_format, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    expected = (
        "--http: the gateway would listen on 0.0.0.0:0 without authentication; declare "
        "http.auth (tokens_file or tokens_env) or set http.auth.allow_unauthenticated"
    )
    if log_format == "console":
        assert lines[0] == f"cerouter run: {expected}"
    else:
        assert json.loads(lines[0])["event"] == expected


def test_cli_http_beyond_loopback_with_auth_passes_the_rule(tmp_path: Path) -> None:
    # With tokens declared the rule is satisfied: it goes on to connect (to nothing, here).
    write_routes(tmp_path, "routes: []\nhttp: {auth: {tokens_file: tokens.yaml}}\n")
    write_tokens(tmp_path, TOKENS)
    result = run_cli("run", "-s", DEAD_URL, "--http", "0.0.0.0:0", cwd=tmp_path, timeout=30)
    assert "without authentication" not in result.stderr
    assert result.returncode != 2, result.stderr


def test_cli_broken_tokens_file_exits_2_with_one_line(tmp_path: Path) -> None:
    # Read before anything starts: no server is needed to see it fail (nothing listens at
    # DEAD_URL).
    write_routes(
        tmp_path, "routes: []\nhttp: {listen: '127.0.0.1:0', auth: {tokens_file: t.yaml}}\n"
    )
    tokens = f"tokens:\n  - {{name: a, token: {SHOP}}}\n  - {{name: a, token: {ADMIN}}}\n"
    write_tokens(tmp_path, tokens, "t.yaml")
    result = run_cli(
        "run", "-s", DEAD_URL, "--log-level", "error", "--log-format", "console", cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert (
        lines[0] == "cerouter run: t.yaml:3: tokens[1]: token name 'a' is already used at t.yaml:2"
    )
    assert SHOP not in result.stderr
    assert ADMIN not in result.stderr
