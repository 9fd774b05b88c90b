"""The Memory page and the search box in real headless Chromium, against the
real server over the recorded sessions (their GitHub remotes as recorded)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from test_browser import recorded_context

from browser import start_server
from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.memory import facts
from kapacitor.store import open_store

API_FIX = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("memory-pages")
    url = f"sqlite://{tmp / 'events.db'}"
    store = open_store(url)
    import_paths(store, SAMPLE_DIRS, resolve_context=recorded_context)
    facts.retain(store, "the agent's fact from the fix session", "acme/api-server",
                 facts.Provenance("agent", "dev@example.com", API_FIX, (store.read_all()[5].id,)))
    store.close()
    server = start_server(url, tmp / "home")
    yield server
    assert "Traceback" not in server.stop()


def test_search_box_highlights_hits_and_jumps_to_the_chat_position(server, page):
    page.goto(server.url + "/")
    page.fill(".top-search input", '"Ran 1 test"')
    page.press(".top-search input", "Enter")
    page.wait_for_url("**/search?q=*")
    hit = page.locator(".hit", has=page.locator(f'a[href^="/sessions/{API_FIX}#e-"]')).first
    expect(hit.locator("mark").first).to_contain_text("Ran 1 test")
    expect(hit).to_contain_text("tool output Bash")
    hit.locator("a.hit-link").click()
    page.wait_for_url(f"**/sessions/{API_FIX}#e-*")
    anchor = page.url.split("#", 1)[1]
    target = page.locator(f"#{anchor}")
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\banchored\b"))
    expect(target).to_contain_text("python3 -m unittest -q")
    assert page.dialogs == []


def test_search_hits_are_grouped_by_session_as_the_json_ranks_them(server, page):
    """Each session's title once, its hits under it with their count, sessions in
    the order of their best hit: /api/search's flat list grouped by session_id."""
    hits = server.get_json("/api/search?q=test")
    sessions = list(dict.fromkeys(h["session_id"] for h in hits))
    assert len(hits) > len(sessions) > 1  # some session has several hits
    page.goto(server.url + "/search?q=test")
    expect(page.locator("p.muted", has_text="hits in")).to_have_text(f"{len(hits)} hits in {len(sessions)} sessions")
    groups = page.locator(".hit-session")
    expect(groups).to_have_count(len(sessions))
    for n, sid in enumerate(sessions):
        mine = [h for h in hits if h["session_id"] == sid]
        head = groups.nth(n).locator(".hit-session-head")
        expect(head.locator("a")).to_have_attribute("href", f"/sessions/{sid}")
        expect(head).to_contain_text(f"{len(mine)} hit" + ("s" if len(mine) > 1 else ""))
        assert groups.nth(n).locator(".hit-link").evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
            h["link"] for h in mine]
        expect(head.locator("a")).to_have_text(mine[0]["title"] or sid)  # the title once, at the head
        assert mine[0]["title"] not in " ".join(groups.nth(n).locator(".hit-link").all_inner_texts())
    top = page.locator(".top-search input")
    expect(top).to_have_attribute("placeholder", "Search all session text…")
    page.goto(server.url + "/")
    expect(page.locator("#q")).to_have_attribute("placeholder", re.compile(r"^Filter by title"))


def test_memory_page_adds_edits_and_retires_with_links_to_the_source(server, page):
    page.goto(server.url + "/memory/acme/api-server")
    agent_fact = page.locator(".fact", has_text="the agent's fact from the fix session")
    assert agent_fact.bounding_box()["width"] > 500  # a card as wide as the page, not the stats page's 110 px column
    retire = agent_fact.locator(".fact-retire button")
    add = page.locator(".fact-add button")
    assert retire.evaluate("b => getComputedStyle(b).borderRadius") == "6px"
    assert add.evaluate("b => getComputedStyle(b).backgroundColor") == page.locator(".filters button").evaluate(
        "b => getComputedStyle(b).backgroundColor")  # the app's accent button
    expect(agent_fact.locator(f'a[href^="/sessions/{API_FIX}#e-"]')).to_have_text("from session e3ace814")
    page.fill('.fact-add input[name="text"]', "run the tests with python3 -m unittest -q")
    page.fill('.fact-add input[name="category"]', "testing")
    page.click(".fact-add button")
    added = page.locator(".fact", has_text="run the tests with python3 -m unittest -q")
    expect(added).to_contain_text("testing")
    added.locator("summary").click()
    added.locator('.fact-edit input[name="text"]').fill("run the tests with python3 -m unittest -v")
    added.locator(".fact-edit button").click()
    edited = page.locator(".fact", has_text="unittest -v")
    expect(edited).to_be_visible()
    expect(page.locator(".fact", has_text="unittest -q")).to_have_count(0)
    edited.locator(".fact-retire button").click()
    expect(page.locator(".fact", has_text="unittest -v")).to_have_count(0)
    page.goto(server.url + "/memory/acme/api-server?all=1")
    expect(page.locator(".fact.superseded", has_text="unittest -q")).to_contain_text("superseded by")
    expect(page.locator(".fact.retired", has_text="unittest -v")).to_be_visible()
    page.goto(server.url + "/memory")
    expect(page.locator(".fact-scopes a", has_text="acme/api-server")).to_be_visible()
    page.fill('.fact-add input[name="text"]', "x" * 10)
    page.fill('.fact-add input[name="category"]', "Not One Word")
    page.click(".fact-add button")
    expect(page.locator(".form-error")).to_contain_text("one lowercase word")
