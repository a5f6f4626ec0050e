"""The live page (``GET /ui``) in a real headless Chromium: counters, dead letters and the
event tail change as events are posted, and a CESQL filter narrows the tail.

The same browser as ``tests/test_gateway_browser.py``, found (or skipped, or required with
``CEROUTER_REQUIRE_BROWSER=1``) the same way. ``CEROUTER_UI_SCREENSHOT=path`` also saves the
screenshot there (how ``docs/live-page.png`` is made).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import orjson
import pytest
from nats.aio.client import Client
from playwright.async_api import Page, async_playwright, expect

from tests.routerkit import event, running_gateway, write_routes
from tests.test_gateway_browser import BROWSER_ARGS, CHROMIUM

pytestmark = [pytest.mark.nats, pytest.mark.fresh_server]

ROUTES = """
streams:
  - {name: FEED, subjects: [feed.>]}
routes:
  - name: things
    match: {type: com.example.thing}
    to: {stream: FEED, subject: feed.things}
  - name: audit
    match: {sql: "source LIKE '/shop%'"}
    to: {subject: "audit.{type}"}
http:
  listen: 127.0.0.1:0
"""
WAIT_MS = 20_000
STRUCTURED = {"content-type": "application/cloudevents+json"}
# Read at import: the autouse fixture clears CEROUTER_* variables before each test.
SCREENSHOT = os.environ.get("CEROUTER_UI_SCREENSHOT")


async def post(url: str, type_: str, id_: str, n: int) -> None:
    async with httpx.AsyncClient(timeout=10.0) as http:
        body = orjson.dumps(event(type_, id_=id_, data={"n": n}))
        response = await http.post(url + "/events", content=body, headers=STRUCTURED)
    assert response.status_code in (202, 404), response.text  # 404: unrouted


def cell(page: Page, route: str, key: str) -> str:
    return f'#routes tr[data-route="{route}"] td[data-key="{key}"]'


async def test_the_live_page_shows_counters_dead_letters_and_a_filtered_tail(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 900})
            async with running_gateway(nats_url, write_routes(tmp_path, ROUTES)) as service:
                assert service.gateway is not None
                url = service.gateway.url
                await page.goto(url + "/")
                assert page.url == url + "/ui"
                await expect(page.locator("#stats-status")).to_have_text("live", timeout=WAIT_MS)
                await expect(page.locator("#tail-status")).to_have_text(
                    "all events", timeout=WAIT_MS
                )
                await expect(page.locator(cell(page, "things", "match"))).to_contain_text(
                    "com.example.thing"
                )
                await expect(page.locator(cell(page, "audit", "match"))).to_contain_text(
                    "source LIKE '/shop%'"
                )
                await expect(page.locator(cell(page, "things", "to"))).to_have_text(
                    "stream FEED feed.things"
                )
                await expect(page.locator(cell(page, "things", "deliveries"))).to_have_text("0")

                for i in range(1, 4):
                    await post(url, "com.example.thing", str(i), i)
                await post(url, "com.example.nobody", "lost-1", 0)  # unrouted: dead-lettered

                deliveries = page.locator(cell(page, "things", "deliveries"))
                await expect(deliveries).to_have_text("3", timeout=WAIT_MS)
                await expect(page.locator(cell(page, "things", "rate"))).to_have_text(
                    re.compile(r"^\d+\.\d$"), timeout=WAIT_MS
                )
                routed = page.locator('#outcomes tr[data-outcome="routed"] td[data-key="count"]')
                await expect(routed).to_have_text("3", timeout=WAIT_MS)
                letter = page.locator("#deadletters li").first
                await expect(letter).to_contain_text("unrouted", timeout=WAIT_MS)
                await expect(letter).to_contain_text("lost-1")
                await expect(page.locator("#reasons tbody")).to_contain_text("unrouted")
                for i in range(1, 4):
                    await expect(page.locator(f'#tail li[data-id="{i}"]')).to_have_count(
                        1, timeout=WAIT_MS
                    )
                # Event data is text, never markup.
                await post(url, "com.example.thing", "<b id=injected>x</b>", 9)
                await expect(page.locator("#tail li").first).to_contain_text(
                    "<b id=injected>x</b>", timeout=WAIT_MS
                )
                assert await page.locator("#injected").count() == 0

                await page.fill("#filter", "type = 'com.example.thing' AND id = '5'")
                await page.click("#tail-form button")
                await expect(page.locator("#tail-status")).to_have_text(
                    "filtered: type = 'com.example.thing' AND id = '5'", timeout=WAIT_MS
                )
                await expect(page.locator("#tail li")).to_have_count(0)
                await post(url, "com.example.thing", "4", 4)
                await post(url, "com.example.thing", "5", 5)
                await expect(page.locator('#tail li[data-id="5"]')).to_have_count(
                    1, timeout=WAIT_MS
                )
                await expect(page.locator("#tail li")).to_have_count(1)
                await expect(deliveries).to_have_text("6", timeout=WAIT_MS)

                await page.fill("#filter", "type = ")
                await page.click("#tail-form button")
                await expect(page.locator("#tail-status")).to_contain_text(
                    "?filter=", timeout=WAIT_MS
                )
                await page.fill("#filter", "")
                await page.click("#tail-form button")
                await expect(page.locator("#tail-status")).to_have_text(
                    "all events", timeout=WAIT_MS
                )
                await post(url, "com.example.thing", "6", 6)
                await post(url, "com.example.nobody", "lost-2", 0)
                await expect(page.locator('#tail li[data-id="6"]')).to_have_count(
                    1, timeout=WAIT_MS
                )
                await expect(page.locator("#deadletters li")).to_have_count(2, timeout=WAIT_MS)
                shot = tmp_path / "live-page.png"
                await page.screenshot(path=shot, full_page=True)
                if SCREENSHOT:
                    await page.screenshot(path=SCREENSHOT, full_page=True)
        finally:
            await browser.close()
    assert shot.stat().st_size > 0
