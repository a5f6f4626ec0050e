"""A real browser's EventSource on ``GET /events/stream``: it receives routed events, and when
the gateway restarts it reconnects by itself with ``Last-Event-ID`` and misses nothing.

Headless Chromium (Debian's ``chromium-headless-shell``) driven by playwright, which downloads
nothing: it is given the binary. Without either the module is skipped, saying how to get them;
``.ci/run`` sets ``CEROUTER_REQUIRE_BROWSER=1``, which makes their absence a failure instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import httpx
import orjson
import pytest
from nats.aio.client import Client

from tests.routerkit import event, running_gateway, write_routes

REQUIRE_ENVVAR = "CEROUTER_REQUIRE_BROWSER"
BINARY_ENVVAR = "CEROUTER_CHROMIUM"
_CANDIDATES = ("/usr/lib/chromium/chromium-headless-shell", "/usr/bin/chromium-headless-shell")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENVVAR) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENVVAR}=1: the browser test is required)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _chromium() -> str:
    named = os.environ.get(BINARY_ENVVAR)
    if named:  # named explicitly: a typo is an error, not a skip
        if not os.access(named, os.X_OK):
            pytest.fail(f"{BINARY_ENVVAR}={named}: not an executable", pytrace=False)
        return named
    for candidate in (*_CANDIDATES, shutil.which("chromium-headless-shell")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _unavailable(
        "headless Chromium not found; install it with `apt-get install chromium-headless-shell` "
        f"(or set {BINARY_ENVVAR} to a chromium-headless-shell binary)"
    )


try:
    from playwright.async_api import Page, Request, async_playwright
except ImportError:
    _unavailable("playwright is not installed; pip install -e '.[test]'")
CHROMIUM = _chromium()
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
streams:
  - {name: FEED, subjects: [feed.>]}
routes:
  - name: feed
    match: {type: com.example.thing}
    to: {stream: FEED, subject: feed.things}
http:
  listen: 127.0.0.1:%(port)d
  subscriptions:
    - {name: things, from: {stream: FEED}}
"""
WAIT_MS = 20_000  # every wait in the browser; EventSource retries after about 3s
STRUCTURED = {"content-type": "application/cloudevents+json"}

# Runs in the page: an EventSource on the gateway's own origin, collecting what it receives.
LISTEN = """
(url) => {
  window.received = [];
  window.opens = 0;
  window.errors = 0;
  const list = document.createElement("ol");
  document.body.replaceChildren(list);
  const source = new EventSource(url);
  source.onopen = () => { window.opens += 1; };
  source.onerror = () => { window.errors += 1; };
  for (const type of ["com.example.thing", "gap", "overflow"]) {
    source.addEventListener(type, (e) => {
      window.received.push({ type: e.type, id: e.lastEventId, data: JSON.parse(e.data) });
      const item = document.createElement("li");
      item.textContent = `${e.lastEventId} ${e.type} ${e.data}`;
      list.append(item);
    });
  }
}
"""


async def post(url: str, id_: str) -> None:
    async with httpx.AsyncClient(timeout=10.0) as http:
        body = orjson.dumps(event("com.example.thing", id_=id_, data={"n": int(id_)}))
        response = await http.post(url + "/events", content=body, headers=STRUCTURED)
    assert response.status_code == 202, response.text


async def received(page: Page, count: int) -> list[dict[str, Any]]:
    await page.wait_for_function(f"window.received.length >= {count}", timeout=WAIT_MS)
    value: list[dict[str, Any]] = await page.evaluate("window.received")
    return value


async def test_event_source_receives_events_and_resumes_after_a_restart(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    requests: list[Request] = []

    def seen(request: Request) -> None:
        if "/events/stream" in request.url:
            requests.append(request)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = await browser.new_page()
            page.on("request", seen)
            first = write_routes(tmp_path, ROUTES % {"port": 0})
            async with running_gateway(nats_url, first) as service:
                assert service.gateway is not None
                url = service.gateway.url
                port = service.gateway.address[1]
                await page.goto(url + "/healthz")  # the page's origin is the gateway's
                await page.evaluate(LISTEN, "/events/stream?subscription=things")
                await page.wait_for_function("window.opens === 1", timeout=WAIT_MS)
                for i in range(1, 4):
                    await post(url, str(i))
                before = await received(page, 3)
            # The gateway is gone: the stream ended, EventSource is retrying. Meanwhile another
            # router instance goes on routing into the stream (here: published to it directly).
            await page.wait_for_function("window.errors >= 1", timeout=WAIT_MS)
            js = nc.jetstream()
            for i in range(4, 6):
                body = orjson.dumps(event("com.example.thing", id_=str(i), data={"n": i}))
                await js.publish("feed.things", body, headers=STRUCTURED)
            # The same address again, as a restarted gateway would have.
            (tmp_path / "restarted").mkdir()
            second = write_routes(tmp_path / "restarted", ROUTES % {"port": port})
            async with running_gateway(nats_url, second):
                resumed = await received(page, 5)
                await post(url, "6")
                after = await received(page, 6)
                await page.screenshot(path=tmp_path / "event-source.png")
            opens = await page.evaluate("window.opens")
            streams = [await request.all_headers() for request in requests]
        finally:
            await browser.close()
    assert [(e["id"], e["data"]["id"]) for e in before] == [("1", "1"), ("2", "2"), ("3", "3")]
    # 4 and 5 were in the stream before the new gateway was up: only a resume delivers them.
    assert [e["id"] for e in resumed] == ["1", "2", "3", "4", "5"]
    assert [(e["type"], e["id"], e["data"]["id"]) for e in after] == [
        ("com.example.thing", str(i), str(i)) for i in range(1, 7)
    ]
    assert opens == 2
    assert "last-event-id" not in streams[0]
    assert streams[-1].get("last-event-id") == "3"
    assert (tmp_path / "event-source.png").stat().st_size > 0
