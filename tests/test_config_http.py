"""The ``http`` section of routes.yaml and ``run --http``: defaults, limits, located errors."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import orjson
import pytest

from cerouter.config.build_http import ListenError, parse_listen
from cerouter.config.model import HttpLimits
from tests.helpers import CliProcess, copy_shop
from tests.test_config import MINIMAL, errors, load

REPO = Path(__file__).resolve().parents[1]


def test_no_http_section_means_no_gateway(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL).http is None


def test_defaults(tmp_path: Path) -> None:
    http = load(tmp_path, MINIMAL + "http: {}\n").http
    assert http is not None
    assert (http.host, http.port) == ("127.0.0.1", 8080)
    assert http.limits == HttpLimits()
    assert http.batch_max is None  # batch mode is opt-in
    assert http.sse.keepalive == 15.0


def test_every_setting(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
streams:
  - {name: ORDERS, subjects: [orders.>]}
http:
  listen: "[::1]:0"
  limits: {max_body: 64KiB, max_headers: 8KiB, max_inflight: 5, max_inflight_per_client: 2}
  batch: {max_events: 10}
  webhook: {allowed_origins: [a.example]}
  auth: {tokens_file: tokens.yaml}
  sse: {keepalive: 500ms, buffer: 8, token_ttl: 1m}
  subscriptions:
    - {name: orders, from: {stream: ORDERS}, match: {type: com.example.order.created}}
    - {name: all, from: {subject: "orders.>"}}
"""
    )
    http = load(tmp_path, text).http
    assert http is not None
    assert (http.host, http.port) == ("::1", 0)
    assert http.limits == HttpLimits(65536, 8192, 5, 2, 30.0)
    assert http.batch_max == 10
    assert http.allowed_origins == ("a.example",)
    assert http.auth.tokens_file == tmp_path / "tokens.yaml"  # relative to routes.yaml
    assert (http.sse.keepalive, http.sse.buffer, http.sse.token_ttl) == (0.5, 8, 60.0)
    orders, everything = http.subscriptions
    assert (orders.stream, orders.subject, orders.match is not None) == ("ORDERS", "orders.>", True)
    assert (everything.stream, everything.subject) == (None, "orders.>")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":9000", ("127.0.0.1", 9000)),
        ("9000", ("127.0.0.1", 9000)),
        ("[::1]:0", ("::1", 0)),
    ],
)
def test_listen_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["host:http", "127.0.0.1:70000", "127.0.0.1:-1", ""])
def test_bad_listen(text: str) -> None:
    with pytest.raises(ListenError):
        parse_listen(text)


def test_errors_are_located(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
http:
  listen: somewhere
  sse: {keepalive: 0s}
  subscriptions:
    - {name: a, from: {stream: NOPE}}
    - {name: a, from: {subject: "bad subject"}}
"""
    )
    assert errors(tmp_path, text) == [
        "routes.yaml:8: http.listen: 'somewhere' is not host:port (such as 127.0.0.1:8080)",
        "routes.yaml:9: http.sse.keepalive: must be more than 0s",
        "routes.yaml:11: http.subscriptions[0].from.stream: undefined stream 'NOPE'; "
        "declare it under 'streams'",
        "routes.yaml:12: http.subscriptions[1].name: subscription 'a' is already defined "
        "at line 11",
        "routes.yaml:12: http.subscriptions[1].from.subject: subject 'bad subject' contains "
        "whitespace or a non-ASCII character",
    ]


def test_bad_size_is_a_structural_error(tmp_path: Path) -> None:
    (line,) = errors(tmp_path, MINIMAL + "http: {limits: {max_body: lots}}\n")
    assert line.startswith("routes.yaml:6: http.limits.max_body: must be a size")


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    (line,) = errors(tmp_path, MINIMAL + "http: {lisen: 127.0.0.1:0}\n")
    assert "lisen" in line


@pytest.mark.nats
def test_run_http_serves_the_gateway(tmp_path: Path) -> None:
    shop = copy_shop(tmp_path)
    proc = CliProcess(
        "run", "--port", "0", "--store-dir", str(shop / "js"), "--http", "127.0.0.1:0",
        "--log-format", "json", cwd=shop,
    )  # fmt: skip
    try:
        ready = json.loads(proc.wait_for_stderr('"cerouter ready"'))
        url = ready["http"]
        assert url.startswith("http://127.0.0.1:")
        body = (REPO / "examples" / "events" / "order-shipped.json").read_bytes()
        response = httpx.post(
            f"{url}/events",
            content=body,
            headers={"content-type": "application/cloudevents+json"},
            timeout=15,
        )
        assert response.status_code == 202, response.text
        assert orjson.loads(response.content)["outcome"] == "routed"
        proc.proc.send_signal(signal.SIGTERM)
        code, _, stderr = proc.finish()
    finally:
        proc.kill()
    assert code == 0, stderr
