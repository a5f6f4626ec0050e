"""What tracing costs per event, in process: RouterCore.handle with tracing off and on, same run.

    .venv/bin/python bench/bench_tracing.py [--events 20000] [--rounds 7]

The scenario of bench_router.py (b): structured, schema-validated, one subject destination,
metrics on. One embedded nats-server and two routers in this process, rounds alternating
between the router with tracing off (the default) and one with an OpenTelemetry SDK
TracerProvider (batch span processor, an exporter that discards: the SDK's work, no
collector's), and one sampling 1% of traces. CPU time per event is ``time.process_time``
over a round, the span processor's export thread included. Also: what tracing off adds to
the hot path (one attribute test).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_metrics import one_round, routes_dir
from bench_router import discarding_provider, structured
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from cerouter.config.load import load_router_config
from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig
from cerouter.service import Router, RouterOptions
from cerouter.types import Inbound


async def main(events: int, rounds: int) -> None:
    config, registry = load_router_config(routes_dir())
    inbounds = [Inbound("in.x", *structured(i)) for i in range(events)]
    provider = discarding_provider()
    # What OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01 makes.
    sampled = discarding_provider(ParentBased(TraceIdRatioBased(0.01)))
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as server:
        urls = (server.url,)
        async with (
            Router(config, registry, RouterOptions(urls=urls, tracer_provider=provider)) as on,
            Router(config, registry, RouterOptions(urls=urls, tracer_provider=sampled)) as one,
            Router(config, registry, RouterOptions(urls=urls)) as off,
        ):
            routers = {"on": on, "1%": one, "off": off}
            for router in routers.values():
                await one_round(router, inbounds[: events // 4])
            cpu: dict[str, list[float]] = {name: [] for name in routers}
            for _ in range(rounds):
                for name, router in routers.items():
                    cpu[name].append(await one_round(router, inbounds))
    provider.shutdown()  # type: ignore[attr-defined]
    sampled.shutdown()  # type: ignore[attr-defined]
    print(f"\n{events} events x {rounds} rounds per router, alternating; CPU µs per event\n")
    print(f"  {'':12} {'best':>7} {'median':>7}   rounds")
    for name in ("on", "1%", "off"):
        values = cpu[name]
        shown = ", ".join(f"{x:.2f}" for x in values)
        print(f"  tracing {name:4} {min(values):7.2f} {statistics.median(values):7.2f}   {shown}")
    for name in ("on", "1%"):
        for how, pick in (("best", min), ("median", statistics.median)):
            on_us, off_us = pick(cpu[name]), pick(cpu["off"])
            delta = on_us - off_us
            print(
                f"  tracing {name:4} added ({how}) {delta:6.2f} µs per event "
                f"({delta / off_us * 100:+.1f}%)"
            )

    class Core:
        _tracing = None

    n = 1_000_000
    ns = min(timeit.repeat("c._tracing is not None", globals={"c": Core()}, number=n)) / n * 1e9
    print(f"\ntracing off, on the hot path: one `self._tracing is not None` test, {ns:.0f} ns")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.rounds))
