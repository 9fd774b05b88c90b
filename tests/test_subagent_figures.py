"""A subagent's time and tokens are one count, the same on every tab.

Every recorded session (../shared/claude-code/recorded: 2.1.197, synchronous
agents; recorded-2.1.332: a background agent completed by its task notification,
and a synchronous one) is imported into a real SQLite store and served by the
real server. For every subagent, the chat (HTML and ``chat.json``), the trace
(HTML and ``trace.json``), the stats (HTML and ``stats.json``) and the session
row agree with each other and with what the subagent's own transcript records
say, computed here straight from the JSONL: its tokens are in + out + cache read
+ cache write over its own API requests (each request once: its message id and
request id), its time runs from its first timestamped record to its last.
The client's own figures (the task notification's ``total_tokens``, the size of
the agent's last request) are kept under ``client_reported`` and shown nowhere.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from html import unescape
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser import serve_imported
from conftest import RECORDED, SHARED
from kapacitor.server.format import span

RECORDED_332 = SHARED / "claude-code" / "recorded-2.1.332"
SOURCES = [RECORDED / "projects", RECORDED / "interactive" / "projects",
           *sorted(p / "projects" for p in RECORDED_332.iterdir() if (p / "projects").is_dir())]
HELLO_TODO = "7c12af23-4fd1-40dc-becd-4a92d4636a56"  # 2.1.332, background agent
KINDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def transcript_truth() -> dict[tuple[str, str], dict]:
    """(session id, agent id) -> ``tokens`` and ``seconds`` of each subagent, from its
    own records alone: usage counted once per (message id, request id), the
    largest value of each field seen (the client repeats a request's usage on
    every content block, streaming ones with partial counts); time from its
    first record's ``timestamp`` to its last."""
    calls: dict[tuple[str, str], dict[tuple[str, str], dict[str, int]]] = {}
    stamps: dict[tuple[str, str], list[datetime]] = {}
    for path in sorted(p for source in SOURCES for p in source.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if not record.get("agentId") or not record.get("isSidechain"):
                continue
            agent = (record["sessionId"], record["agentId"])
            if record.get("timestamp"):
                stamps.setdefault(agent, []).append(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")))
            message = record.get("message")
            if record.get("type") == "assistant" and isinstance(message, dict) and message.get("usage"):
                if message.get("model") == "<synthetic>":
                    continue
                seen = calls.setdefault(agent, {}).setdefault((message.get("id", ""), record.get("requestId", "")), {})
                for kind in KINDS:
                    seen[kind] = max(seen.get(kind, 0), int(message["usage"].get(kind) or 0))
    return {
        agent: {
            "tokens": sum(call[kind] for call in calls.get(agent, {}).values() for kind in KINDS),
            "seconds": (max(times) - min(times)).total_seconds(),
        }
        for agent, times in stamps.items()
    }


TRUTH = transcript_truth()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = serve_imported(SOURCES, tmp_path_factory.mktemp("home"))
    yield server
    server.stop()


def page_text(server, path: str) -> str:
    import urllib.request

    with urllib.request.urlopen(server.url + path, timeout=30) as response:
        return response.read().decode()


def visible(html: str) -> str:
    """An HTML fragment's text, tags dropped."""
    return unescape(re.sub(r"<[^>]+>", "", html))


def test_the_recordings_have_subagents_of_every_kind(server):
    """The check below covers background and synchronous agents, of 2.1.197 and 2.1.332."""
    rows = [server.get_json(f"/sessions/{session}.json") for session in {session for session, _ in TRUTH}]
    assert {row["agent_version"] for row in rows} == {"2.1.197", "2.1.332"}
    assert {a["background"] for row in rows for a in row["subagents"]} == {True, False}
    assert sorted((row["session_id"], a["agent_id"]) for row in rows for a in row["subagents"]) == sorted(TRUTH)


@pytest.mark.parametrize("agent", sorted(TRUTH), ids=lambda a: f"{a[0][:8]}-{a[1][:8]}")
def test_chat_trace_and_stats_give_each_subagent_its_own_time_and_tokens(server, agent):
    session_id, agent_id = agent
    truth = TRUTH[agent]
    shown = span(truth["seconds"])

    row = {a["agent_id"]: a for a in server.get_json(f"/sessions/{session_id}.json")["subagents"]}[agent_id]
    assert row["tokens_total"] == truth["tokens"]
    assert row["duration_seconds"] == pytest.approx(truth["seconds"], abs=1e-6)

    stats = server.get_json(f"/sessions/{session_id}/stats.json")
    [share] = [a for a in stats["agents"] if a["agent_id"] == agent_id]
    assert sum(share[kind] for kind in KINDS) == truth["tokens"]
    [listed] = [a for a in stats["session"]["subagents"] if a["agent_id"] == agent_id]
    assert (listed["tokens_total"], listed["duration_seconds"]) == (row["tokens_total"], row["duration_seconds"])

    [run] = [i["tool"]["subagent"] for i in server.get_json(f"/sessions/{session_id}/chat.json")
             if (i.get("tool") or {}).get("subagent", {}).get("agent_id") == agent_id]
    assert run["figures"]["tokens_total"] == truth["tokens"]
    assert run["figures"]["duration_seconds"] == pytest.approx(truth["seconds"], abs=1e-6)

    [node] = [n for n in walk(server.get_json(f"/sessions/{session_id}/trace.json")) if n["kind"] == "subagent" and n["id"] == agent_id]
    assert sum(node["tokens"][kind] for kind in KINDS) == truth["tokens"]
    assert node["duration_ms"] == pytest.approx(truth["seconds"] * 1000, abs=1e-3)

    chat = page_text(server, f"/sessions/{session_id}")
    [line] = re.findall(r'<div class="agent-figures">(.*?)</div>', chat)
    background = row["background"]
    assert visible(line) == ("background · completed · " if background else "") + f"{shown} · {truth['tokens']:,} tokens"
    assert f"{row['client_reported']['last_request_tokens']:,} tokens" not in visible(line)

    stats_page = page_text(server, f"/sessions/{session_id}/stats")
    table = stats_page.split('data-section="subagents"', 1)[1].split("</table>", 1)[0]
    cells = re.search(rf'<tr data-agent="{agent_id}">(.*?)</tr>', table).group(1)  # type: ignore[union-attr]
    assert f'data-stat="time">{shown}<' in cells and f'data-stat="tokens">{truth["tokens"]:,}<' in cells

    trace = page_text(server, f"/sessions/{session_id}/trace")
    summary = re.search(rf'data-id="{agent_id}">(.*?)</summary>', trace).group(1)  # type: ignore[union-attr]
    assert f'<span class="tdur">{shown}</span>' in summary
    assert f">{truth['tokens'] / 1000:.1f}k tokens<" in summary


def billed() -> dict[str, int]:
    """Per session, the tokens the fake API billed for the requests its transcripts
    record (the recordings' ``truth.json``: per session and model, no split by agent)."""
    out: dict[str, int] = {}
    for truth in [RECORDED / "truth.json", RECORDED / "interactive" / "truth.json", *RECORDED_332.glob("*/truth.json")]:
        for session, models in json.loads(truth.read_text()).items():
            out[session] = sum(usage[kind] for usage in models.values() for kind in KINDS)
    return out


def test_the_main_agent_and_the_subagents_add_up_to_what_was_billed(server):
    """The split by agent loses and adds nothing: the main agent's share plus each
    subagent's (each as the transcript says, above) is what the API billed the session."""
    truth = billed()
    for session in {session for session, _ in TRUTH}:
        agents = server.get_json(f"/sessions/{session}/stats.json")["agents"]
        [main] = [a for a in agents if a["agent_id"] is None]
        subagents = [TRUTH[(session, a["agent_id"])]["tokens"] for a in agents if a["agent_id"] is not None]
        assert sum(main[kind] for kind in KINDS) + sum(subagents) == truth[session]


def test_the_clients_last_request_figure_is_kept_under_its_own_name(server):
    """What the task notification said (8,102 tokens: the agent's last request) stays in
    the JSON as the client's, beside the count the pages show (23,548)."""
    [row] = server.get_json(f"/sessions/{HELLO_TODO}.json")["subagents"]
    assert row["client_reported"] == {"duration_seconds": 1.272, "last_request_tokens": 8102, "tool_uses": 2}
    assert row["tokens_total"] == 23_548 and row["duration_seconds"] == pytest.approx(1.101)
    [call] = [i["tool"] for i in server.get_json(f"/sessions/{HELLO_TODO}/chat.json") if (i.get("tool") or {}).get("subagent")]
    assert call["background"]["client_reported"]["last_request_tokens"] == 8102
    assert "total_tokens" not in call["background"]


def test_chromium_shows_the_background_agents_time_and_tokens_alike_on_every_tab(server, page):
    page.goto(f"{server.url}/sessions/{HELLO_TODO}")
    expect(page.locator(".agent-figures")).to_have_text("background · completed · 1.1 s · 23,548 tokens")
    page.goto(f"{server.url}/sessions/{HELLO_TODO}/stats")
    row = page.locator('[data-section="subagents"] tr[data-agent="ab1b4109d0ab09382"]')
    expect(row.locator('[data-stat="time"]')).to_have_text("1.1 s")
    expect(row.locator('[data-stat="tokens"]')).to_have_text("23,548")
    page.goto(f"{server.url}/sessions/{HELLO_TODO}/trace")
    node = page.locator('summary[data-id="ab1b4109d0ab09382"]')
    expect(node.locator(".tdur")).to_have_text("1.1 s")
    expect(node.locator(".ttokens")).to_have_text("23.5k tokens")
    assert page.dialogs == []


def with_a_late_record(tmp_path: Path) -> tuple[Path, dict]:
    """hello-todo's transcripts copied under ``tmp_path``, its subagent's ending
    with one more record: client bookkeeping (an ``environment`` attachment, shown
    in no chat item) 2 s after its answer and after its task notification. The
    copy's folder and that record."""
    copy = tmp_path / "projects"
    shutil.copytree(RECORDED_332 / "hello-todo" / "projects", copy)
    [path] = copy.rglob("agent-*.jsonl")
    lines = path.read_text().splitlines()
    late = json.loads(lines[2])
    assert late["type"] == "attachment"
    late |= {"uuid": "5b1c7c1e-0000-4000-8000-000000000001", "timestamp": "2026-11-29T12:38:32.561Z"}
    path.write_text("\n".join([*lines, json.dumps(late)]) + "\n")
    return copy, late


def test_a_subagents_time_is_its_records_span_even_past_its_last_chat_item(tmp_path):
    """A subagent whose last record is client bookkeeping 2 s after its answer: its
    time runs to that record on every tab, the trace's node included (not its
    items' span alone)."""
    copy, _ = with_a_late_record(tmp_path)
    server = serve_imported([copy], tmp_path)
    try:
        [row] = server.get_json(f"/sessions/{HELLO_TODO}.json")["subagents"]
        assert row["duration_seconds"] == pytest.approx(3.101)  # 12:38:29.460 to 12:38:32.561
        [node] = [n for n in walk(server.get_json(f"/sessions/{HELLO_TODO}/trace.json")) if n["kind"] == "subagent"]
        assert node["duration_ms"] == pytest.approx(3101)
        assert '<span class="tdur">3.1 s</span>' in page_text(server, f"/sessions/{HELLO_TODO}/trace")
        assert "completed · 3.1 s · 23,548 tokens" in visible(page_text(server, f"/sessions/{HELLO_TODO}"))
        [run] = [i["tool"]["subagent"] for i in server.get_json(f"/sessions/{HELLO_TODO}/chat.json") if (i.get("tool") or {}).get("subagent")]
        items = [i["timestamp"] for i in run["items"] if i.get("timestamp")]
        assert max(items) < run["figures"]["ended"]  # no chat item is that late: the row's span, not the items'
    finally:
        server.stop()


def walk(node: dict) -> list[dict]:
    return [node, *(n for child in node["children"] for n in walk(child))]
