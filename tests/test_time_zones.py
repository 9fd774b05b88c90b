"""Every time states its zone (issue 9, point 9): pages in the viewer's zone
(``?tz``, else the browser's via the ``tz`` cookie, else UTC) and saying so; the
JSON API takes ``tz=Area/City`` and answers ISO 8601 with offset; date filters
are days in that zone; the CLI uses the local zone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest
from transcript_builder import Transcript

from kapacitor import times
from kapacitor.capture.importer import import_paths
from kapacitor.server.app import create_app

LA_SESSION = "1a000000-0000-4000-8000-000000002008"
# 20:08 on July 19 in Los Angeles is 03:08 on July 20 in UTC.
STARTED = "2026-07-20T03:08:00.000Z"


@pytest.fixture
def app(store, store_path, tmp_path):
    t = Transcript(LA_SESSION)
    t.user("fix the nightly report", STARTED)
    t.text("Fixed.", "2026-07-20T03:09:00.000Z", "msg_tz", (1, 1, 1, 1))
    t.write(tmp_path / "p" / "-home-dev-src-ledger" / f"{LA_SESSION}.jsonl")
    import_paths(store, [tmp_path / "p"])
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    app.state.runner.catch_up()
    yield app
    app.state.close()


def get(app, url: str, status: int = 200, cookies: dict | None = None):
    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1", cookies=cookies) as client:
            return await client.get(url)

    response = asyncio.run(fetch())
    assert response.status_code == status, response.text
    return response.json() if response.headers["content-type"].startswith("application/json") else response.text


def ids(listing: dict) -> list[str]:
    return [s["session_id"] for s in listing["sessions"]]


def test_the_json_api_answers_in_the_zone_it_is_given_with_offset(app):
    listing = get(app, "/sessions.json?tz=America/Los_Angeles")
    assert listing["sessions"][0]["started"] == "2026-07-19T20:08:00.000-07:00" and listing["tz"] == "America/Los_Angeles"
    assert get(app, "/sessions.json")["sessions"][0]["started"] == "2026-07-20T03:08:00.000+00:00"  # UTC by default
    row = get(app, f"/sessions/{LA_SESSION}.json?tz=Asia/Tokyo")
    assert (row["started"], row["ended"]) == ("2026-07-20T12:08:00.000+09:00", "2026-07-20T12:09:00.000+09:00")
    assert "unknown time zone" in get(app, "/sessions.json?tz=Mars/Olympus", status=422)["detail"]


def test_date_filters_are_days_in_that_zone(app):
    la = "tz=America/Los_Angeles"
    assert ids(get(app, f"/sessions.json?since=2026-07-19&until=2026-07-19&{la}")) == [LA_SESSION]
    assert ids(get(app, f"/sessions.json?since=2026-07-20&{la}")) == []
    assert ids(get(app, "/sessions.json?since=2026-07-20&until=2026-07-20")) == [LA_SESSION]  # UTC's day
    assert ids(get(app, "/sessions.json?until=2026-07-19")) == []


def test_pages_show_times_in_the_viewer_s_zone_and_name_it(app):
    assert "2026-07-20 03:08 UTC" in get(app, f"/sessions/{LA_SESSION}")  # no zone known yet: UTC, stated
    page = get(app, f"/sessions/{LA_SESSION}", cookies={"tz": "America/Los_Angeles"})
    assert "2026-07-19 20:08 PDT" in page and 'datetime="2026-07-20T03:08:00.000+00:00"' in page
    assert "2026-07-20 05:08 CEST" in get(app, f"/sessions/{LA_SESSION}?tz=Europe/Oslo", cookies={"tz": "America/Los_Angeles"})
    timeline = get(app, "/?since=2026-07-19&until=2026-07-19", cookies={"tz": "America/Los_Angeles"})
    assert "Jul 19, 20:08 PDT" in timeline and "days and times in America/Los_Angeles" in timeline
    assert "Jul 19" not in get(app, "/?since=2026-07-19&until=2026-07-19", cookies={"tz": "Europe/Oslo"})
    assert "2026-07-19 20:08 PDT" in get(app, f"/sessions/{LA_SESSION}/stats", cookies={"tz": "America/Los_Angeles"})
    assert "20:08 PDT" in get(app, f"/sessions/{LA_SESSION}/head", cookies={"tz": "America/Los_Angeles"})


def test_a_bad_zone_cookie_falls_back_to_utc(app):
    assert "2026-07-20 03:08 UTC" in get(app, f"/sessions/{LA_SESSION}", cookies={"tz": "../../etc/passwd"})


def test_the_cli_shows_the_local_zone(app, store_path):
    env = dict(os.environ, TZ="America/Los_Angeles", COLUMNS="250")
    out = subprocess.run(
        [sys.executable, "-m", "kapacitor", "--store", f"sqlite://{store_path}", "sessions"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    assert "07-19 20:08 PDT" in out  # the year only when it is not this one
    found = subprocess.run(
        [sys.executable, "-m", "kapacitor", "--store", f"sqlite://{store_path}", "search", "nightly"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    assert "2026-07-19 20:08 PDT" in found and "03:08" not in found  # search names the same zone as sessions
    recap = subprocess.run(
        [sys.executable, "-m", "kapacitor", "--store", f"sqlite://{store_path}", "recap", LA_SESSION],
        capture_output=True, text=True, env=env, check=True,
    ).stdout
    assert "2026-07-19 20:08 PDT" in recap and "03:08" not in recap


def test_day_boundaries_follow_the_zone_s_offset_that_day():
    la = times.zone("America/Los_Angeles")
    assert times.day_start("2026-07-19", la) == "2026-07-19T07:00:00"  # PDT, UTC-7
    assert times.day_start("2026-01-19", la) == "2026-01-19T08:00:00"  # PST, UTC-8
    assert times.shown("2026-01-19T08:00:00Z", la) == "2026-01-19 00:00 PST"
    assert times.zone("Not/AZone") is None and times.zone("") is None


def test_a_browser_sees_its_own_zone_by_default(store_path, app, tmp_path):
    """Real Chromium set to Los Angeles: the first visit already shows the
    browser's zone, drawn by the server (the head script sets the cookie and
    loads the page again in that zone, once), so the overview's days, its zone
    label and every time agree, with the server's zone names (the trace's node
    details too); once the cookie is set, a page loads once."""
    from playwright.sync_api import expect, sync_playwright

    from browser import launch, start_server

    app.state.runner.close()
    server = start_server(f"sqlite://{store_path}", tmp_path / "home")
    try:
        with sync_playwright() as playwright:
            context = launch(playwright, tmp_path / "profile", timezone_id="America/Los_Angeles")
            page = context.new_page()
            page.goto(f"{server.url}/overview?since=2026-07-19&until=2026-07-19")  # the first visit
            expect(page.locator("html")).to_have_attribute("data-tz", "America/Los_Angeles")  # a locator: the CSP forbids eval
            assert "days in America/Los_Angeles" in page.locator(".page-head").text_content()
            assert server.get_json("/overview.json?since=2026-07-19&until=2026-07-19")["totals"]["sessions"] == 0  # UTC's day
            assert page.locator("[data-figure=sessions]").get_attribute("data-value") == "1"  # LA's day
            page.goto(f"{server.url}/sessions/{LA_SESSION}")
            expect(page.locator("html")).to_have_attribute("data-tz", "America/Los_Angeles")  # a locator: the CSP forbids eval
            assert page.locator("#session-head time").first.text_content() == "2026-07-19 20:08 PDT"
            page.goto(f"{server.url}/?since=2026-07-19&until=2026-07-19")
            assert page.locator("td.when time").first.text_content() == "Jul 19, 20:08 PDT"
            assert "days and times in America/Los_Angeles" in page.locator(".tz-note").text_content()
            loads = []
            page.on("load", lambda _: loads.append(page.url))
            page.goto(f"{server.url}/sessions/{LA_SESSION}/trace")
            page.locator(".tnode").first.click()
            expect(page.locator(".trace-detail")).to_contain_text("2026-07-19 20:08:00.000 PDT")
            assert len(loads) == 1  # the cookie is set: no second load
            context.close()
    finally:
        server.stop()


def test_the_evaluation_tab_and_the_trace_details_use_the_viewer_s_zone(app):
    from kapacitor.demo import demo_eval
    from kapacitor.eval.record import record_eval

    evaluation = {"session": LA_SESSION, "model": "m", "seconds": 1.0, "answers": {"broken_tests": {"score": 4, "finding": "ok"}},
                  "retrospective": {"assessment": "fine", "strengths": [], "issues": [], "suggestions": []}}
    record_eval(app.state.store, demo_eval(evaluation), {"repository": "", "user": ""})
    app.state.runner.catch_up()
    la = {"tz": "America/Los_Angeles"}
    meta = get(app, f"/sessions/{LA_SESSION}/eval", cookies=la).split('class="eval-meta')[1].split("</p>")[0]
    assert (" PST · judge" in meta or " PDT · judge" in meta) and "UTC" not in meta, meta
    trace = get(app, f"/sessions/{LA_SESSION}/trace", cookies=la)
    assert "2026-07-19 20:08:00.000 PDT" in trace and "03:08:00.000 UTC" not in trace
    assert "2026-07-20 03:08:00.000 UTC" in get(app, f"/sessions/{LA_SESSION}/trace")  # no zone known: UTC, stated
