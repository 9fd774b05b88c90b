"""The chat and trace in real headless Chromium, served by the real server: a
hostile session never runs script, trace.js shows a node's details, and a long
chat loads its next pages as they scroll into view."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from render_fixtures import Transcript, imported_store
from test_render_security import SESSION as HOSTILE
from test_render_security import hostile_transcript

from browser import start_server
from conftest import SAMPLE_DIRS

HELLO = "708f24f2-dc3e-4588-a43d-59d69a508ed0"
LONG = "0000a11c-0000-4000-8000-000000000450"
CODE = "0000c0de-0000-4000-8000-000000000012"
APP_PY = [  # the trial's api/app.py: line 10 is indented as deep as line 9, line 17 as line 8
    "import json", "", "from api.ratelimit import RateLimiter", "", "LIMITER = RateLimiter(rate=100)", "", "",
    "def app(environ, start_response):", '    path = environ.get("PATH_INFO", "/")', '    if path == "/health":',
    '        return _json(start_response, "200 OK", {"ok": True})', '    return _json(start_response, "404 Not Found", {})',
    "", "", "", "", "def _json(start_response, status, body):", "    start_response(status, [])",
]  # fmt: skip
SCRIPT_TEXT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcripts")
    hostile_transcript().write(root)
    long = Transcript(LONG)
    long.user("a long session")
    for n in range(450):
        long.tool("Bash", {"command": f"echo {n}"}, f"{n}")
    long.write(root)
    code = Transcript(CODE)
    code.user("read api/app.py")
    numbered = "".join(f"{n:>6}\t{line}\n" for n, line in enumerate(APP_PY, 1))
    code.tool("Read", {"file_path": "/home/dev/src/api/api/app.py"}, numbered)
    code.write(root)
    store = imported_store(tmp_path_factory, [*SAMPLE_DIRS, root])
    url = f"sqlite://{store.path}"
    store.close()
    server = start_server(url, tmp_path_factory.mktemp("home"))
    yield server
    server.stop()


@pytest.mark.parametrize("tab", ["", "/trace"])
def test_a_hostile_session_is_text_and_never_runs(server, page, tab):
    page.goto(f"{server.url}/sessions/{HOSTILE}{tab}")
    page.wait_for_load_state("networkidle")
    if tab:  # show every node's details in turn
        for node in page.locator(".tnode").all():
            node.click()
    expect(page.locator("#tab-body")).to_contain_text(SCRIPT_TEXT)
    assert page.dialogs == []
    assert (
        page.locator("#tab-body script, #tab-body img, #tab-body iframe, #tab-body svg").count()
        == 0
    )
    handlers = page.evaluate(
        """() => [...document.querySelectorAll('#tab-body *')].flatMap(e =>
             [...e.attributes].filter(a => a.name.startsWith('on') || /^\\s*javascript:/i.test(a.value))
             .map(a => e.tagName + ' ' + a.name))"""
    )
    assert handlers == []


def test_selecting_a_trace_node_shows_its_details(server, page):
    page.goto(f"{server.url}/sessions/{HELLO}/trace")
    panel = page.locator(".trace-detail")
    expect(panel).to_contain_text("Select a node")
    failing = page.locator(".tnode.error", has_text="cat does_not_exist.txt")
    failing.click()
    expect(failing).to_have_class("tnode kind-tool error selected")
    expect(panel).to_contain_text("No such file or directory")
    expect(panel).to_contain_text('"command": "cat does_not_exist.txt"')
    # a row with children: clicking its label selects it and keeps it open; the twisty folds it
    agent = page.locator("summary.tnode", has_text="Agent Review hello.py")
    agent.locator(".tlabel").click()
    expect(panel).to_contain_text("toolu_6f53674e7b3340709c2abc90")
    inner = page.locator(".tnode", has_text="Bash wc -l hello.py")
    expect(inner).to_be_visible()
    agent.locator(".twisty").click()
    expect(inner).to_be_hidden()
    # the keyboard selects too
    page.locator(".tnode", has_text="Read /home/dev/src/widgets/hello.py").first.focus()
    page.keyboard.press("Enter")
    expect(panel).to_contain_text("print('hello from fake claude')")


def test_a_long_chat_loads_the_next_pages_as_they_scroll_into_view(server, page):
    page.goto(f"{server.url}/sessions/{LONG}")
    tools = page.locator(".chat-item.tool")
    expect(tools).to_have_count(199)  # the prompt and 199 calls: the first page
    for expected in (399, 450):
        page.locator(".chat-more").scroll_into_view_if_needed()
        expect(tools).to_have_count(expected)
    expect(page.locator(".chat-more")).to_have_count(0)
    expect(tools.last).to_contain_text("echo 449")


def test_a_large_trace_fetches_a_nodes_details_when_selected(server, page):
    page.goto(f"{server.url}/sessions/{LONG}/trace")
    expect(page.locator("[data-trace]")).to_have_attribute("data-detail-url", f"/sessions/{LONG}/trace/detail")
    assert page.locator("template.tdetail").count() == 0
    panel = page.locator(".trace-detail")
    node = page.locator(".tnode.kind-tool .tlabel", has_text=re.compile(r"^Bash echo 321$"))
    node.click()
    expect(panel).to_contain_text('"command": "echo 321"')
    page.locator(".tnode.kind-tool .tlabel", has_text=re.compile(r"^Bash echo 5$")).click()
    expect(panel).to_contain_text('"command": "echo 5"')
    node.click()  # fetched once, then kept
    expect(panel).to_contain_text('"command": "echo 321"')
    assert page.locator("template.tdetail").count() == 2
    response = page.request.get(f"{server.url}/sessions/{LONG}/trace/detail?node=no-such-node")
    assert response.status == 404


def test_a_files_code_column_lines_up_past_line_9(server, page):
    """Line 10's code starts where line 9's does (the line numbers are one gutter,
    as wide as the widest), so Python reads with its real indentation; and the
    tool's duration badge reads "100 ms", not "100 MS" (no other page's rule reaches it)."""
    page.goto(f"{server.url}/sessions/{CODE}")
    read = page.locator(".chat-item.tool", has_text="app.py")
    read.evaluate("e => { e.open = true; }")
    numbers = read.locator(".result.file .linenos")
    expect(numbers).to_have_count(len(APP_PY))
    expect(numbers.nth(9)).to_be_visible()
    starts = page.evaluate(
        """() => [...document.querySelectorAll('.result.file .linenos')].map(n => {
             const r = document.createRange(); r.selectNode(n.nextSibling); return r.getBoundingClientRect().left; })"""
    )
    assert starts[8] == starts[9]  # line 9 "    path = …", line 10 "    if path == …"
    assert starts[7] == starts[16]  # "def app" and "def _json"
    assert len(set(starts)) == 1 and starts[0] > numbers.nth(9).bounding_box()["x"]
    badge = read.locator(".badge.time")
    expect(badge).to_have_text("100 ms")
    assert badge.inner_text() == "100 ms"
    assert badge.evaluate("e => getComputedStyle(e).textTransform") == "none"
