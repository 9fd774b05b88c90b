"""The overview in real Chromium, on the real server with the bundled demo: the
charts are there (SVG with a bar per day that had sessions, each titled), the
figures it shows equal the timeline's totals row and the session list's sums
for the same filter, and nothing scrolls sideways at 390 px."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from browser import start_server
from kapacitor.store import open_store
from kapacitor.store.base import NewEvent
from kapacitor.projections.repositories import TOKEN_KINDS

SHOWN = ("sessions", "tokens", "tool_calls", "files_changed", "tool_errors")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    server = start_server(None, home, "--demo")
    server.store_url = f"sqlite://{home / 'share' / 'kapacitor' / 'demo.db'}"
    yield server
    assert "Traceback" not in server.stop()


def shown(page) -> dict[str, int]:
    """The exact figures a page shows (``data-value`` beside each formatted one)."""
    return {name: int(page.locator(f'[data-figure="{name}"]').first.get_attribute("data-value")) for name in SHOWN}


def list_sums(page, server, query: dict[str, str]) -> dict[str, int]:
    """What the session list's rows (``/sessions.json``, every page) sum to."""
    rows, number = [], 1
    while True:
        listing = json.loads(page.request.get(f"{server.url}/sessions.json?{urlencode(query | {'page': number})}").text())
        rows += listing["sessions"]
        if number >= listing["pages"]:
            break
        number += 1
    sums = {name: sum(r[name] for r in rows) for name in SHOWN if name != "sessions"}
    assert sums["tokens"] == sum(r[k] for r in rows for k in TOKEN_KINDS)
    return sums | {"sessions": len(rows)}


def test_the_overview_draws_its_charts_and_its_totals_equal_the_lists(server, page):
    page.goto(server.url + "/overview")
    page.wait_for_selector("svg.bars")
    charts = page.locator("figure.chart")
    assert charts.count() >= 6
    sessions_chart = page.locator('figure.chart[data-chart="Sessions"] svg.bars')
    assert sessions_chart.get_attribute("role") == "img" and "per day" in sessions_chart.get_attribute("aria-label")
    days = sessions_chart.locator("g.day")
    assert days.count() == 30  # the default range: the last 30 days
    bars = sessions_chart.locator("rect.c-sessions")
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert bars.count() >= 5 and all(h > 0 for h in heights) and max(heights) == 100  # scaled to the busiest day
    assert "sessions" in days.first.locator("title").text_content()
    box = sessions_chart.bounding_box()
    assert box["width"] > 200 and box["height"] > 50  # drawn, not collapsed
    fill = page.evaluate("getComputedStyle(document.querySelector('rect.c-sessions')).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)")  # coloured by the stylesheet's variables
    assert page.locator('table.breakdown[data-breakdown="model"] svg.hbar').count() >= 2

    overview = shown(page)
    since, until = page.locator('input[name="since"]').input_value(), page.locator('input[name="until"]').input_value()
    assert overview == list_sums(page, server, {"since": since, "until": until})

    # One developer, same range: their page, the timeline's totals row and the list agree.
    developer = page.locator('table.breakdown[data-breakdown="user"] td.name a').first
    name = developer.text_content()
    developer.click()
    page.wait_for_url("**/users/**")
    mine = shown(page)
    query = {"user": name, "since": since, "until": until}
    assert mine == list_sums(page, server, query) and 0 < mine["sessions"] < overview["sessions"]
    assert page.locator("tr.session-row").count() == min(50, mine["sessions"])
    page.goto(f"{server.url}/?{urlencode(query)}")
    assert shown(page) == mine
    assert page.locator("tr.session-row").count() == min(50, mine["sessions"])
    page.locator("#list-totals a.to-overview").click()
    page.wait_for_url("**/overview?**")
    assert shown(page) == mine


def test_a_new_session_reaches_the_open_overview_without_reload(server, page):
    page.goto(server.url + "/overview")
    expect(page.locator("#live-indicator.connected")).to_be_visible()
    page.evaluate("window.__notReloaded = true")
    before = shown(page)
    store = open_store(server.store_url)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    store.append("AgentSession-0verv1ew-0000-4000-8000-000000000001", [NewEvent("overview-live-1", "UserMessageReceived", {
        "timestamp": now, "content": "a session started while the overview is open",
        "extensions": {"claude_code": {"kind": "prompt"}}})])
    store.close()
    expect(page.locator('[data-figure="sessions"]').first).to_have_attribute("data-value", str(before["sessions"] + 1))
    assert page.evaluate("window.__notReloaded") is True


MINE = ".list-totals, section.figures, .charts, figure.chart, svg.bars, .table-wrap, .overview-form"
"""What these pages add: each must fit the content column at any width."""


@pytest.mark.parametrize("path", ["/overview", "/", "users", "repos"])
def test_no_sideways_scroll_at_390_px(server, page, path):
    page.set_viewport_size({"width": 390, "height": 844})
    if path in ("users", "repos"):
        page.goto(server.url + "/overview")
        page.locator(f'table.breakdown[data-breakdown="{path[:-1] if path == "users" else "repo"}"] td.name a').first.click()
        page.wait_for_load_state()
    else:
        page.goto(server.url + path)
    outside = page.evaluate("""(mine) => {
        const box = document.querySelector('main.content').getBoundingClientRect();
        return [...document.querySelectorAll(mine)].filter(el => el.getBoundingClientRect().right > box.right + 0.5)
                                                    .map(el => el.tagName + '.' + (el.className.baseVal ?? el.className)); }""", MINE)
    assert page.locator(MINE).count() >= 2 and outside == [], f"{page.url}: {outside} stick out of the content column"
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"{page.url} scrolls sideways at 390 px: {widths}"
