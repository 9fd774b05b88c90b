"""The timeline's pager in real headless Chromium against the real server: Next
and Previous page by cursor through a list longer than a page, sorted by a
column, and an old page-number link still opens its page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from test_timeline_sort import copies

from browser import start_server
from kapacitor.capture.importer import import_paths
from kapacitor.store import open_store


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pager")
    copies(tmp / "copies")  # the sample transcripts in fresh-id copies: over two pages
    url = f"sqlite://{tmp / 'events.db'}"
    store = open_store(url)
    import_paths(store, [tmp / "copies"])
    store.close()
    server = start_server(url, tmp / "home")
    yield server
    assert "Traceback" not in server.stop()


def ids(page) -> list[str]:  # noqa: ANN001
    return page.locator("tr.session-row").evaluate_all("rows => rows.map(r => r.dataset.session)")


def test_next_and_previous_page_by_cursor(server, page):
    page.goto(server.url + "/?sort=tokens")
    pager = page.locator("nav.pager")
    expect(pager).to_contain_text(re.compile(r"^\s*1–50 of \d+ sessions"))
    first = ids(page)
    expect(pager.locator("a[rel=prev]")).to_have_count(0)
    pager.locator("a[rel=next]").click()
    expect(pager).to_contain_text("51–100 of")
    assert "sort=tokens" in page.url and "after=" in page.url and "page=" not in page.url
    second = ids(page)
    assert len(second) == 50 and not set(first) & set(second)
    pager.locator("a[rel=prev]").click()
    expect(pager).to_contain_text("1–50 of")
    assert ids(page) == first
    page.goto(server.url + "/?sort=tokens&page=2")  # an old bookmark
    expect(pager).to_contain_text("51–100 of")
    assert ids(page) == second
