"""HTTP gateway throughput and latency against a minimal Starlette publisher, in the same run.

    .venv/bin/python bench/bench_gateway.py [--connections 16] [--duration 6] [--repeat 3] [--quick]

Four processes, as in production: nats-server, the HTTP server under test, the load generator
(``wrk``, C, one thread, N keep-alive connections, a Lua script that gives every request a fresh
event id; without wrk, ``apt-get install -y wrk``, a fallback of raw asyncio keep-alive clients
in one Python process, slower and named in the output), and this script (which only starts,
samples and prints). The server under test is pinned to the first CPU and everything else to
the others (``--no-pin``: the scheduler decides), so that where the scheduler happens to put
four busy processes on two cores does not change the result from one run to the next.
Scenarios, each in structured (``application/cloudevents+json``) and binary (``ce-*`` headers)
mode:

  (a0) minimal Starlette endpoint: ``await nc.publish`` of the body, no flush (context only)
  (a)  the same endpoint, ``await nc.publish`` then ``await nc.flush()`` (the baseline)
  (b)  ``cerouter run --http``: POST /events -> one route -> a subject destination
  (c0) minimal Starlette endpoint: ``await js.publish`` (PubAck awaited) (context for (c))
  (c)  ``cerouter run --http``: POST /events -> one route -> a stream destination

Why (a) flushes: the gateway answers 202 only once the core publish is flushed (one PING/PONG
round trip: the server has the message), so the baseline that gives the same guarantee is the
one to beat; (a0) shows what that guarantee costs. The baseline publishes the body with the
headers the gateway would also hand on (``Content-Type`` and the ``ce-*`` headers, unchanged,
through nats-py's public ``publish``) and answers the same 202 body. Every server runs uvicorn
with the gateway's HTTP implementation (:func:`cerouter.gateway.server.http_protocol`) on
uvloop, one process, the NATS connection on the same loop; no schema validation (``--validate``
adds the order schema to (b) and (c)).

Columns: requests/s over the measured window (after a warm-up run; the best of ``--repeat``
interleaved rounds, with that round's other columns), p50/p99 latency of the N closed-loop
clients (at saturation, so p50 is about N / rate), CPU per event of the HTTP server, of
nats-server and of the load generator (from /proc and the children's rusage), the rate as a
fraction of (a) (the median over rounds of each round's ratio, the two measured a minute apart
at most), and the cores that other processes kept busy meanwhile (this machine is shared:
rerun when that is not near 0). Any non-2xx answer or socket error fails the run: wrk counts
4xx/5xx (``status > 399``; the servers never send 1xx/3xx) and socket errors, and
nats-server's ``in_msgs`` must have grown by at least one message per answered request.

SSE: ``GET /events/stream?subscription=out`` (``http.subscriptions: [{name: out, from:
{stream: OUT}}]``), 10 raw asyncio clients on this script's loop; once all are connected a
separate process publishes M structured events to the stream's subject; each client must see
every event (``event:`` its type, ``data:`` the structured JSON, ``id:`` increasing stream
sequences). Reports events/s per client and in total. Skipped, with a message, while the
gateway answers 404 (the endpoint is not there yet).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cerouter.config.model import HttpLimits
from cerouter.gateway.server import http_protocol
from cerouter.nats.embedded import RANDOM_PORT, EmbeddedServer, ServerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_router import ATTRS, DATA, SCHEMA

# The same event and schema as bench_router.py, so the two benchmarks compare.
ANSWER = orjson.dumps({"outcome": "routed", "routes": ["orders"]})  # what the gateway answers

ROUTES = """
version: 1
ingress:
  core: {{subjects: [in.>], queue: bench}}
streams:
  - {{name: OUT, subjects: [out.>]}}
routes:
  - name: orders
    match: {{type: com.example.order.created}}
    to: {to}
http:
  limits: {{max_inflight: 10000}}
  subscriptions: [{{name: out, from: {{stream: OUT}}}}]
"""

SSE_CLIENTS = 10
RUNS = itertools.count()  # every wrk run sends its own event ids (JetStream de-duplicates)


def _protocol_name() -> str:
    proto = http_protocol(HttpLimits())
    return proto if isinstance(proto, str) else proto.__name__


def structured_body(event_id: str) -> bytes:
    return orjson.dumps({**ATTRS, "id": event_id, "data": DATA})


# --------------------------------------------------------------------------- wrk script

LUA = """
local mode = "{mode}"
local n = 0
local counter = 0
local headers = {{}}
local body

function setup(thread)
  counter = counter + 1
  thread:set("tid", tostring(counter))
end

function init(args)
  tid = (args[1] or "run") .. "-" .. (tid or "0")  -- tid: set by setup() in this thread
  if mode == "structured" then
    headers["Content-Type"] = "application/cloudevents+json"
  else
    headers["Content-Type"] = "application/json"
{binary_headers}
    body = {data}
  end
end

function request()
  n = n + 1
  local id = tid .. "-" .. n
  if mode == "structured" then
    return wrk.format("POST", "/events", headers, {prefix} .. id .. {suffix})
  end
  headers["ce-id"] = id
  return wrk.format("POST", "/events", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def lua_string(value: str) -> str:
    """A Lua string literal (long brackets: JSON needs no escaping there)."""
    assert "]==]" not in value
    return f"[==[{value}]==]"


def wrk_script(mode: str) -> str:
    marker = "@@ID@@"
    prefix, suffix = structured_body(marker).decode().split(marker)
    binary_headers = "\n".join(
        f'    headers["ce-{k}"] = {lua_string(v)}'
        for k, v in ATTRS.items()
        if k != "datacontenttype"  # HTTP binary mode: Content-Type is datacontenttype
    )
    return LUA.format(
        mode=mode,
        binary_headers=binary_headers,
        data=lua_string(orjson.dumps(DATA).decode()),
        prefix=lua_string(prefix),
        suffix=lua_string(suffix),
    )


# --------------------------------------------------------------------------- servers under test


async def baseline_main(url: str, kind: str) -> None:
    """A minimal Starlette app publishing each body to NATS, served like the gateway is."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    nc = await nats.connect(url)
    js = nc.jetstream()
    if kind == "js":
        await js.add_stream(name="OUT", subjects=["out.>"])

    async def post(request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.startswith("ce-")}
        headers["Content-Type"] = request.headers["content-type"]
        if kind == "js":
            await js.publish("out.x", body, headers=headers)
        else:
            await nc.publish("out.x", body, headers=headers)
            if kind == "flush":
                await nc.flush()
        return Response(ANSWER, 202, media_type="application/json")

    app = Starlette(routes=[Route("/events", post, methods=["POST"])])
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        http=http_protocol(HttpLimits()),
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # uvicorn says it is serving by a flag only
        if task.done():
            task.result()
            raise SystemExit("uvicorn stopped while starting")
        await asyncio.sleep(0.01)
    print(f"READY http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await task


async def publish_events(url: str, count: int) -> None:
    """Core-publish ``count`` structured events to the OUT stream's subject, then check it."""
    nc = await nats.connect(url)
    headers = {"Content-Type": "application/cloudevents+json"}
    for i in range(count):
        await nc.publish("out.x", structured_body(f"sse-{i}"), headers=headers)
        if i % 200 == 0:
            await nc.flush()
    await nc.flush()
    js = nc.jetstream()
    deadline = time.monotonic() + 30
    while (await js.stream_info("OUT")).state.messages < count:
        if time.monotonic() > deadline:
            raise SystemExit("the OUT stream did not store every published event")
        await asyncio.sleep(0.01)
    await nc.close()


def serve(kind: str, url: str) -> None:
    import uvloop

    if kind == "publish":
        uvloop.run(publish_events(url, int(os.environ["BENCH_COUNT"])))
    elif kind == "loadgen":
        uvloop.run(python_load(url, json.loads(os.environ["BENCH_LOAD"])))
    else:
        uvloop.run(baseline_main(url, kind))


SERVER_CPUS: set[int] | None = None  # --pin: the server under test runs alone on these
OTHER_CPUS: set[int] | None = None  # ... and nats-server and the load generator on these


def pin(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that keeps the child (and every thread it starts) on ``cpus``."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def pin_all_threads(pid: int, cpus: set[int] | None) -> None:
    """Move a running process, every thread of it (nats-server is Go), to ``cpus``."""
    if cpus is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_baseline(kind: str, nats_url: str, workdir: Path) -> Server:
    log = workdir / f"baseline-{kind}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--url", nats_url],
            stdout=subprocess.PIPE, stderr=err, preexec_fn=pin(SERVER_CPUS),
        )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"baseline {kind} did not start:\n{log.read_text()}")
    return Server(proc, line.split()[1], log)


def start_cerouter(to: str, nats_url: str, validate: bool) -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="cerouter-bench-gw-"))
    if validate:
        (workdir / "schemas").mkdir()
        (workdir / "schemas" / "order.json").write_text(json.dumps(SCHEMA))
    (workdir / "routes.yaml").write_text(textwrap.dedent(ROUTES.format(to=to)))
    exe = str(Path(sys.executable).parent / "cerouter")
    log = workdir / "cerouter.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [exe, "run", "--routes", str(workdir / "routes.yaml"), "--nats-url", nats_url,
             "--http", "127.0.0.1:0", "--log-format", "json", "--log-level", "info"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=pin(SERVER_CPUS),
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if "cerouter ready" in line:
                return Server(proc, json.loads(line)["http"], log)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"cerouter did not start:\n{log.read_text()}")


# --------------------------------------------------------------------------- measuring


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time the whole machine has spent in processes so far (all cores, /proc/stat).

    Interrupt time is left out: loopback traffic's softirq work is ours but not accounted to
    any process, so it would count as "other"."""
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_msgs(monitor: int) -> int:
    """Messages nats-server has received from clients so far (its monitoring ``/varz``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz", timeout=5) as response:
        return int(json.load(response)["in_msgs"])


@dataclass
class Result:
    rate: float
    p50: float  # ms
    p99: float
    server_cpu: float  # µs per event
    nats_cpu: float
    loadgen_cpu: float
    requests: int
    other: float  # cores used by other processes meanwhile


def run_load(url: str, mode: str, seconds: int, args: argparse.Namespace) -> dict:
    """One closed-loop run of ``args.connections`` keep-alive clients; wrk's summary fields."""
    tag = f"r{next(RUNS)}"  # the prefix of this run's event ids
    if args.loadgen == "wrk":
        with tempfile.TemporaryDirectory(prefix="cerouter-bench-wrk-") as tmp:
            script = Path(tmp) / f"{mode}.lua"
            script.write_text(wrk_script(mode))
            cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections),
                   "-d", f"{seconds}s", "--timeout", "10s", "-s", str(script),
                   f"{url}/events", "--", tag]  # fmt: skip
            out = subprocess.run(
                cmd, capture_output=True, text=True, check=False, preexec_fn=pin(OTHER_CPUS)
            )
    else:
        spec = {"mode": mode, "connections": args.connections, "seconds": seconds, "tag": tag}
        cmd = [sys.executable, __file__, "--serve", "loadgen", "--url", url]
        env = {**os.environ, "BENCH_LOAD": json.dumps(spec)}
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=False, env=env, preexec_fn=pin(OTHER_CPUS)
        )
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            stats: dict = json.loads(line.removeprefix("WRKJSON "))
            return stats
    raise SystemExit(f"{args.loadgen} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def request_maker(mode: str, host: str) -> Callable[[str], bytes]:
    """Request bytes for one event id, as the wrk script sends them."""
    if mode == "structured":
        head = f"POST /events HTTP/1.1\r\nHost: {host}\r\n"
        head += "Content-Type: application/cloudevents+json\r\nContent-Length: "

        def structured(event_id: str) -> bytes:
            body = structured_body(event_id)
            return b"%b%d\r\n\r\n%b" % (head.encode(), len(body), body)

        return structured
    body = orjson.dumps(DATA)
    ce = "".join(f"ce-{k}: {v}\r\n" for k, v in ATTRS.items() if k != "datacontenttype")
    fixed = (
        f"POST /events HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{ce}"
        f"Content-Length: {len(body)}\r\n"
    ).encode()

    def binary(event_id: str) -> bytes:
        return b"%bce-id: %b\r\n\r\n%b" % (fixed, event_id.encode(), body)

    return binary


async def python_load(url: str, spec: dict) -> None:
    """The fallback load generator: raw asyncio keep-alive clients; prints wrk's summary."""
    host_port = url.removeprefix("http://")
    host, port = host_port.rsplit(":", 1)
    make = request_maker(spec["mode"], host_port)
    latencies: list[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    end = time.perf_counter() + spec["seconds"]

    async def client(i: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            errors["connect"] += 1
            return
        n = 0
        try:
            while time.perf_counter() < end:
                n += 1
                request = make(f"{spec['tag']}-{i}-{n}")
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                lowered = head.lower()
                at = lowered.find(b"content-length:")
                if at < 0:
                    raise ValueError("a response without Content-Length")
                length = int(lowered[at + 15 : lowered.index(b"\r\n", at)])
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                if not 200 <= int(head[9:12]) < 300:
                    errors["status"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors["read"] += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(spec["connections"])))
    duration = time.perf_counter() - start
    ordered = sorted(latencies) or [0.0]

    def pct(q: float) -> int:
        return int(ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1e6)

    summary = {"requests": len(latencies), "duration_us": int(duration * 1e6), **errors,
               "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)}  # fmt: skip
    print("WRKJSON " + json.dumps(summary), flush=True)


def measure(
    label: str,
    server: Server,
    nats_server: EmbeddedServer,
    monitor: int,
    mode: str,
    args: argparse.Namespace,
) -> Result:
    warm = run_load(server.url, mode, args.warmup, args)
    check_errors(label, mode, warm, server)
    assert nats_server.pid is not None
    msgs_before = in_msgs(monitor)
    server_before = cpu_seconds(server.proc.pid)
    nats_before = cpu_seconds(nats_server.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before, own_before = busy_seconds(), cpu_seconds(os.getpid())
    stats = run_load(server.url, mode, args.duration, args)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine, own = busy_seconds() - machine_before, cpu_seconds(os.getpid()) - own_before
    server_cpu = cpu_seconds(server.proc.pid) - server_before
    nats_cpu = cpu_seconds(nats_server.pid) - nats_before
    check_errors(label, mode, stats, server)
    n = stats["requests"]
    time.sleep(0.2)  # let requests wrk gave up on at the deadline finish publishing
    published = in_msgs(monitor) - msgs_before
    if published < n:
        raise SystemExit(
            f"{label} {mode}: {n} requests answered 2xx but nats-server received only "
            f"{published} messages"
        )
    loadgen_cpu = (
        children_after.ru_utime + children_after.ru_stime - children.ru_utime - children.ru_stime
    )
    elapsed = stats["duration_us"] / 1e6
    return Result(
        rate=n / elapsed,
        p50=stats["p50"] / 1000,
        p99=stats["p99"] / 1000,
        server_cpu=server_cpu / n * 1e6,
        nats_cpu=nats_cpu / n * 1e6,
        loadgen_cpu=loadgen_cpu / n * 1e6,
        requests=n,
        other=max(machine - server_cpu - nats_cpu - loadgen_cpu - own, 0.0) / elapsed,
    )


def check_errors(label: str, mode: str, stats: dict, server: Server) -> None:
    errors = {k: stats[k] for k in ("connect", "read", "write", "status", "timeout") if stats[k]}
    if errors or not stats["requests"]:
        tail = "\n".join(server.log.read_text().splitlines()[-20:])
        raise SystemExit(
            f"{label} {mode}: FAILED: {stats['requests']} requests, errors {errors} "
            f"(status = non-2xx answers)\n--- server log tail:\n{tail}"
        )


# --------------------------------------------------------------------------- SSE


class SseNotFound(Exception):
    """The gateway has no SSE endpoint (404)."""


class SseClient:
    """A raw keep-alive HTTP/1.1 reader of one event stream; counts and checks the events."""

    def __init__(self, url: str, subscription: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.path = f"/events/stream?subscription={subscription}"
        self.count = 0
        self.last_id = 0
        self.last_arrival = 0.0
        self.problems: list[str] = []
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.chunked = False

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n".encode()
        )
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 404:
            raise SseNotFound
        if status != 200:
            raise SystemExit(f"SSE: GET {self.path} answered {status}:\n{head.decode()}")
        self.chunked = b"transfer-encoding: chunked" in head.lower()

    async def _chunks(self):  # type: ignore[no-untyped-def]
        assert self.reader is not None
        while True:
            if not self.chunked:
                data = await self.reader.read(65536)
                if not data:
                    return
                yield data
                continue
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                return
            data = await self.reader.readexactly(size + 2)
            yield data[:-2]

    async def read(self, expected: int, event_type: str) -> None:
        buffer = b""
        async for chunk in self._chunks():
            buffer += chunk
            buffer = buffer.replace(b"\r\n", b"\n") if b"\r" in buffer else buffer
            *messages, buffer = buffer.split(b"\n\n")
            for message in messages:
                self._message(message, event_type)
            if self.count >= expected:
                return

    def _message(self, message: bytes, event_type: str) -> None:
        fields: dict[bytes, list[bytes]] = {}
        for line in message.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            fields.setdefault(name, []).append(value.removeprefix(b" "))
        if b"data" not in fields:
            return  # a keep-alive or a retry hint
        self.count += 1
        self.last_arrival = time.perf_counter()
        kind = b"".join(fields.get(b"event", [b""])).decode()
        if kind != event_type and len(self.problems) < 5:
            self.problems.append(f"event: {kind!r}, expected {event_type!r}")
        try:
            data = orjson.loads(b"\n".join(fields[b"data"]))
            if data.get("type") != event_type or "id" not in data:
                raise ValueError("not the structured event")
        except ValueError as exc:
            if len(self.problems) < 5:
                self.problems.append(f"data: {exc}")
        try:
            seq = int(b"".join(fields.get(b"id", [b""])))
        except ValueError:
            seq = -1
        if seq <= self.last_id and len(self.problems) < 5:
            self.problems.append(f"id: {seq} after {self.last_id}")
        self.last_id = seq

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def sse_run(url: str, nats_url: str, events: int, pid: int) -> tuple[float, float, float]:
    """(total events/s, median per-client events/s, cerouter CPU µs per delivered event)."""
    clients = [SseClient(url, "out") for _ in range(SSE_CLIENTS)]
    try:
        await asyncio.gather(*(c.connect() for c in clients))
        await asyncio.sleep(0.5)  # let every subscription reach its consumer
        readers = [
            asyncio.create_task(c.read(events, ATTRS["type"])) for c in clients
        ]  # fmt: skip
        cpu_before = cpu_seconds(pid)
        start = time.perf_counter()
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", "publish", "--url", nats_url,
            env={**os.environ, "BENCH_COUNT": str(events)},
        )  # fmt: skip
        try:
            await asyncio.wait_for(asyncio.gather(*readers), 120)
        except TimeoutError:
            counts = [c.count for c in clients]
            raise SystemExit(f"SSE: not every event arrived within 120s: {counts}") from None
        cpu = cpu_seconds(pid) - cpu_before
        if await publisher.wait() != 0:
            raise SystemExit("SSE: the publisher failed")
    finally:
        for c in clients:
            c.close()
    for c in clients:
        if c.problems or c.count != events:
            raise SystemExit(f"SSE: a client got {c.count}/{events} events: {c.problems}")
    end = max(c.last_arrival for c in clients)
    per_client = statistics.median(events / (c.last_arrival - start) for c in clients)
    return events * SSE_CLIENTS / (end - start), per_client, cpu / (events * SSE_CLIENTS) * 1e6


def sse_bench(events: int) -> str:
    with EmbeddedServer(ServerConfig(port=RANDOM_PORT)) as nats_server:
        server = start_cerouter("{stream: OUT, subject: out.x}", nats_server.url, validate=False)
        try:
            total, per_client, cpu = asyncio.run(
                sse_run(server.url, nats_server.url, events, server.proc.pid)
            )
        except SseNotFound:
            return (
                "SSE: skipped: GET /events/stream answered 404 (the SSE endpoint is not in "
                "this build yet)"
            )
        finally:
            server.stop()
    return (
        f"SSE: {SSE_CLIENTS} clients x {events} events from stream OUT (published by core "
        f"NATS from another process)\n\n"
        "| SSE | events/s total | events/s per client (median) | cerouter CPU µs/delivered |\n"
        "|---|---:|---:|---:|\n"
        f"| GET /events/stream, {SSE_CLIENTS} clients | {total:,.0f} | {per_client:,.0f} "
        f"| {cpu:.1f} |"
    )


# --------------------------------------------------------------------------- main

SCENARIOS = [
    ("(a0) starlette publish, no flush", "noflush", None),
    ("(a) starlette publish + flush (baseline)", "flush", None),
    ("(b) cerouter gateway -> subject", "cerouter", "{subject: out.x}"),
    ("(c0) starlette js.publish (PubAck)", "js", None),
    ("(c) cerouter gateway -> stream", "cerouter", "{stream: OUT, subject: out.x}"),
]


def run_scenario(
    label: str, kind: str, to: str | None, args: argparse.Namespace
) -> dict[str, Result]:
    """One server under test on a fresh nats-server, measured in both content modes."""
    monitor = free_port()
    config = ServerConfig(port=RANDOM_PORT, extra_args=("-m", str(monitor)))
    results: dict[str, Result] = {}
    with EmbeddedServer(config) as nats_server:
        assert nats_server.pid is not None
        pin_all_threads(nats_server.pid, OTHER_CPUS)
        if to is None:
            workdir = Path(tempfile.mkdtemp(prefix="cerouter-bench-gw-"))
            server = start_baseline(kind, nats_server.url, workdir)
        else:
            server = start_cerouter(to, nats_server.url, args.validate)
        try:
            for mode in ("structured", "binary"):
                results[mode] = measure(label, server, nats_server, monitor, mode, args)
        finally:
            server.stop()
    shutil.rmtree(server.log.parent, ignore_errors=True)  # kept when the run failed
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", "-c", type=int, default=16, help="keep-alive clients")
    parser.add_argument("--threads", "-t", type=int, default=1, help="wrk threads")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place the processes"
    )
    parser.add_argument("--duration", type=int, default=6, help="measured seconds per run")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--sse-events", type=int, default=5000)
    parser.add_argument("--validate", action="store_true", help="schema-validate in (b), (c)")
    parser.add_argument("--only", help="comma-separated scenario keys: a0,a,b,c0,c,sse")
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds, not minutes)")
    parser.add_argument("--serve")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.url)
        return
    if args.quick:
        args.duration, args.warmup, args.sse_events, args.repeat = 2, 1, 300, 1
    global SERVER_CPUS, OTHER_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(cpus) >= 2:
        SERVER_CPUS, OTHER_CPUS = {cpus[0]}, set(cpus[1:])
        os.sched_setaffinity(0, OTHER_CPUS)  # this script, its SSE readers and children
    if args.loadgen == "auto":
        args.loadgen = "wrk" if shutil.which("wrk") else "python"
    if args.loadgen == "wrk":
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
        tool = f"wrk {version} (C, {args.threads} thread(s), Lua script)"
    else:
        tool = "Python raw-socket asyncio keep-alive clients on uvloop, one process"
    wanted = set(args.only.split(",")) if args.only else None
    load = os.getloadavg()
    if load[0] > 0.7:
        print(
            f"warning: load average {load[0]:.2f}: the machine is busy, numbers will be low",
            file=sys.stderr,
        )
    runs: dict[tuple[str, str], list[Result]] = {}
    for round_ in range(args.repeat):  # interleaved rounds: the machine is shared
        for label, kind, to in SCENARIOS:
            key = label.split(")")[0].removeprefix("(")
            if wanted is not None and key not in wanted:
                continue
            for mode, result in run_scenario(label, kind, to, args).items():
                print(f"  round {round_ + 1} {label} {mode}: {result.rate:,.0f}/s", file=sys.stderr)
                runs.setdefault((label, mode), []).append(result)
    base = {mode: r for (label, mode), r in runs.items() if label.startswith("(a)")}
    placement = (
        f"server pinned to CPU {sorted(SERVER_CPUS)}, nats-server + load generator to "
        f"{sorted(OTHER_CPUS)}"
        if SERVER_CPUS and OTHER_CPUS
        else "processes not pinned"
    )
    print(
        f"\nHTTP ingress, load generator: {tool}; {args.connections} "
        f"keep-alive connections, {args.duration}s measured after {args.warmup}s warm-up, "
        f"{args.repeat} interleaved rounds (each row: the round with the best rate; x (a): the "
        "median over rounds of the rate over (a)'s in the same round); "
        f"uvicorn + {_protocol_name()} on uvloop; {placement}; events of "
        f"{len(structured_body('1-1'))} bytes (structured); {os.cpu_count()} cores, load "
        f"{load[0]:.2f} at start{'; schema-validated' if args.validate else ''}; other CPU: cores "
        "busy with processes outside the benchmark during the measured window\n"
    )
    print(
        "| scenario | mode | events/s | p50 ms | p99 ms | server CPU µs/ev "
        "| nats-server CPU µs/ev | load gen. CPU µs/ev | x (a) | other CPU |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (label, mode), results in runs.items():
        r = max(results, key=lambda x: x.rate)
        ratio = "-"
        if mode in base:  # each round's rate against the baseline's in the same round
            pairs = zip(results, base[mode], strict=True)
            ratio = f"{statistics.median(x.rate / b.rate for x, b in pairs):.2f}"
        print(
            f"| {label} | {mode} | {r.rate:,.0f} | {r.p50:.2f} | {r.p99:.2f} "
            f"| {r.server_cpu:.0f} | {r.nats_cpu:.0f} | {r.loadgen_cpu:.0f} | {ratio} "
            f"| {r.other:.2f} |"
        )
    if wanted is None or "sse" in wanted:
        print()
        print(sse_bench(args.sse_events))


if __name__ == "__main__":
    main()
