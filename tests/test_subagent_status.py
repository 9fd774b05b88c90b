"""A subagent's status is one rule on every tab: ``running`` only while its session
is live and it has no result; ``completed``, ``failed``, ``interrupted`` or
``unknown`` otherwise, with the reason where one is known
(``SessionSummary.subagent_status``).

The fixture is one session of five synchronous subagents in the shapes the real
2.1.332 client writes (``tests/e2e/test_client_current.py`` makes the first one
with the client itself):

- ``failed``: the API refused the subagent's second request; its transcript ends
  with the client's API-error message and its Agent call comes back an error
  ("Agent terminated early due to an API error: …");
- ``interrupted``: its user pressed Esc; the Agent call's result is the
  client's "[Request interrupted by user for tool use]";
- ``ended``: its transcript ends with an API error, and the parent's result was
  never written (the client was killed);
- ``cut``: its transcript stops mid-run, no result anywhere;
- ``done``: completed.

Imported long after (the session is not live) the one without a result is
``unknown``; the same transcript with this minute's times (live) shows it
``running``, and every other status is the same.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser import serve_imported
from capture_helpers import KAPACITOR
from kapacitor.envelope import RecordedEvent
from kapacitor.projections.session_summary import SessionSummaries, SessionSummary
from transcript_builder import Transcript

SESSION = "5a6e0001-0000-4000-8000-00000000a9e1"
CWD = "/home/dev/src/widgets"
AGENTS = {  # name: (agent id, Agent call id)
    "failed": ("a1f0000000000000a", "toolu_01failedAgentCall"),
    "interrupted": ("a2f0000000000000b", "toolu_02interruptedCall"),
    "ended": ("a3f0000000000000c", "toolu_03endedAgentCall"),
    "cut": ("a4f0000000000000d", "toolu_04cutAgentCall"),
    "done": ("a5f0000000000000e", "toolu_05doneAgentCall"),
}
API_ERROR = "API Error: 400 Request refused (400) (error type unknown, HTTP 400, model sent to the API: claude-opus-5-5)"
TERMINATED = f"Agent terminated early due to an API error: {API_ERROR}"
INTERRUPT = "[Request interrupted by user for tool use]"
EXPECTED = {
    "failed": ("failed", TERMINATED),
    "interrupted": ("interrupted", INTERRUPT),
    "ended": ("failed", API_ERROR),
    "cut": ("unknown", "no result was recorded before the session ended"),
    "done": ("completed", None),
}


def write_session(root: Path, start: datetime) -> Path:
    """The session's files under ``root/projects``, its first record at ``start``."""
    clock = iter(start + timedelta(milliseconds=250 * n) for n in range(1000))

    def at() -> str:
        return next(clock).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    folder = root / "projects" / "-home-dev-src-widgets"
    main = Transcript(SESSION, cwd=CWD, version="2.1.332")
    main.user("review the widgets", at(), chain=False)
    subagents = []
    for n, (name, (agent_id, call_id)) in enumerate(AGENTS.items()):
        prompt = f"Review part {n} of the widgets."
        main.tool(call_id, "Agent", {"description": f"Review part {n}", "subagent_type": "general-purpose", "prompt": prompt,
                                     "run_in_background": False}, at(), f"msg_01main{n}", (5, 40, 0, 3000))
        sub = Transcript(SESSION, cwd=CWD, version="2.1.332")
        tag = {"isSidechain": True, "agentId": agent_id}
        sub.user(prompt, at(), chain=False, **tag)
        sub.tool(f"toolu_read{n}", "Read", {"file_path": f"{CWD}/widgets.py"}, at(), f"msg_01sub{n}a", (4, 20, 0, 2000), **tag)
        sub.result(f"toolu_read{n}", "1\tprint('widgets')\n", at(), {"type": "text"}, **tag)
        if name in ("failed", "ended"):
            sub.add({"type": "assistant", "uuid": f"5a6e0001-0000-4000-8000-0000000000{n}e", "timestamp": at(), "isApiErrorMessage": True,
                     "error": "unknown", "message": {"id": f"msg_err{n}", "type": "message", "role": "assistant", "model": "<synthetic>",
                                                     "content": [{"type": "text", "text": "API Error: 400 Request refused (400)"}],
                                                     "stop_reason": "stop_sequence", "usage": {"input_tokens": 0, "output_tokens": 0}}},
                    **tag)
            # The client's own text of the error as the parent's result gives it:
            sub.records[-1]["message"]["content"][0]["text"] = API_ERROR
        elif name == "interrupted":
            sub.user([{"type": "text", "text": "[Request interrupted by user]"}], at(), **tag)
        elif name == "done":
            sub.text("widgets.py prints one line; no problems.", at(), f"msg_01sub{n}b", (4, 15, 2000, 100), **tag)
        subagents.append((agent_id, call_id, sub))
        if name == "failed":
            main.result(call_id, [{"type": "text", "text": TERMINATED}], at(), f"Error: {TERMINATED}")
            main.records[-1]["message"]["content"][0]["is_error"] = True
        elif name == "interrupted":
            main.result(call_id, [{"type": "text", "text": INTERRUPT}], at(), f"Error: {INTERRUPT}")
            main.records[-1]["message"]["content"][0]["is_error"] = True
        elif name == "done":
            main.result(call_id, [{"type": "text", "text": "widgets.py prints one line; no problems."}], at(),
                        {"status": "completed", "agentId": agent_id, "agentType": "general-purpose", "totalDurationMs": 1000,
                         "content": [{"type": "text", "text": "widgets.py prints one line; no problems."}]})
    main.write(folder / f"{SESSION}.jsonl")
    for agent_id, call_id, sub in subagents:
        sub.write(folder / SESSION / "subagents" / f"agent-{agent_id}.jsonl")
        meta = {"agentType": "general-purpose", "description": "Review", "toolUseId": call_id, "spawnDepth": 1}
        (folder / SESSION / "subagents" / f"agent-{agent_id}.meta.json").write_text(json.dumps(meta))
    return root / "projects"


def serve(tmp_path: Path, start: datetime, name: str):  # noqa: ANN201
    server = serve_imported([write_session(tmp_path / name, start)], tmp_path / name)
    return server, server.store_url


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """Imported a day after it ran: the session is not live."""
    server, url = serve(tmp_path_factory.mktemp("imported"), datetime.now(UTC) - timedelta(days=1), "old")
    yield server, url
    server.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Its records written this minute: the session is live (``live_status``: running)."""
    server, url = serve(tmp_path_factory.mktemp("live"), datetime.now(UTC) - timedelta(seconds=5), "new")
    yield server, url
    server.stop()


def page(server, path: str) -> str:  # noqa: ANN001
    import urllib.request

    with urllib.request.urlopen(server.url + path, timeout=30) as response:
        return response.read().decode()


def walk(node: dict) -> list[dict]:
    return [node, *(n for child in node["children"] for n in walk(child))]


def statuses_everywhere(server, url: str) -> dict[str, dict[str, tuple[str, str | None]]]:  # noqa: ANN001
    """Per surface, each subagent's (status, reason) as that surface states it."""
    names = {agent_id: name for name, (agent_id, _) in AGENTS.items()}
    out: dict[str, dict[str, tuple[str, str | None]]] = {}
    row = server.get_json(f"/sessions/{SESSION}.json")
    out["row"] = {names[a["agent_id"]]: (a["status"], a["reason"]) for a in row["subagents"]}
    stats = server.get_json(f"/sessions/{SESSION}/stats.json")
    out["stats.json"] = {names[a["agent_id"]]: (a["status"], a["reason"]) for a in stats["session"]["subagents"]}
    runs = [i["tool"]["subagent"] for i in server.get_json(f"/sessions/{SESSION}/chat.json") if (i.get("tool") or {}).get("subagent")]
    out["chat.json"] = {names[r["agent_id"]]: (r["status"], r["reason"]) for r in runs}
    nodes = [n for n in walk(server.get_json(f"/sessions/{SESSION}/trace.json")) if n["kind"] == "subagent"]
    out["trace.json"] = {names[n["id"]]: (n["detail"]["status"], n["detail"]["reason"]) for n in nodes}

    stats_html = page(server, f"/sessions/{SESSION}/stats")
    out["stats"] = {}
    for agent_id, name in names.items():
        cell = re.search(rf'<tr data-agent="{agent_id}">.*?<td data-stat="status"(?: title="([^"]*)")?>([^<]*)</td>', stats_html)
        assert cell, name
        out["stats"][name] = (cell.group(2), unescape(cell.group(1)) if cell.group(1) else None)
    trace_html = page(server, f"/sessions/{SESSION}/trace")
    out["trace"] = {}
    for agent_id, name in names.items():
        found = re.search(rf'data-id="{agent_id}">.*?<span class="tstatus status-\w+" title="([^"]*)">(\w+)</span>', trace_html)
        assert found, name
        out["trace"][name] = (found.group(2), unescape(found.group(1)) or None)
    # The chat's boxes in call order; a synchronous subagent's line names its status unless completed.
    lines = re.findall(r'<div class="agent-figures">(.*?)</div>', page(server, f"/sessions/{SESSION}"))
    assert len(lines) == len(AGENTS)
    out["chat"] = {}
    for name, line in zip(AGENTS, lines, strict=True):
        word = re.search(r'<span class="agent-status status-(\w+)" title="([^"]*)">(\w+)</span>', line)
        out["chat"][name] = (word.group(3), unescape(word.group(2)) or None) if word else ("completed", None)
        assert not word or word.group(1) == word.group(3)

    listed = subprocess.run([KAPACITOR, "--store", url, "sessions", "--json"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    [cli] = json.loads(listed.stdout)
    out["sessions --json"] = {names[a["agent_id"]]: (a["status"], a["reason"]) for a in cli["subagents"]}
    return out


def test_an_imported_session_states_each_subagents_outcome_alike_everywhere(imported):
    server, url = imported
    assert server.get_json(f"/sessions/{SESSION}.json")["status"] == "ended"
    found = statuses_everywhere(server, url)
    for surface, statuses in found.items():
        assert statuses == EXPECTED, surface


def test_a_live_session_shows_the_subagent_without_a_result_running(live):
    server, url = live
    assert server.get_json(f"/sessions/{SESSION}.json")["status"] == "running"
    want = EXPECTED | {"cut": ("running", None)}
    for surface, statuses in statuses_everywhere(server, url).items():
        assert statuses == want, surface


def event(kind: str, data: dict, agent: str | None = None) -> RecordedEvent:
    source = {"session_id": "s1"} | ({"agent_id": agent} if agent else {})
    stream = f"AgentSubsession-s1-{agent}" if agent else "AgentSession-s1"
    return RecordedEvent(f"{kind}-{len(str(data))}-{agent}", stream, kind, 0, 0, {"timestamp": "2026-11-29T12:00:00Z"} | data,
                         {"source": source}, "")


def started(agent: str, call_id: str) -> RecordedEvent:
    return event("SubagentStarted", {"agent_id": agent, "extensions": {"claude_code": {"tool_use_id": call_id}}}, agent)


def agent_call(call_id: str) -> RecordedEvent:
    return event("AssistantToolCallsGenerated", {"tool_calls": [{"call_id": call_id, "tool_name": "Agent", "arguments": {}}]})


def fold(*events: RecordedEvent) -> SessionSummary:
    summaries = SessionSummaries()
    for e in events:
        summaries.apply(e)
    return summaries.sessions["s1"]


API_FAILED = {"error": "API Error: 529 Overloaded", "extensions": {"claude_code": {"error_kind": "unknown"}}}


@pytest.mark.parametrize(("events", "live", "want"), [
    # The Agent call's error, folded before the subagent's transcript (a parent file read first).
    ([agent_call("c1"), event("ToolResultReceived", {"call_id": "c1", "result": TERMINATED,
                                                     "extensions": {"claude_code": {"is_error": True}}}), started("a1", "c1")],
     True, ("failed", TERMINATED)),
    # Its own transcript ends with an interrupt.
    ([started("a1", "c1"), event("InterruptIssued", {"kind": "user_interrupt", "prompt": "[Request interrupted by user]"}, "a1")],
     True, ("interrupted", "[Request interrupted by user]")),
    # An API error the client retried (a system record: no error_kind) ends nothing.
    ([started("a1", "c1"), event("ApiErrorOccurred", {"error": "overloaded", "retry_attempt": 1}, "a1")], True, ("running", None)),
    # An API error the model answered after: running while live, unknown after.
    ([started("a1", "c1"), event("ApiErrorOccurred", API_FAILED, "a1"), event("AssistantTextGenerated", {"content": "retrying"}, "a1")],
     True, ("running", None)),
    ([started("a1", "c1"), event("ApiErrorOccurred", API_FAILED, "a1"), event("AssistantTextGenerated", {"content": "retrying"}, "a1")],
     False, ("unknown", "no result was recorded before the session ended")),
    # A background agent killed: its notification's outcome and summary, live or not.
    ([started("a1", "c1"), event("SubagentCompleted", {"agent_id": "a1", "outcome": "killed", "extensions": {"claude_code": {
        "tool_use_id": "c1", "background": True, "notice": 'Agent "Review" was stopped'}}})],
     True, ("killed", 'Agent "Review" was stopped')),
], ids=["call-error-first", "interrupt", "retried", "answered-live", "answered-ended", "killed"])
def test_the_rule_case_by_case(events, live, want):
    summary = fold(*events)
    assert summary.subagent_status("a1", live) == want
    assert summary.open_subagents() == (want == ("running", None) or want[0] == "unknown")


def test_chromium_shows_the_failed_subagent_failed_on_every_tab(imported, page):
    server, _ = imported
    agent_id = AGENTS["failed"][0]
    page.goto(f"{server.url}/sessions/{SESSION}")
    word = page.locator(".agent-figures .agent-status").first
    expect(word).to_have_text("failed")
    expect(word).to_have_attribute("title", TERMINATED)
    page.goto(f"{server.url}/sessions/{SESSION}/stats")
    expect(page.locator(f'[data-section="subagents"] tr[data-agent="{agent_id}"] [data-stat="status"]')).to_have_text("failed")
    page.goto(f"{server.url}/sessions/{SESSION}/trace")
    expect(page.locator(f'[data-id="{agent_id}"] .tstatus')).to_have_text("failed")
    assert page.dialogs == []
