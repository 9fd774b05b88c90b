"""A filter form with a bad value, in real Chromium on the real server with the
bundled demo: the overview, the timeline, a developer's page, search and Memory
keep their form and say what is wrong where their results were (the page a 422),
a backwards range offers to swap its days, and the JSON twins stay FastAPI's 422;
a session's tabs keep the page too."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser import start_server

FROM, TO = "2026-11-30", "2026-11-01"
BACKWARDS = f"the range starts ({FROM}) after it ends ({TO})"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(None, tmp_path_factory.mktemp("home"), "--demo")
    yield server
    assert "Traceback" not in server.stop()


def test_the_overview_keeps_its_form_when_from_is_after_to(server, page):
    page.goto(server.url + "/overview")
    form = page.locator("form.overview-form")
    form.locator('input[name="since"]').fill(FROM)
    form.locator('input[name="until"]').fill(TO)
    with page.expect_navigation() as shown:
        form.locator('button[type="submit"]').click()
    assert shown.value.status == 422
    expect(page.locator(".form-problems[role=alert]")).to_contain_text(f"Nothing to show: {BACKWARDS}.")
    expect(form.locator('input[name="since"]')).to_have_value(FROM)  # the form stays, as it was filled
    expect(form.locator('input[name="until"]')).to_have_value(TO)
    assert page.locator("section.figures").count() == 0  # no figures for a range that is none
    page.locator(".form-problems a.swap").click()
    page.wait_for_url(re.compile(rf"since={TO}&until={FROM}"))
    expect(page.locator("section.figures")).to_be_visible()
    expect(form.locator('input[name="since"]')).to_have_value(TO)
    answer = page.request.get(f"{server.url}/overview.json?since={FROM}&until={TO}")
    assert answer.status == 422 and answer.json() == {"detail": BACKWARDS}


def test_the_timeline_says_why_in_place_and_recovers(server, page):
    page.goto(server.url + "/")
    expect(page.locator("tr.session-row").first).to_be_visible()
    filters = page.locator("#filters")
    filters.locator('input[name="until"]').fill(TO)
    filters.locator('input[name="since"]').fill(FROM)  # htmx asks on each change; the 422 is swapped in
    expect(page.locator("#timeline .form-problems")).to_contain_text(BACKWARDS)
    expect(page).to_have_url(re.compile(rf"since={FROM}&until={TO}"))
    assert page.locator("tr.session-row").count() == 0 and filters.is_visible()
    filters.locator('input[name="since"]').fill("2026-01-01")
    expect(page.locator("#timeline .form-problems")).to_have_count(0)
    answer = page.request.get(f"{server.url}/sessions.json?since={FROM}&until={TO}")
    assert answer.status == 422 and answer.json() == {"detail": BACKWARDS}


def test_a_day_not_on_the_calendar_keeps_the_developer_page_and_search(server, page):
    page.goto(server.url + "/overview")
    page.locator('table.breakdown[data-breakdown="user"] td.name a').first.click()
    page.wait_for_url("**/users/**")
    developer = page.url.split("?")[0]
    answer = page.goto(f"{developer}?since=2026-02-30&q=rate")
    assert answer.status == 422
    expect(page.locator(".form-problems")).to_contain_text("since: '2026-02-30' is not a calendar day")
    expect(page.locator('form.overview-form input[name="q"]')).to_have_value("rate")
    expect(page.locator("h1 .kind")).to_have_text("Developer")
    answer = page.goto(f"{server.url}/search?q=rate&since=yesterday")
    assert answer.status == 422
    expect(page.locator(".form-problems")).to_contain_text("since: 'yesterday' is neither a day (YYYY-MM-DD) nor a duration")
    expect(page.locator('form.filters input[name="q"]')).to_have_value("rate")
    assert page.request.get(f"{server.url}/api/search?q=rate&since=yesterday").status == 422


def test_memory_and_a_sessions_tabs_keep_their_page_when_a_value_is_bad(server, page):
    """The rule of every page, not only those with dates: ``/memory?all=xyz`` keeps
    its form (the words asked for in it) and says what is wrong where the facts
    were, and a session's tab with a bad value keeps its header and tabs, the
    problem where the tab's body was, with a link to the page without it."""
    answer = page.goto(f"{server.url}/memory?q=tests&all=xyz")
    assert answer.status == 422
    expect(page.locator(".form-problems")).to_contain_text("Nothing to show: all: Input should be a valid boolean")
    form = page.locator("form.filters")
    expect(form.locator('input[name="q"]')).to_have_value("tests")
    with page.expect_navigation() as shown:
        form.locator('button[type="submit"]').click()
    assert shown.value.status == 200
    expect(page.locator("ul.fact-list")).to_be_visible()
    assert page.request.get(f"{server.url}/memory/acme/api?all=maybe").status == 422

    page.goto(server.url + "/")
    session = page.locator("tr.session-row").first.get_attribute("data-session")
    for tab, query, said in (("", "upto=abc", "upto: Input should be a valid integer"),
                             ("/trace", "fragment=xyz", "fragment: Input should be a valid boolean"),
                             ("/eval", "fragment=maybe", "fragment: Input should be a valid boolean")):
        answer = page.goto(f"{server.url}/sessions/{session}{tab}?{query}")
        assert answer.status == 422, (tab, query)
        expect(page.locator(".form-problems")).to_contain_text(f"Nothing to show: {said}")
        expect(page.locator("nav.tabs")).to_be_visible()
        expect(page.locator("#session-head")).to_be_visible()
        page.get_by_role("link", name="Open the page without them").click()
        expect(page.locator("#tab-body")).to_be_visible()
        expect(page).to_have_url(f"{server.url}/sessions/{session}{tab}")
