"""The Claude Code 2.1.332 recordings (../shared/claude-code/recorded-2.1.332): every
record type has a home, tokens equal the billed truth, the client's own cost-state
adds exactly the requests the transcript does not record, background subagents
complete, denials are denials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SHARED
from kapacitor.capture.importer import import_paths
from kapacitor.projections.session_summary import SessionSummaries
from kapacitor.server.chat import chat_items
from kapacitor.server.trace import trace_tree
from kapacitor.store.readdb import SQLiteReadDb

RECORDED_332 = SHARED / "claude-code" / "recorded-2.1.332"
FOLDERS = sorted(p.name for p in RECORDED_332.iterdir() if p.is_dir())
HELLO_TODO = "7c12af23-4fd1-40dc-becd-4a92d4636a56"  # background agent, /compact
DENIED = "fdcca338-f109-4fd8-9c0d-7e81118dba9e"
TUI_DENY = "374abc41-4ebd-4e92-bafc-5100ff3314ff"


def truth(name: str) -> dict:
    return json.loads((RECORDED_332 / name).read_text())


@pytest.fixture
def imported(store):
    summary = import_paths(store, [RECORDED_332 / folder / "projects" for folder in FOLDERS])
    sessions = SessionSummaries()
    for event in store.read_all():
        sessions.apply(event)
    return store, summary, sessions.sessions


def test_every_record_type_has_a_home(imported):
    store, summary, _ = imported
    assert summary.warnings == []
    assert not [e for e in store.read_all() if e.type == "UnknownRecordReceived"]
    kinds = {e.data["kind"] for e in store.read_all() if e.type == "ClientStateRecorded"}
    assert {"api-request", "api-request-shape", "api-request-blob", "tools-used", "atis-latch", "cost-state"} <= kinds


@pytest.mark.parametrize("folder", FOLDERS)
def test_tokens_equal_the_billed_truth(imported, folder):
    _, _, sessions = imported
    for session_id, models in truth(f"{folder}/truth.json").items():
        assert sessions[session_id].tokens() == models


@pytest.mark.parametrize("folder", FOLDERS)
def test_client_reported_usage_is_ours_plus_what_no_transcript_records(imported, folder):
    _, _, sessions = imported
    recorded, unrecorded = truth(f"{folder}/truth.json"), truth(f"{folder}/unrecorded.json")
    for session_id, models in recorded.items():
        reported = sessions[session_id].client_reported()
        for model, fields in models.items():
            extra = unrecorded.get(session_id, {}).get(model, {})
            for name, value in fields.items():
                if name != "requests":
                    assert reported["tokens"][model][name] == value + extra.get(name, 0), (session_id, name)
        expected = {m: {k: v for k, v in f.items() if k != "requests"} for m, f in unrecorded.get(session_id, {}).items()}
        assert reported["unrecorded_tokens"] == expected
        assert (reported["unrecorded_cost_usd"] > 0) == bool(expected)


def test_the_compaction_is_what_the_client_reported_beyond_the_transcript(imported):
    _, _, sessions = imported
    reported = sessions[HELLO_TODO].client_reported()
    # The client's own total (cost-state) is what the API billed: 706 output tokens, $0.274.
    assert reported["tokens"]["claude-opus-5-5"]["output_tokens"] == 706
    assert reported["cost_usd"] == pytest.approx(0.2740128)
    assert float(sessions[HELLO_TODO].cost()) == pytest.approx(0.1920808)


def test_a_background_agent_completes_with_its_notification(imported):
    store, _, sessions = imported
    session = sessions[HELLO_TODO]
    [(agent_id, agent)] = session.subagents.items()
    assert session.subagent_status(agent_id, live=False) == ("completed", None) and agent["background"]
    assert agent["result"] == "Review complete: hello.py is a one-line script with no issues."
    assert agent["client_reported"] == {"duration_seconds": 1.272, "last_request_tokens": 8102, "tool_uses": 2}
    assert session.prompts == 1 and session.title == "create hello.py and run it"
    items = chat_items(store, HELLO_TODO)
    [call] = [i.tool for i in items if i.tool and i.tool.name == "Agent"]
    assert call.subagent and call.subagent.agent_id == agent_id
    assert call.background["status"] == "completed" and call.background["client_reported"]["last_request_tokens"] == 8102
    [notice] = [i for i in items if i.kind == "notification"]
    assert notice.detail["call_id"] == call.call_id and call.background["notification"] == notice.id
    assert not [i for i in items if i.kind == "notice" and i.detail.get("level") == "unknown record"]
    trace = trace_tree(store, HELLO_TODO).as_json()
    assert "background agent completed" in json.dumps(trace)


def test_a_synchronous_agent_is_still_completed_by_its_result(imported):
    _, _, sessions = imported
    session = sessions["e428fb58-8ecc-4944-8d31-cd7a84574c73"]
    [(agent_id, agent)] = session.subagents.items()
    assert session.subagent_status(agent_id, live=False) == ("completed", None)
    assert not agent["background"] and agent["client_reported"]["duration_seconds"] == 0.704


def test_denials_per_tool_with_who_denied(imported):
    store, _, sessions = imported
    assert sessions[DENIED].denials == {"Write": {"count": 1, "by": {"config": 1}}, "Bash": {"count": 1, "by": {"config": 1}}}
    assert sessions[TUI_DENY].denials == {"Write": {"count": 1, "by": {"user": 1}}}
    [call] = [i.tool for i in chat_items(store, TUI_DENY) if i.tool]
    assert call.interrupt["outcome"] == "denied"


def test_requested_and_served_model_effort_and_thinking(imported):
    store, _, sessions = imported
    session = sessions[HELLO_TODO]
    assert session.model_requests() == [{"requested": "claude-opus-5-5", "served": "claude-opus-5-5", "effort": "medium", "requests": 12}]
    assert session.thinking_tokens() == {"claude-opus-5-5": 0}
    turns = [n for n in _walk(trace_tree(store, HELLO_TODO).as_json()) if n["kind"] == "turn"]
    request = turns[0]["detail"]["request"]
    assert request["model"] == request["served_model"] == "claude-opus-5-5"
    assert request["effort"] == "medium" and request["max_tokens"] == 128000


def _walk(node: dict) -> list[dict]:
    return [node, *(n for child in node["children"] for n in _walk(child))]


@pytest.fixture
def app(store, store_path):
    from kapacitor.server.app import create_app

    import_paths(store, [RECORDED_332 / folder / "projects" for folder in FOLDERS])
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    app.state.runner.catch_up()
    assert not app.state.runner.failures
    yield app
    app.state.close()


def get(app, url: str):
    import asyncio

    import httpx

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.get(url)

    response = asyncio.run(fetch())
    assert response.status_code == 200, response.text
    return response.json() if response.headers["content-type"].startswith("application/json") else response.text


def test_the_session_page_shows_the_client_cost_the_prompt_and_the_denials(app):
    page = get(app, f"/sessions/{HELLO_TODO}/stats")
    assert "Client-reported cost" in page and "$0.27" in page and "requests no transcript line records" in page
    assert 'data-section="request-shapes"' in page and "You are an agent working with the user" in page
    assert 'data-section="subagents"' in page and "(background)" in page
    stats = get(app, f"/sessions/{HELLO_TODO}/stats.json")
    [shape] = stats["request_shapes"]
    assert shape["requests"] == 9 and "Agent" in [t["name"] for t in shape["tools"]]
    denied = get(app, f"/sessions/{DENIED}/stats")
    assert 'data-section="denials"' in denied and 'data-tool="Bash"' in denied
    chat = get(app, f"/sessions/{HELLO_TODO}")
    assert "background agent completed" in chat and "unknown record" not in chat
    assert get(app, f"/sessions/{HELLO_TODO}.json")["client_reported"]["cost_usd"] == pytest.approx(0.2740128)


def test_the_live_dot_waits_on_a_background_agent(imported):
    from datetime import timedelta

    from kapacitor.projections import live_status

    store, _, _ = imported
    events = store.read_all()
    done = next(i for i, e in enumerate(events) if e.type == "SubagentCompleted" and e.data["agent_id"] == "ab1b4109d0ab09382")
    for upto, expected in ((done, "waiting"), (len(events), "idle")):
        conn = SQLiteReadDb(Path(":memory:"))
        live_status.setup(conn)
        live_status.apply(conn, [e for e in events[:upto] if e.stream.endswith(HELLO_TODO)])
        (last,) = conn.execute("SELECT last_activity FROM live_status WHERE session_id = ?", (HELLO_TODO,)).fetchone()
        later = live_status.parse_time(last) + timedelta(minutes=5)
        assert live_status.statuses(conn, [HELLO_TODO], later) == {HELLO_TODO: expected}


def test_a_stop_hook_naming_a_running_background_task_makes_the_session_wait(store):
    from datetime import timedelta

    from kapacitor.events import RecordedEvent
    from kapacitor.projections import live_status

    stop = json.loads((RECORDED_332 / "hello-todo" / "hooks" / "Stop.jsonl").read_text().splitlines()[0])
    assert stop["background_tasks"][0]["status"] == "running"
    hook = RecordedEvent("h", f"AgentSession-{HELLO_TODO}", "HookReceived", 0, 1,
                         {"timestamp": "2026-11-29T12:38:30.700Z", "hook_event_name": "Stop", "extensions": {"claude_code": stop}},
                         {"source": {"session_id": HELLO_TODO}}, "")
    conn = SQLiteReadDb(Path(":memory:"))
    live_status.setup(conn)
    live_status.apply(conn, [hook])
    later = live_status.parse_time("2026-11-29T12:38:30.700Z") + timedelta(minutes=3)
    assert live_status.statuses(conn, [HELLO_TODO], later) == {HELLO_TODO: "waiting"}


def test_a_session_whose_agent_needs_input_is_idle_at_once(store):
    from datetime import timedelta

    from kapacitor.events import RecordedEvent
    from kapacitor.projections import live_status

    def hook(n: int, at: str, name: str, **payload: str) -> RecordedEvent:
        return RecordedEvent(f"h{n}", f"AgentSession-{TUI_DENY}", "HookReceived", n, n + 1,
                             {"timestamp": at, "hook_event_name": name, "extensions": {"claude_code": payload}},
                             {"source": {"session_id": TUI_DENY}}, "")

    conn = SQLiteReadDb(Path(":memory:"))
    live_status.setup(conn)
    live_status.apply(conn, [hook(0, "2026-11-29T12:00:00Z", "PreToolUse"),
                             hook(1, "2026-11-29T12:00:01Z", "Notification", notification_type="agent_needs_input")])
    soon = live_status.parse_time("2026-11-29T12:00:05Z")
    assert live_status.statuses(conn, [TUI_DENY], soon) == {TUI_DENY: "idle"}
    live_status.apply(conn, [hook(2, "2026-11-29T12:00:04Z", "PostToolUse")])  # the user answered
    assert live_status.statuses(conn, [TUI_DENY], soon + timedelta(seconds=1)) == {TUI_DENY: "running"}
