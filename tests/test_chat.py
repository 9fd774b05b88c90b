"""The chat replay against the real sample transcripts in a real SQLite store."""

from __future__ import annotations

import json
import re

import pytest
from render_fixtures import EDGE, edge_store, sample_store

from kapacitor.server.chat import ChatItem, chat_items, render_chat

SUBAGENT_SESSION = "708f24f2-dc3e-4588-a43d-59d69a508ed0"
EDIT_SESSION = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"
DENIAL_SESSION = "97617f62-6fd5-442d-bb39-3ca75bd8c3e3"
TODO_SESSION = "922a15d3-3e4d-471a-9a7e-754f15615295"


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    yield from sample_store(tmp_path_factory)


def tools(items: list[ChatItem]) -> list:
    return [item.tool for item in items if item.kind == "tool"]


def test_prompt_and_assistant_text_in_order(samples):
    items = chat_items(samples, SUBAGENT_SESSION)
    assert items[0].kind == "prompt" and items[0].text == "create hello.py and run it"
    kinds = [item.kind for item in items]
    assert kinds.index("thinking") < kinds.index("text") < kinds.index("tool")
    html = render_chat(SUBAGENT_SESSION, items)
    assert "create hello.py and run it" in html
    assert "The user wants hello.py created and run." in html  # thinking, folded
    assert re.search(r'<details class="chat-item folded thinking"', html)


def test_every_tool_call_is_paired_with_its_result(samples):
    calls = tools(chat_items(samples, SUBAGENT_SESSION))
    assert [c.name for c in calls] == [
        "TaskCreate", "TaskCreate", "Write", "Bash", "Read", "Agent", "Bash", "TaskUpdate", "TaskUpdate",
    ]  # fmt: skip
    assert all(c.result is not None for c in calls)
    failing = calls[6]
    assert failing.is_error and "No such file or directory" in failing.result
    assert [c.is_error for c in calls].count(True) == 1
    assert failing.duration_ms == pytest.approx(124.0)


def test_subagent_is_inlined_under_its_agent_call(samples):
    items = chat_items(samples, SUBAGENT_SESSION)
    agent = next(c for c in tools(items) if c.call_id == "toolu_6f53674e7b3340709c2abc90")
    assert agent.subagent is not None and agent.subagent.agent_id == "aaa13d7d127c8c4a2"
    assert agent.subagent.outcome == "completed"
    inner = tools(agent.subagent.items)
    assert [(c.name, c.result) for c in inner] == [
        ("Read", "1\tprint('hello from fake claude')\n2\t"),
        ("Bash", "1 hello.py"),
    ]
    # the subagent's calls are not repeated at the top level
    assert "toolu_a1b240fd02754de1a832675f" not in {c.call_id for c in tools(items)}
    html = render_chat(SUBAGENT_SESSION, items)
    agent_item = html[html.index('class="chat-item tool tool-Agent') :]
    agent_item = agent_item[: agent_item.index('class="chat-item tool tool-Bash error')]
    assert "wc -l hello.py" in agent_item and 'class="subagent"' in agent_item
    assert "Review complete" in agent_item


def test_compaction_command_and_meta_are_in_place(samples):
    """The client writes the boundary and summary before the ``/compact`` that
    caused them: the chat shows the command first, as it happened."""
    items = chat_items(samples, SUBAGENT_SESSION)
    kinds = [item.kind for item in items]
    assert kinds[-5:] == ["meta", "command", "compaction", "compact_summary", "command_output"]
    assert items[-4].timestamp <= items[-3].timestamp
    html = render_chat(SUBAGENT_SESSION, items)
    assert "context compacted" in html and "20,513 tokens before" in html
    assert '<code class="command-line">/compact</code>' in html
    assert "&lt;local-command-stdout&gt;" not in html  # wrapper tag stripped, text kept
    assert "PreCompact [python3" in html


def test_edit_is_a_diff_and_markdown_code_is_highlighted(samples):
    html = render_chat(EDIT_SESSION, chat_items(samples, EDIT_SESSION))
    assert "test_add fails, please fix add()" in html
    diff = html[html.index('<div class="diff">') :]
    assert '<span class="gd">-    return a - b</span>' in diff
    assert '<span class="gi">+    return a + b</span>' in diff
    assert "@@ -1,2 +1,2 @@" in diff  # from the structured patch: real line numbers
    block = re.search(
        r'<pre class="hl"><code><span class="k">def</span>.*?</code></pre>', html, re.DOTALL
    )
    assert block and '<span class="nf">add</span>' in block.group(0)
    assert "<table>" in html and "<th>before</th>" in html
    # Read shows the file excerpt highlighted, with the file's line numbers
    assert '<span class="linenos">2</span>' in html


def test_permission_denials_are_shown_on_their_calls(samples):
    items = chat_items(samples, DENIAL_SESSION)
    calls = tools(items)
    assert [(c.name, (c.interrupt or {}).get("outcome")) for c in calls] == [
        ("Write", "denied"),
        ("Bash", "denied"),
    ]
    assert not any(item.kind == "interrupt" for item in items)
    html = render_chat(DENIAL_SESSION, items)
    assert html.count("permission denied") == 2


def test_todo_write_is_a_checklist(samples):
    html = render_chat(TODO_SESSION, chat_items(samples, TODO_SESSION))
    assert (
        '<li class="todo todo-in_progress"><span class="mark">◐</span> Create hello.py</li>' in html
    )
    assert '<li class="todo todo-completed"><span class="mark">☑</span> Run hello.py</li>' in html


def test_json_twin_is_json(samples):
    items = chat_items(samples, SUBAGENT_SESSION)
    data = json.loads(json.dumps([item.as_json() for item in items]))
    agent = next(d for d in data if d.get("tool", {}).get("name") == "Agent")
    assert [
        i["tool"]["name"] for i in agent["tool"]["subagent"]["items"] if i["kind"] == "tool"
    ] == ["Read", "Bash"]
    assert data[0] == {
        "kind": "prompt",
        "timestamp": data[0]["timestamp"],
        "text": "create hello.py and run it",
        "id": items[0].id,
    }


def test_unknown_session_is_empty(samples):
    assert chat_items(samples, "no-such-session") == []
    assert render_chat("no-such-session", []) == ""


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    yield from edge_store(tmp_path_factory)


def test_edge_cases_in_place(edge):
    items = chat_items(edge, EDGE)
    assert [(i.kind, i.tool.name if i.tool else i.text) for i in items] == [
        ("prompt", "look at this"),
        ("thinking", ""),
        ("tool", "Agent"),
        ("tool_result", "stray"),
        ("api_error", "overloaded"),
        ("interrupt", "[Request interrupted by user]"),
        ("text", "after"),
        ("tool", "Agent"),  # the subagent no call started, at the end
    ]
    assert items[0].detail["images"] == [{"type": "image", "media_type": "image/png", "bytes": 3, "block": 1}]
    html = render_chat(EDGE, items)
    for shown in (
        '<img class="attached" loading="lazy" decoding="async" src="data:image/png;base64,AAAA"',
        "thinking (encrypted)",
        "API error (retry 2)",
        "user interrupt",
        "stray",
        "nobody called me",
    ):
        assert shown in html
    orphan = html[html.index("nobody called me") :]
    assert "<summary>answer</summary>" not in orphan and "no result recorded" not in orphan


def test_subagents_nest_recursively(edge):
    outer = chat_items(edge, EDGE)[2].tool
    assert outer.subagent.agent_id == "a1111111111111111"
    inner = next(i.tool for i in outer.subagent.items if i.kind == "tool")
    assert inner.subagent.agent_id == "a2222222222222222"
    assert [(i.kind, i.tool.name if i.tool else i.text) for i in inner.subagent.items] == [
        ("subagent_prompt", "look deeper"), ("tool", "Bash"), ("text", "deep done"),
    ]  # fmt: skip
    html = render_chat(EDGE, chat_items(edge, EDGE))
    deep = html.index("ls deep")
    assert html.count('<div class="subagent">', 0, deep) == 2  # two subagent levels open around it


def test_task_updates_name_the_task_they_change(samples):
    html = render_chat(SUBAGENT_SESSION, chat_items(samples, SUBAGENT_SESSION))
    assert (
        '<li class="todo todo-completed"><span class="mark">☑</span> Task #1: Create hello.py</li>'
        in html
    )
    assert "#2 Run hello.py → completed" in html
