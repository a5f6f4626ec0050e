"""Router throughput and latency against a bare nats-py forwarder, measured in the same run.

    .venv/bin/python bench/bench_router.py [--events 40000]

Three processes, as in production: nats-server, the forwarder under test (bare nats-py or
cerouter), and this load generator (producer and consumer on one loop). Scenarios:

  (a) bare nats-py forward loop: callback subscription, publish to another subject (baseline)
  (b) cerouter, structured mode, schema-validated, one subject destination (metrics on: the
      default of ``cerouter run``)
  (b') the same with ``RouterOptions(metrics=False)`` (``serve()`` in the forwarder process,
      as ``cerouter run`` does): what the per-event metric counting costs
  (b'') the same as (b) with tracing on: an OpenTelemetry SDK TracerProvider, batch span
      processor, an exporter that discards (no collector in the way): what the spans cost
  (c) cerouter, binary mode, schema-validated, one subject destination
  (d) cerouter, JetStream ingress -> stream destination (bare JetStream forwarder for context)
  (e) cerouter, JetStream ingress -> durable queue -> 2 `cerouter worker` processes (no-op)

Throughput is end to end (first publish to last arrival). Latency is measured at half of the
scenario's own peak rate, from publish to arrival, with the send time carried in a header.
The core rows (a)-(c) take turns, run after run, so that drift on a shared machine hits all
of them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nats
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://bench.example/order.json",
    "x-cloudevents-type": "com.example.order.created",
    "type": "object",
    "required": ["order_id", "customer", "items", "total", "currency"],
    "properties": {
        "order_id": {"type": "string"},
        "customer": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "items": {"type": "integer", "minimum": 1},
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "express": {"type": "boolean"},
        "created": {"type": "string", "format": "date-time"},
    },
}
DATA = {
    "order_id": "o-12345", "customer": "c-42", "email": "a@example.com", "items": 3,
    "total": 99.5, "currency": "EUR", "express": False, "created": "2026-01-02T03:04:05Z",
}  # fmt: skip
ATTRS = {"specversion": "1.0", "source": "/bench/shop", "type": "com.example.order.created",
         "time": "2026-01-02T03:04:05Z", "datacontenttype": "application/json"}  # fmt: skip

ROUTES = """
version: 1
ingress:
  core: {{subjects: [in.>], queue: bench}}
  {jetstream}
streams:
  - {{name: OUT, subjects: [out.>]}}
  {events_stream}
routes:
  - name: orders
    match: {{type: com.example.order.created}}
    to: {to}
"""


def structured(i: int) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/cloudevents+json"}, orjson.dumps(
        {**ATTRS, "id": str(i), "data": DATA}
    )


def binary(i: int) -> tuple[dict[str, str], bytes]:
    headers = {f"ce-{k}": v for k, v in {**ATTRS, "id": str(i)}.items()}
    return headers, orjson.dumps(DATA)


# --------------------------------------------------------------------------- forwarders


async def bare_forwarder(url: str) -> None:
    nc = await nats.connect(url)

    async def forward(msg: nats.aio.msg.Msg) -> None:
        await nc.publish("out.x", msg.data, headers=msg.headers)

    await nc.subscribe("in.>", queue="bench", cb=forward)
    await nc.flush()
    print("READY", flush=True)
    await asyncio.Event().wait()


async def bare_js_forwarder(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    psub = await js.pull_subscribe("in.>", durable="bare", stream="EVENTS")
    print("READY", flush=True)
    while True:
        try:
            msgs = await psub.fetch(256, timeout=1)
        except TimeoutError:
            continue
        acks = [await js.publish_async("out.x", m.data, headers=m.headers) for m in msgs]
        await asyncio.gather(*acks)
        for m in msgs:
            await m.ack()


def discarding_provider(sampler: object = None) -> object:
    """A TracerProvider as ``cerouter run --trace`` makes one, exporting to nowhere."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=sampler)  # type: ignore[arg-type]
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return provider


async def cerouter_forwarder(
    url: str, workdir: str, *, metrics: bool, tracing: bool = False
) -> None:
    """What ``cerouter run --nats-url URL`` runs, with the metrics switch set."""
    from cerouter.config.load import load_router_config
    from cerouter.log import LogFormat, LogLevel, configure_logging
    from cerouter.service import RouterOptions, serve

    configure_logging(LogFormat.JSON, LogLevel.INFO)
    config, registry = load_router_config(Path(workdir) / "routes.yaml")
    provider = discarding_provider() if tracing else None
    options = RouterOptions(urls=(url,), metrics=metrics, tracer_provider=provider)
    async with serve(config, registry, options) as service:
        print("cerouter ready", file=sys.stderr, flush=True)
        await service.wait()


def serve(kind: str, url: str, workdir: str) -> None:
    if kind == "bare":
        asyncio.run(bare_forwarder(url))
    elif kind == "bare-js":
        asyncio.run(bare_js_forwarder(url))
    elif kind == "cerouter-metrics-off":
        from cerouter.cli.run import run_loop

        run_loop(cerouter_forwarder(url, workdir, metrics=False))
    elif kind == "cerouter-tracing":
        from cerouter.cli.run import run_loop

        run_loop(cerouter_forwarder(url, workdir, metrics=True, tracing=True))
    else:
        exe = str(Path(sys.executable).parent / "cerouter")
        os.execv(
            exe,
            [exe, "run", "--routes", f"{workdir}/routes.yaml",
             "--nats-url", url, "--log-format", "json", "--log-level", "info"],
        )  # fmt: skip


# --------------------------------------------------------------------------- load generator


async def measure_core(
    url: str, make: object, n: int, pid: int
) -> tuple[float, float, float, float]:
    """(events/s, forwarder CPU µs/event, p50 ms, p99 ms) through the forwarder on in.> -> out.x."""
    nc = await nats.connect(url, pending_size=256 * 1024 * 1024)
    received = 0
    done = asyncio.Event()
    latencies: list[float] = []
    target = n

    async def arrive(msg: nats.aio.msg.Msg) -> None:
        nonlocal received
        received += 1
        sent = msg.headers.get("x-sent") if msg.headers else None
        if sent is not None:
            latencies.append((time.monotonic_ns() - int(sent)) / 1e6)
        if received >= target:
            done.set()

    await nc.subscribe("out.x", cb=arrive)
    await nc.flush()
    messages = [make(i) for i in range(n)]  # type: ignore[operator]
    cpu_before = cpu_seconds(pid)
    start = time.perf_counter()
    for i, (headers, payload) in enumerate(messages):
        await nc.publish("in.x", payload, headers=headers)
        if i % 500 == 0:
            await nc.flush()
    await nc.flush()
    await asyncio.wait_for(done.wait(), 120)
    rate = n / (time.perf_counter() - start)
    cpu_per_event = (cpu_seconds(pid) - cpu_before) / n * 1e6

    # Latency at half the peak rate: paced publishing, 1 ms ticks.
    received, target, latencies = 0, n // 4, []
    done.clear()
    per_tick = max(1, int(rate / 2 / 1000))
    sent_count = 0
    tick_start = time.perf_counter()
    while sent_count < target:
        for _ in range(per_tick):
            if sent_count >= target:
                break
            headers, payload = make(sent_count)  # type: ignore[operator]
            headers = {**headers, "x-sent": str(time.monotonic_ns())}
            await nc.publish("in.x", payload, headers=headers)
            sent_count += 1
        await nc.flush()
        next_tick = tick_start + sent_count / (rate / 2)
        delay = next_tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.wait_for(done.wait(), 120)
    await nc.close()
    qs = statistics.quantiles(latencies, n=100)
    return rate, cpu_per_event, statistics.median(latencies), qs[98]


async def preload_js(url: str, n: int) -> None:
    """Fill the EVENTS stream before the forwarder starts, so only the forwarder is timed."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="EVENTS", subjects=["in.>"])
    pending = []
    for i in range(n):
        headers, payload = structured(i)
        pending.append(await js.publish_async("in.x", payload, headers=headers))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await nc.close()


async def drain_js(url: str, n: int, pid: int) -> tuple[float, float]:
    """(events/s, forwarder CPU µs/event) until OUT holds all ``n`` events."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    cpu_before = cpu_seconds(pid)
    start = time.perf_counter()
    while True:
        try:
            if (await js.stream_info("OUT")).state.messages >= n:
                break
        except nats.js.errors.NotFoundError:
            pass
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds(pid) - cpu_before) / n * 1e6
    await nc.close()
    return n / elapsed, cpu


WORKER_APP = """
from cerouter.worker import WorkerApp

app = WorkerApp("bench")


@app.handler("com.example.order.created", queue="billing", durable=True)
async def noop(event):
    return None
"""


async def drain_queue(url: str, n: int, pids: list[int]) -> tuple[float, float]:
    """(events/s, CPU µs/event of router + workers) until every event passed the work queue."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    start = time.perf_counter()
    while True:
        try:
            state = (await js.stream_info("BILLING")).state
            if state.last_seq >= n and state.messages == 0:
                break
        except nats.js.errors.NotFoundError:
            pass
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    cpu = (sum(cpu_seconds(pid) for pid in pids) - cpu_before) / n * 1e6
    await nc.close()
    return n / elapsed, cpu


async def latency_at(url: str, make: object, rate: int, n: int) -> tuple[float, float]:
    """(p50 ms, p99 ms) publish-to-arrival at a steady ``rate`` events/s (0.5 ms ticks)."""
    nc = await nats.connect(url, pending_size=256 * 1024 * 1024)
    latencies: list[float] = []
    done = asyncio.Event()

    async def arrive(msg: nats.aio.msg.Msg) -> None:
        latencies.append((time.monotonic_ns() - int(msg.headers["x-sent"])) / 1e6)
        if len(latencies) >= n:
            done.set()

    await nc.subscribe("out.x", cb=arrive)
    await nc.flush()
    start = time.perf_counter()
    sent = 0
    while sent < n:
        due = min(int((time.perf_counter() - start) * rate) + 1, n)
        while sent < due:
            headers, payload = make(sent)  # type: ignore[operator]
            await nc.publish(
                "in.x", payload, headers={**headers, "x-sent": str(time.monotonic_ns())}
            )
            sent += 1
        await nc.flush()
        await asyncio.sleep(0.0005)
    await asyncio.wait_for(done.wait(), 60)
    await nc.close()
    return statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_forwarder(kind: str, url: str, workdir: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--url", url, "--workdir", workdir],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    if kind.startswith("bare"):
        proc.stdout.readline()
    else:
        for line in proc.stderr:
            if "cerouter ready" in line:
                break
    return proc


def scenario_dir(to: str, jetstream: bool) -> str:
    workdir = tempfile.mkdtemp(prefix="cerouter-bench-")
    (Path(workdir) / "schemas").mkdir()
    (Path(workdir) / "schemas" / "order.json").write_text(json.dumps(SCHEMA))
    js = "jetstream: [{stream: EVENTS, durable: cerouter, max_ack_pending: 20000}]"
    routes = ROUTES.format(
        to=to,
        jetstream=js if jetstream else "",
        events_stream="- {name: EVENTS, subjects: [in.>]}" if jetstream else "",
    )
    (Path(workdir) / "routes.yaml").write_text(textwrap.dedent(routes))
    return workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs per core row")
    parser.add_argument("--serve")
    parser.add_argument("--url")
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.url, args.workdir)
        return
    n = args.events
    rows: list[tuple[str, float, float, float | None, float | None]] = []
    core_dir = scenario_dir("{subject: out.x}", jetstream=False)
    cases = [
        ("(a) bare nats-py forward (baseline)", "bare", structured),
        ("(b) cerouter structured, validated", "cerouter", structured),
        ("(b') cerouter structured, metrics off", "cerouter-metrics-off", structured),
        ("(b'') cerouter structured, tracing on", "cerouter-tracing", structured),
        ("(c) cerouter binary, validated", "cerouter", binary),
    ]
    runs: dict[str, list[tuple[float, float, float, float]]] = {label: [] for label, _, _ in cases}
    for _ in range(args.repeat):  # best of N: this machine is shared and noisy
        for label, kind, make in cases:
            with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as server:
                proc = start_forwarder(kind, server.url, core_dir)
                try:
                    runs[label].append(asyncio.run(measure_core(server.url, make, n, proc.pid)))
                finally:
                    proc.terminate()
                    proc.wait()
    for label, _, _ in cases:
        rate, cpu, p50, p99 = min(runs[label], key=lambda r: r[1])
        rows.append((label, rate, cpu, p50, p99))
    js_n = n // 2
    for label, kind in (("(d0) bare JetStream pull -> publish_async", "bare-js"),
                        ("(d) cerouter JetStream -> stream", "cerouter")):  # fmt: skip
        workdir = scenario_dir("{stream: OUT, subject: out.x}", jetstream=True)
        with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as server:
            asyncio.run(preload_js(server.url, js_n))
            if kind == "bare-js":
                asyncio.run(_make_out(server.url))
            proc = start_forwarder(kind, server.url, workdir)
            try:
                rate, cpu = asyncio.run(drain_js(server.url, js_n, proc.pid))
            finally:
                proc.terminate()
                proc.wait()
        rows.append((label, rate, cpu, None, None))
    workdir = scenario_dir("{queue: billing, durable: true}", jetstream=True)
    routes = Path(workdir) / "routes.yaml"
    routes.write_text(
        routes.read_text().replace(
            "streams:\n",
            "streams:\n  - {name: BILLING, subjects: [work.billing], retention: workqueue}\n",
        )
    )
    (Path(workdir) / "bench_app.py").write_text(WORKER_APP)
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as server:
        asyncio.run(preload_js(server.url, js_n))
        router = start_forwarder("cerouter", server.url, workdir)
        exe = str(Path(sys.executable).parent / "cerouter")
        workers = [
            subprocess.Popen(
                [exe, "worker", "bench_app:app", "--nats-url", server.url, "--concurrency", "100"],
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        try:
            rate, cpu = asyncio.run(
                drain_queue(server.url, js_n, [router.pid] + [w.pid for w in workers])
            )
        finally:
            for proc in (router, *workers):
                proc.terminate()
                proc.wait()
    rows.append(("(e) cerouter JS -> durable queue -> 2 workers", rate, cpu, None, None))
    rates = (1000, 5000, 10000)
    latency_rows: list[tuple[str, list[tuple[float, float]]]] = []
    for label, kind in (
        ("(a) bare nats-py forward", "bare"),
        ("(b) cerouter structured", "cerouter"),
    ):
        with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as server:
            proc = start_forwarder(kind, server.url, core_dir)
            try:
                latency_rows.append(
                    (
                        label,
                        [asyncio.run(latency_at(server.url, structured, r, 2 * r)) for r in rates],
                    )
                )
            finally:
                proc.terminate()
                proc.wait()
    base_cpu = rows[0][2]
    print(
        f"\n{n} core / {js_n} JetStream events of ~{len(structured(0)[1])} bytes; "
        f"{os.cpu_count()} cores; latency at half of each scenario's end-to-end rate\n"
    )
    print(f"{'scenario':44} {'e2e ev/s':>9} {'fwd CPU us':>10} {'ev/s/core':>10} "
          f"{'x base':>7} {'p50 ms':>7} {'p99 ms':>7}")  # fmt: skip
    for label, rate, cpu, p50, p99 in rows:
        lat = f"{p50:7.2f} {p99:7.2f}" if p50 is not None and p99 is not None else " " * 15
        print(f"{label:44} {rate:9,.0f} {cpu:10.1f} {1e6 / cpu:10,.0f} {base_cpu / cpu:7.2f} {lat}")
    print("\nlatency p50 / p99 ms at steady rates (generator, forwarder and server share 2 cores)")
    print(f"{'scenario':44} " + " ".join(f"{f'{r:,}/s':>15}" for r in rates))
    for label, values in latency_rows:
        print(f"{label:44} " + " ".join(f"{p50:6.2f} / {p99:6.2f}" for p50, p99 in values))


async def _make_out(url: str) -> None:
    nc = await nats.connect(url)
    await nc.jetstream().add_stream(name="OUT", subjects=["out.>"])
    await nc.close()


if __name__ == "__main__":
    main()
