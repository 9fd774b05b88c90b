"""The dashboard in real headless Chromium against the real server on a loopback
port, on a store filled by importing the sample transcripts (plus one session
whose prompt is an XSS attempt)."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from browser import start_server
from conftest import RECORDED, SAMPLE_DIRS
from kapacitor.capture.gitinfo import github_repository
from kapacitor.capture.importer import import_paths
from kapacitor.capture.synthetic import copy_text
from kapacitor.events import NewEvent
from kapacitor.store import open_store

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
WIDGETS = "acme/widgets"
HELLO = "708f24f2-dc3e-4588-a43d-59d69a508ed0"


def recorded_context(cwd: str) -> dict:
    """What the recording machine knew of each directory (sessions.json): its
    GitHub remote, if it had one. (Git is not asked: the directories are not here.)"""
    remotes = [s["remote"] for s in json.loads((RECORDED / "sessions.json").read_text()).values() if s["cwd"] == cwd and s["remote"]]
    context = {"user": "dev@example.com"}
    if remotes:
        context |= {"remote_url": remotes[0], "repository": github_repository(remotes[0])}
    return context


def xss_transcripts(target):
    """A copy (fresh ids) of a real session whose prompt is an XSS attempt."""
    source = RECORDED / "projects" / "-home-dev-notes"
    for path in source.glob("*.jsonl"):
        data = copy_text(path.read_bytes(), 99).replace(b"write my todo list to todo.md", XSS.encode())
        out = target / "-home-dev-notes" / copy_text(path.name.encode(), 99).decode()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite://{tmp / 'events.db'}"
    store = open_store(url)
    import_paths(store, [*SAMPLE_DIRS, xss_transcripts(tmp / "xss")], resolve_context=recorded_context)
    store.close()
    server = start_server(url, tmp / "home")
    yield server
    assert "Traceback" not in server.stop()


def test_sidebar_lists_the_sample_repositories(server, page):
    page.goto(server.url + "/")
    names = page.locator("#repo-list li[data-name]").evaluate_all("els => els.map(e => e.dataset.name)")
    assert sorted(names) == sorted(["/home/dev/notes", "acme/api-server", WIDGETS, "/home/sam/work/repo"])
    expect(page.locator("#repo-list")).to_contain_text("~dev/notes")
    widgets = page.locator(f"#repo-list li[data-name='{WIDGETS}']")
    expect(widgets.locator(".name")).to_have_text("acme/widgets")
    expect(widgets.locator(".count")).to_have_text("2")


def test_sidebar_click_and_filters_scope_the_timeline(server, page):
    page.goto(server.url + "/")
    expect(page.locator("tr.session-row")).to_have_count(6)
    page.locator("#repo-filter").fill("api")
    expect(page.locator("#repo-list li[data-name]:visible")).to_have_count(1)
    page.locator("#repo-filter").fill("")
    page.locator(f"#repo-list li[data-name='{WIDGETS}'] a").click()
    expect(page.locator("tr.session-row")).to_have_count(2)
    assert "repo=" in page.url and page.locator(f"#repo-list li.active[data-name='{WIDGETS}']").count() == 1
    page.locator("#q").fill("track the steps")
    expect(page.locator("tr.session-row")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=track"))
    page.reload()  # the URL holds the filter state
    expect(page.locator("tr.session-row")).to_have_count(1)
    expect(page.locator("#q")).to_have_value("track the steps")
    page.goto(server.url + "/")
    page.select_option("select[name=repo]", "acme/api-server")
    expect(page.locator("#page-head h1")).to_have_text("acme/api-server")
    expect(page.locator("tr.session-row")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"repo=acme%2Fapi-server"))


def test_chat_shows_the_prompt_a_highlighted_code_block_and_the_subagent_inline(server, page):
    page.goto(f"{server.url}/sessions/{HELLO}")
    expect(page.locator(".chat .chat-item.user").first).to_contain_text("create hello.py and run it")
    code = page.locator(".chat pre.hl").filter(has_text="print('hello from fake claude')").first
    expect(code).to_be_visible()
    assert code.locator("span.gi").count() > 0  # Pygments marked the added line
    agent = page.locator(".chat .chat-item.tool-Agent")
    expect(agent.locator(".subagent .chat-item").first).to_contain_text("SUBAGENT_REVIEW")
    assert agent.locator(".subagent .chat-item.tool").count() >= 1


TREE_ORDER = """els => els.map(e => {
  let inSubagent = false;
  for (let d = e.parentElement.closest('details'); d; d = d.parentElement.closest('details'))
    if (d.querySelector(':scope > summary.kind-subagent')) inSubagent = true;
  return [inSubagent, e.querySelector('.tlabel').textContent.split(' ')[0]];
})"""


def test_trace_shows_the_tool_calls_in_order(server, page):
    store = open_store(server.store_url)
    def calls(stream):
        return [c["tool_name"] for e in store.read_stream(stream) if e.type == "AssistantToolCallsGenerated" for c in e.data["tool_calls"]]
    main = calls(f"AgentSession-{HELLO}")
    sub = calls(f"AgentSubsession-{HELLO}-aaa13d7d127c8c4a2")
    store.close()
    page.goto(f"{server.url}/sessions/{HELLO}/trace")
    nodes = page.locator(".trace .tnode.kind-tool, .trace .tnode.kind-todo").evaluate_all(TREE_ORDER)
    assert [name for inside, name in nodes if not inside] == main and len(main) >= 4
    assert [name for inside, name in nodes if inside] == sub and sub
    page.locator(".trace .tnode.kind-tool, .trace .tnode.kind-todo").first.click()
    expect(page.locator(".trace-detail")).to_contain_text(main[0])


TRACK = """nodes => nodes.map(n => {
  const bar = n.querySelector(':scope > .tbar').getBoundingClientRect(), label = n.querySelector(':scope > .tlabel').getBoundingClientRect();
  return [n.className, Math.round(bar.left), Math.round(bar.right), bar.top >= label.bottom];
})"""


@pytest.mark.parametrize("width", [1440, 1024, 390])
def test_every_trace_bar_spans_exactly_the_time_axis(server, page, width):
    """The scale above the tree and every row's bar track share one box, with the
    comment buttons comments.js adds to each row, on a row whose bar wraps below
    its label at 390 px, and on a selected row (its comment button shown)."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{server.url}/sessions/{HELLO}/trace")
    expect(page.locator("[data-trace] .tnode > .comment-btn").first).to_be_attached()
    nodes = page.locator("[data-trace] .tnode")

    def tracks() -> list:
        scale = page.locator(".tbar-scale").bounding_box()
        axis = (round(scale["x"]), round(scale["x"] + scale["width"]))
        rows = nodes.evaluate_all(TRACK)
        assert len(rows) >= 10 and scale["width"] > 0
        assert [(kind, left, right) for kind, left, right, _ in rows if (left, right) != axis] == []
        return rows

    rows = tracks()
    if width == 390:
        wrapped = [kind for kind, *_, below in rows if below]
        assert wrapped and len(wrapped) < len(rows)  # some rows wrap their bar below the label, on the same axis
    nodes.first.click()
    expect(nodes.first).to_have_class(re.compile("selected"))
    tracks()


def test_stats_token_totals_equal_the_projection(server, page):
    page.goto(f"{server.url}/sessions/{HELLO}/stats")
    conn = sqlite3.connect(server.store_url.removeprefix("sqlite://"))
    sums = conn.execute(
        "SELECT sum(input_tokens), sum(output_tokens), sum(cache_read_input_tokens), sum(cache_creation_input_tokens)"
        " FROM token_usage WHERE session_id = ?", (HELLO,)).fetchone()
    conn.close()
    shown = [int(page.locator(f"[data-stat={name}]").inner_text().replace(",", "")) for name in
             ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    assert shown == list(sums) and sums[1] > 0
    expect(page.locator(".bar-row[data-tool]").first).to_be_visible()


def test_each_tab_is_its_own_link(server, page):
    page.goto(f"{server.url}/sessions/{HELLO}")
    page.get_by_role("link", name="Stats", exact=True).click()
    expect(page).to_have_url(f"{server.url}/sessions/{HELLO}/stats")
    page.get_by_role("link", name="Trace", exact=True).click()
    expect(page).to_have_url(f"{server.url}/sessions/{HELLO}/trace")
    expect(page.locator(".tabs a.active")).to_have_text("Trace")


def test_a_live_append_shows_up_without_reload(server, page):
    sid = "97617f62-6fd5-442d-bb39-3ca75bd8c3e3"
    page.goto(f"{server.url}/sessions/{sid}/stats")
    expect(page.locator("#live-indicator.connected")).to_be_visible()
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#session-head .status")).not_to_have_text("running")
    before = page.locator(".facts").inner_text()
    store = open_store(server.store_url)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    store.append(f"AgentSession-{sid}", [NewEvent("browser-live-1", "UserMessageReceived", {
        "timestamp": now, "content": "one more thing", "extensions": {"claude_code": {"kind": "prompt"}}})])
    store.close()
    expect(page.locator("#session-head .status")).to_have_text("running")  # how fast: bench/live.py
    expect(page.locator(".facts")).not_to_have_text(before)
    expect(page.locator("#repo-list li[data-name='/home/dev/notes'] .dot.running")).to_be_visible()
    assert page.evaluate("window.__notReloaded") is True


def test_the_timeline_row_turns_running_without_reload(server, page):
    sid = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"
    page.goto(server.url + "/")
    expect(page.locator("#live-indicator.connected")).to_be_visible()
    row = page.locator(f"tr.session-row[data-session='{sid}']")
    expect(row.locator(".dot")).not_to_have_class(re.compile("running"))
    store = open_store(server.store_url)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    store.append(f"AgentSession-{sid}", [NewEvent("browser-live-row", "AssistantTextGenerated", {"timestamp": now, "text": "still here"})])
    store.close()
    expect(row.locator(".dot")).to_have_class(re.compile("running"))
    assert page.locator("#timeline").count() == 1  # refreshed in place, not nested
    expect(page.locator("#repo-list li[data-name='acme/api-server'] .dot")).to_have_class(re.compile("running"))


def test_a_live_prompt_appears_in_an_open_chat(server, page):
    page.goto(f"{server.url}/sessions/{HELLO}")
    expect(page.locator("#live-indicator.connected")).to_be_visible()
    page.evaluate("window.__notReloaded = true")
    store = open_store(server.store_url)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    store.append(f"AgentSession-{HELLO}", [NewEvent("browser-live-chat", "UserMessageReceived", {
        "timestamp": now, "content": "a prompt typed just now", "extensions": {"claude_code": {"kind": "prompt"}}})])
    store.close()
    expect(page.locator(".chat .chat-item.user").last).to_contain_text("a prompt typed just now")
    assert page.evaluate("window.__notReloaded") is True


def test_an_xss_prompt_is_shown_as_text_and_never_runs(server, page):
    page.goto(server.url + "/?q=script")
    row = page.locator("tr.session-row").first
    expect(row.locator(".title a")).to_contain_text(XSS)
    row.locator(".title a").click()
    expect(page.locator("#session-head h1")).to_contain_text(XSS)
    expect(page.locator(".chat .chat-item.user").first).to_contain_text(XSS)
    page.goto(page.url + "/trace")
    expect(page.locator(".trace")).to_contain_text(XSS)
    page.goto(page.url.removesuffix("/trace") + "/stats")
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert page.locator("img[src=x]").count() == 0
