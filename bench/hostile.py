"""Hostile producers against a running router: every message must be accounted for.

    .venv/bin/python bench/hostile.py [--events 50000]

Publishes a mix of hostile messages (garbage bytes, broken JSON, deep nesting, huge and odd
headers, producer control headers, values near max_payload, reused ids with other content,
bad percent-encodings, control characters) with valid events between them into a JetStream
ingress stream, lets cerouter route them, and reconciles: every message published is either in
the OUT stream (routed) or in the DEADLETTER stream (with a reason), none lost, and the router
is still connected. Prints the counts per kind and per dead-letter reason.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cerouter.config.load import load_router_config
from cerouter.delivery.deadletter import parse_deadletter
from cerouter.log import LogFormat, LogLevel, configure_logging
from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig
from cerouter.nats.jspub import JetStreamPublisher
from cerouter.service import RouterOptions, serve

ROUTES = """
version: 1
ingress:
  jetstream: [{stream: EVENTS, durable: cerouter, max_deliver: 3, max_ack_pending: 5000}]
streams:
  - {name: EVENTS, subjects: [in.>]}
  - {name: OUT, subjects: [out.>], duplicate_window: 10m}
  - {name: DEADLETTER, subjects: ["deadletter.>"], duplicate_window: 10m}
deadletter: {stream: DEADLETTER, subject: "deadletter.{reason}"}
routes:
  - name: store
    match: {type: com.example.valid}
    to: {stream: OUT, subject: "out.{type}", mode: same}
unrouted: deadletter
"""
STRUCTURED = {"Content-Type": "application/cloudevents+json"}
Message = tuple[dict[str, str], bytes]


def base(i: int, **extra: object) -> dict[str, object]:
    return {"specversion": "1.0", "id": f"h-{i}", "source": "/hostile", **extra}


def valid(i: int) -> Message:
    return STRUCTURED, orjson.dumps(base(i, type="com.example.valid", data={"n": i}))


def garbage(i: int) -> Message:
    return {}, bytes((i * 7 + k) % 256 for k in range(64))


def broken_json(i: int) -> Message:
    return STRUCTURED, b'{"specversion": "1.0", "id": "' + str(i).encode() + b'", '


def deep(i: int) -> Message:
    nested: object = i
    for _ in range(3000):
        nested = [nested]
    body = orjson.dumps(base(i, type="com.example.valid")).rstrip(b"}")
    return STRUCTURED, body + b', "data": ' + b"[" * 3000 + b"1" + b"]" * 3000 + b"}"


def odd_headers(i: int) -> Message:
    return {**STRUCTURED, "X(odd)": "1"}, orjson.dumps(base(i, type="org.nobody"))


def huge_headers(i: int) -> Message:
    # Under JetStream's 64 KiB for the original, over it once cerouter adds its own.
    return {**STRUCTURED, "Huge": "h" * 60_000}, orjson.dumps(base(i, type="org.nobody"))


def control_headers(i: int) -> Message:
    headers = {**STRUCTURED, "Status": "503", "Description": "x", "Nats-Msg-Id": f"m-{i}"}
    return headers, orjson.dumps(base(i, type="org.nobody"))


def near_max(i: int) -> Message:
    body = orjson.dumps(base(i, type="org.nobody", data={"pad": "x" * (1_048_576 - 400)}))
    return STRUCTURED, body


def reused_id(i: int) -> Message:
    # The id of the valid event before it, with other content: a conflict, not a duplicate.
    return STRUCTURED, orjson.dumps({**base(i - 1, type="com.example.valid"), "data": {"n": -i}})


def bad_binary(i: int) -> Message:
    headers = {"ce-specversion": "1.0", "ce-id": f"h-{i}", "ce-source": "/x%C0%A0",
               "ce-type": "com.example.valid"}  # fmt: skip
    return headers, b"{}"


def control_chars(i: int) -> Message:
    return STRUCTURED, orjson.dumps(base(i, type="com.example.valid\x00\x07", data=1))


def bad_envelope(i: int) -> Message:
    return STRUCTURED, orjson.dumps({"specversion": "0.3", "id": "", "source": "", "type": 5})


KINDS: dict[str, Callable[[int], Message]] = {
    "garbage": garbage, "broken-json": broken_json, "deep": deep, "odd-headers": odd_headers,
    "huge-headers": huge_headers,
    "control-headers": control_headers, "reused-id": reused_id, "bad-binary": bad_binary,
    "control-chars": control_chars, "bad-envelope": bad_envelope,
}  # fmt: skip


def mix(n: int, big_every: int) -> Iterator[tuple[str, Message]]:
    hostile = itertools.cycle(KINDS.items())
    for i in range(n):
        if i % big_every == big_every - 1:
            yield "near-max", near_max(i)
        elif i % 2 == 0:
            yield "valid", valid(i)
        else:
            kind, make = next(hostile)
            yield kind, make(i)


async def count(nc: nats.aio.client.Client, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.messages)


async def reasons(nc: nats.aio.client.Client, total: int) -> collections.Counter[str]:
    sub = await nc.jetstream().pull_subscribe("deadletter.>", stream="DEADLETTER")
    found: collections.Counter[str] = collections.Counter()
    seen = 0
    while seen < total:
        try:
            batch = await sub.fetch(min(500, total - seen), timeout=5)
        except nats.errors.TimeoutError:
            break
        for msg in batch:
            record = parse_deadletter(msg.headers, msg.data)
            found[str(record.reason)] += 1
            await msg.ack()
        seen += len(batch)
    return found


async def main(n: int, big_every: int) -> int:
    configure_logging(LogFormat.JSON, LogLevel.ERROR)
    work = Path(tempfile.mkdtemp(prefix="cerouter-hostile-"))
    (work / "routes.yaml").write_text(textwrap.dedent(ROUTES))
    config, registry = load_router_config(work / "routes.yaml")
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT, store_dir=work / "js")) as server:
        options = RouterOptions(urls=(server.url,), retry_initial=0.05, retry_max=0.5)
        async with serve(config, registry, options, signals=False) as service:
            nc = await nats.connect(server.url)
            publisher = JetStreamPublisher(nc)
            await publisher.start()
            sent: collections.Counter[str] = collections.Counter()
            refused: collections.Counter[str] = collections.Counter()
            started = time.perf_counter()
            pending: list[tuple[str, asyncio.Future[object]]] = []

            async def settle() -> None:
                results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
                for (kind, _), result in zip(pending, results, strict=True):
                    # JetStream itself refuses some (header blocks over 64 KiB): they never
                    # reach the router, so they are not the router's to account for.
                    if isinstance(result, BaseException):
                        refused[kind] += 1
                pending.clear()

            for kind, (headers, payload) in mix(n, big_every):
                future = await publisher.publish("in.x", payload, dict(headers))
                pending.append((kind, future))  # type: ignore[arg-type]
                sent[kind] += 1
                if len(pending) >= 500:
                    await settle()
            await settle()
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                info = await nc.jetstream().consumer_info("EVENTS", "cerouter")
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    break
                await asyncio.sleep(0.2)
            elapsed = time.perf_counter() - started
            routed, dead = await count(nc, "OUT"), await count(nc, "DEADLETTER")
            by_reason = await reasons(nc, dead)
            connected = service.router.ready
            stats = service.router.stats.snapshot()
            await publisher.close()
            await nc.close()
    accepted = n - sum(refused.values())
    lost = accepted - routed - dead
    print(f"\n{n} messages published in {elapsed:.1f} s (incl. routing); router connected: "
          f"{connected}")  # fmt: skip
    print(f"{'kind':<18}{'sent':>8}{'refused by JetStream':>22}")
    for kind, k in sorted(sent.items()):
        print(f"{kind:<18}{k:>8}{refused[kind]:>22}")
    print(f"\n{'outcome':<18}{'count':>8}")
    print(f"{'accepted':<18}{accepted:>8}")
    print(f"{'routed (OUT)':<18}{routed:>8}")
    for reason, k in sorted(by_reason.items()):
        print(f"{'dead: ' + reason:<18}{k:>8}")
    print(f"{'lost':<18}{lost:>8}")
    print(f"\nrouter counters: {stats}")
    return 0 if lost == 0 and connected else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--big-every", type=int, default=1000, help="a near-max_payload event")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.events, args.big_every)))
