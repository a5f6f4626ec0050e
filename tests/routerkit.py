"""Router test helpers: write a routes file, start a Router, wait for messages with deadlines."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg

from cerouter.config.load import load_router_config
from cerouter.nats.connection import full_flush
from cerouter.service.core import RouterOptions
from cerouter.service.router import Router
from cerouter.service.serve import Service, serve

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://example.com/schemas/thing.json",
    "x-cloudevents-type": "com.example.thing",
    "type": "object",
    "required": ["n"],
    "properties": {"n": {"type": "integer", "minimum": 0}},
}


def write_routes(tmp_path: Path, body: str) -> Path:
    """Write a routes file (``body`` is YAML after ``version: 1``) plus one schema."""
    schemas = tmp_path / "schemas"
    schemas.mkdir(exist_ok=True)
    (schemas / "thing.json").write_text(json.dumps(SCHEMA))
    path = tmp_path / "routes.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return path


@asynccontextmanager
async def running_router(url: str, routes: Path, **options: Any) -> AsyncIterator[Router]:
    """A started router on ``url`` using ``routes``; stopped (drained) on exit."""
    config, registry = load_router_config(routes)
    settings = RouterOptions(urls=(url,), **options)
    async with serve(config, registry, settings, reload_from=routes, signals=False) as service:
        yield service.router


@asynccontextmanager
async def running_gateway(url: str, routes: Path, **options: Any) -> AsyncIterator[Service]:
    """A started router with its HTTP gateway (routes.yaml needs an ``http`` section; use
    ``listen: 127.0.0.1:0``); ``service.gateway.url`` is where to send requests."""
    config, registry = load_router_config(routes)
    assert config.http is not None, "the routes file has no http section"
    settings = RouterOptions(urls=(url,), **options)
    async with serve(config, registry, settings, reload_from=routes, signals=False) as service:
        assert service.gateway is not None
        yield service


def event(type_: str = "com.example.thing", id_: str = "1", **extra: Any) -> dict[str, Any]:
    """A structured-mode event as a dict."""
    return {"specversion": "1.0", "id": id_, "source": "/test", "type": type_, **extra}


async def publish(nc: Client, subject: str, body: dict[str, Any] | bytes, **kw: Any) -> None:
    """Publish a structured event (dict) or raw bytes and flush.

    The flush *before* publishing is belt and braces for a subscriber on another connection that
    confirmed its subscription with a plain ``flush()``, which does not prove it is registered
    (see :func:`cerouter.nats.connection.full_flush`); the router and :class:`Inbox` use
    ``full_flush``.
    """
    await nc.flush()
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = kw.pop("headers", None)
    if headers is None and not isinstance(body, bytes):
        headers = {"Content-Type": "application/cloudevents+json"}
    await nc.publish(subject, payload, headers=headers, **kw)
    await nc.flush()


class Inbox:
    """Collects messages on a subject pattern; ``await inbox.wait(n)`` waits with a deadline."""

    def __init__(self) -> None:
        self.messages: list[Msg] = []
        self._changed = asyncio.Event()

    @classmethod
    async def on(cls, nc: Client, subject: str, queue: str = "") -> Inbox:
        """Subscribe a new inbox."""
        inbox = cls()
        await nc.subscribe(subject, queue=queue, cb=inbox._add)
        await full_flush(nc)  # registered before another connection publishes
        return inbox

    async def _add(self, msg: Msg) -> None:
        self.messages.append(msg)
        self._changed.set()

    async def wait(self, count: int, within: float = 10.0) -> list[Msg]:
        """Wait until at least ``count`` messages arrived; fail after ``within`` seconds."""

        async def reached() -> None:
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(reached(), within)
        except TimeoutError:
            raise AssertionError(
                f"got {len(self.messages)} of {count} messages within {within}s"
            ) from None
        return self.messages


async def stream_messages(
    nc: Client, stream: str, subject: str = ">", count: int = 1, within: float = 10.0
) -> list[Msg]:
    """Read (and ack) ``count`` messages of a stream with an ephemeral pull consumer."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(subject, stream=stream)
    out: list[Msg] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        while len(out) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"stream {stream}: got {len(out)} of {count} messages")
            try:
                batch = await sub.fetch(count - len(out), timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
            for msg in batch:
                await msg.ack()
            out.extend(batch)
    finally:
        await sub.unsubscribe()
    return out


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 15.0, what: str = "condition"
) -> None:
    """Poll an async condition until it holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


async def stream_count(nc: Client, stream: str) -> int:
    """How many messages a stream holds now."""
    return int((await nc.jetstream().stream_info(stream)).state.messages)
