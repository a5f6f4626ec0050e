"""What metrics cost per event, in process: RouterCore.handle with metrics on and off, same run.

    .venv/bin/python bench/bench_metrics.py [--events 20000] [--rounds 7]

One embedded nats-server and two routers in this process on the scenario of bench_router.py (b)
(structured, schema-validated, one subject destination): the same events go through
``router.core.handle`` (what the core NATS ingress calls), rounds alternating between the
router with metrics on and the one with ``RouterOptions(metrics=False)``. CPU time per event is
``time.process_time`` over a round (publishes are buffered and flushed every 1,000 events, so
the round includes nats-py's writes, as in production). Also: the cost of the primitives the
hot path uses, and of one scrape (``generate_latest``) of a router that routed every event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import textwrap
import time
import timeit
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_router import ROUTES, SCHEMA, structured
from prometheus_client import Counter as PromCounter
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from cerouter.config.load import load_router_config
from cerouter.delivery.dispatch import Pending
from cerouter.metrics import Histogram
from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig
from cerouter.pipeline import Pipeline
from cerouter.routing.model import Match
from cerouter.service import Router, RouterOptions
from cerouter.service.core import RouterCore
from cerouter.service.stats import Stats
from cerouter.types import Inbound


def routes_dir() -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="cerouter-bench-metrics-"))
    (workdir / "schemas").mkdir()
    (workdir / "schemas" / "order.json").write_text(json.dumps(SCHEMA))
    routes = ROUTES.format(to="{subject: out.x}", jetstream="", events_stream="")
    (workdir / "routes.yaml").write_text(textwrap.dedent(routes))
    return workdir / "routes.yaml"


class StubDispatcher:
    """Accepts every delivery at once: the core's own work, with no NATS I/O in the way."""

    async def start(self, event: object, matches: tuple[Match, ...], **_: object) -> list[Pending]:
        return [Pending(m.route.name, d, None) for m in matches for d in m.destinations]


async def core_round(core: RouterCore, inbounds: list[Inbound]) -> float:
    """Wall µs per event of ``core.handle`` with a stub dispatcher (CPU-bound, one thread)."""
    handle = core.handle
    start = time.perf_counter()
    for inbound in inbounds:
        await handle(inbound)
    return (time.perf_counter() - start) / len(inbounds) * 1e6


def stub_core(pipeline: Pipeline, metrics: bool) -> RouterCore:
    options = RouterOptions(metrics=metrics)
    return RouterCore(pipeline, None, None, StubDispatcher(), Stats(), options)  # type: ignore[arg-type]


async def one_round(router: Router, inbounds: list[Inbound]) -> float:
    """CPU µs per event of handling ``inbounds`` once."""
    handle = router.core.handle
    nc = router.nc
    await nc.flush()
    start = time.process_time()
    for i, inbound in enumerate(inbounds):
        await handle(inbound)
        if i % 1000 == 999:
            await nc.flush()
    await nc.flush()
    return (time.process_time() - start) / len(inbounds) * 1e6


def primitives() -> list[tuple[str, float]]:
    """ns per call of what the metered hot path adds, and of what it avoids."""
    registry = CollectorRegistry()
    setup = {
        "perf_counter": time.perf_counter,
        "plain": {"structured": 0},
        "counts": Counter({"structured": 0}),
        "pairs": {("orders", "subject"): 0},
        "hist": Histogram(),
        "route": "orders",
        "kind": "subject",
        "prom": PromCounter("x", "x", ["route"], registry=registry),
    }
    out = []
    for label, stmt in (
        ("perf_counter()", "perf_counter()"),
        ("dict[str] += 1 (used)", "plain['structured'] += 1"),
        ("Counter[str] += 1 (avoided)", "counts['structured'] += 1"),
        ("dict[(route, kind)] += 1 (used)", "pairs[(route, kind)] += 1"),
        ("Histogram.observe (used)", "hist.observe(0.0003)"),
        ("prometheus Counter.labels().inc()", "prom.labels(route).inc()"),
    ):
        n = 300_000
        out.append((label, min(timeit.repeat(stmt, globals=setup, number=n, repeat=5)) / n * 1e9))
    return out


async def main(events: int, rounds: int) -> None:
    config, registry = load_router_config(routes_dir())
    inbounds = [Inbound("in.x", *structured(i)) for i in range(events)]
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as server:
        urls = (server.url,)
        async with (
            Router(config, registry, RouterOptions(urls=urls, metrics=True)) as on,
            Router(config, registry, RouterOptions(urls=urls, metrics=False)) as off,
        ):
            for router in (on, off):  # warm up caches and the JIT-less interpreter alike
                await one_round(router, inbounds[: events // 4])
            cpu: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(rounds):
                cpu["on"].append(await one_round(on, inbounds))
                cpu["off"].append(await one_round(off, inbounds))
            assert on.registry is not None
            start = time.perf_counter()
            text = generate_latest(on.registry)
            scrape_ms = (time.perf_counter() - start) * 1e3
    print(f"\n{events} events x {rounds} rounds per router, alternating; CPU µs per event\n")
    print(f"  {'':12} {'best':>7} {'median':>7}   rounds")
    for name in ("on", "off"):
        values = cpu[name]
        shown = ", ".join(f"{x:.2f}" for x in values)
        print(f"  metrics {name:4} {min(values):7.2f} {statistics.median(values):7.2f}   {shown}")
    for how, pick in (("best", min), ("median", statistics.median)):
        on_us, off_us = pick(cpu["on"]), pick(cpu["off"])
        delta = (on_us - off_us) * 1e3
        print(f"  added ({how}) {delta:5.0f} ns per event ({delta / (off_us * 1e3) * 100:+.1f}%)")
    pipeline = Pipeline(config, registry)
    cores = {"on": stub_core(pipeline, True), "off": stub_core(pipeline, False)}
    wall: dict[str, list[float]] = {"on": [], "off": []}
    # Short rounds, many turns, the best of each: on a shared machine a slice of 1,000 events
    # often runs undisturbed, a slice of 20,000 seldom does.
    slices = [inbounds[i : i + 1000] for i in range(0, len(inbounds), 1000)]
    for _ in range(rounds):
        for part in slices:
            for name, core in cores.items():
                wall[name].append(await core_round(core, part))
    on_us, off_us = min(wall["on"]), min(wall["off"])
    delta = (on_us - off_us) * 1e3
    turns = len(wall["on"])
    print(f"\nthe core alone (stub dispatcher, no I/O), best of {turns} slices of 1,000 each:")
    print(f"  metrics on {on_us:6.2f} µs, off {off_us:6.2f} µs: added {delta:.0f} ns per event "
          f"({delta / (off_us * 1e3) * 100:+.1f}%)")  # fmt: skip
    print(f"\none scrape: {scrape_ms:.2f} ms, {len(text)} bytes\n\nprimitives (ns per call):")
    for label, ns in primitives():
        print(f"  {label:36} {ns:7.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rounds))
