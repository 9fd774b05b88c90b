"""Long sessions and long outputs stay light: pages of items, folded and capped text."""

from __future__ import annotations

import re
import time

import pytest
from render_fixtures import Transcript, imported_store

from kapacitor.server.chat import chat_items, render_chat, size_of
from kapacitor.server.render.items import SUBAGENT_CAP
from kapacitor.server.render.output import FOLD_LINES, HARD_CAP, render_folded
from kapacitor.server.trace import render_trace, trace_tree

LONG = "0000a11c-0000-4000-8000-000000005000"
HUGE = "0000a11c-0000-4000-8000-00000000010b"
BUSY = "0000a11c-0000-4000-8000-000000000600"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcripts")
    long = Transcript(LONG)
    long.user("a very long session")
    for n in range(2500):  # 2 events per call and result: 5,000+ events
        long.tool("Bash", {"command": f"echo {n}"}, f"{n}")
    long.write(root)
    huge = Transcript(HUGE)
    huge.user("print a lot")
    huge.tool("Bash", {"command": "yes | head -c 10M"}, "y\n" * 5_000_000)
    huge.write(root)
    busy = Transcript(BUSY)
    busy.user("explore everything")
    sub = busy.subagent("a4444444444444444", busy.next_call_id())
    sub.user("explore")
    for n in range(600):
        sub.tool("Read", {"file_path": f"/src/f{n}.py"}, f"1\tx = {n}")
    busy.tool("Agent", {"description": "explore", "prompt": "explore"}, "explored")
    for n in range(3):
        busy.text(f"after {n}")
    busy.write(root)
    store = imported_store(tmp_path_factory, [root])
    yield store
    store.close()


def test_a_5000_event_session_renders_one_page_with_a_continuation(store):
    items = chat_items(store, LONG)
    assert len(items) == 2501
    html = render_chat(LONG, items, limit=200)
    assert len(re.findall(r'<details open class="chat-item tool', html)) == 199
    assert html.count('class="chat-item user prompt"') == 1
    assert html.endswith("</div>")
    tail = html[html.rindex("<div") :]
    assert f'hx-get="/sessions/{LONG}/chat?start=200"' in tail
    assert 'hx-trigger="revealed"' in tail and 'hx-swap="outerHTML"' in tail


def test_the_pages_cover_every_item_once(store):
    items = chat_items(store, LONG)
    seen, start = [], 0
    while True:
        html = render_chat(LONG, items, start=start, limit=1000)
        seen += re.findall(r"echo (\d+)</span>", html)
        more = re.search(r"chat\?start=(\d+)", html)
        if not more:
            break
        start = int(more.group(1))
    assert seen == [str(n) for n in range(2500)]


def test_a_page_renders_quickly(store):
    items = chat_items(store, LONG)
    began = time.perf_counter()
    render_chat(LONG, items, limit=200)
    assert time.perf_counter() - began < 2.0  # generous: a page is ~20 ms on the dev machine


def test_a_10_mb_output_is_capped_in_chat_and_trace(store):
    items = chat_items(store, HUGE)
    call = items[1].tool
    assert len(call.result) == 10_000_000  # all of it is kept...
    html = render_chat(HUGE, items)
    assert len(html) < HARD_CAP + 50_000  # ...but not all rendered
    assert f"show all ({5_000_000 - FOLD_LINES + 1:,}".replace(",", "") in html.replace(",", "")
    assert "9.8 MB not shown (of 10.0 MB)" in html
    trace = render_trace(trace_tree(store, HUGE))
    assert len(trace) < 50_000


def test_short_text_is_not_folded():
    assert render_folded("a\nb") == '<pre class="output">a\nb</pre>'


def test_folding_after_40_lines_keeps_every_line_once():
    text = "\n".join(f"line {n}" for n in range(1, 101))
    html = render_folded(text)
    head, rest = html.split('<details class="more">')
    assert head.count("line ") == 40 and "line 40\n" not in head and "line 40<" in head
    assert "show all (60 more lines" in rest and rest.count("line ") == 60


def test_one_enormous_line_is_cut_in_the_head_too():
    html = render_folded("x" * 1_000_000)
    assert len(html) < HARD_CAP + 1_000
    assert "800.0 KB not shown (of 1.0 MB)" in html


def test_pages_count_subagent_items_and_a_long_subagent_is_capped(store):
    items = chat_items(store, BUSY)
    assert [i.kind for i in items] == ["prompt", "tool", "text", "text", "text"]
    assert size_of(items[1]) == 602  # the call, the subagent's prompt and its 600 calls
    first = render_chat(BUSY, items, limit=200)
    assert 'class="chat-item user prompt"' in first and "tool-Agent" not in first
    assert "chat?start=1" in first
    second = render_chat(BUSY, items, start=1, limit=200)  # one item, bigger than a page
    assert second.count("tool-Read") == SUBAGENT_CAP - 1  # the prompt counts too
    assert "101 more items of this subagent not shown" in second
    assert "chat?start=2" in second
    assert render_chat(BUSY, items, start=2, limit=200).count("after") == 3
