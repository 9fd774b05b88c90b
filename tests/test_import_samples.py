"""Importing the real recorded transcripts: counts and tokens against ground truth."""

from __future__ import annotations

import json

import pytest

from conftest import RECORDED, SAMPLE_DIRS, transcript_files
from kapacitor.capture.importer import import_paths
from kapacitor.projections.session_summary import SessionSummaries


def fold(store):
    summaries = SessionSummaries()
    for event in store.read_all():
        summaries.apply(event)
    return summaries.sessions


def direct_counts(session_id: str) -> dict[str, int]:
    """Count straight from the transcript files, independently of the normalizer."""
    counts = {"prompts": 0, "tool_calls": 0, "tool_results": 0}
    for path in transcript_files():
        if session_id not in str(path):
            continue
        main = "subagents" not in path.parts
        for line in path.read_text().splitlines():
            record = json.loads(line)
            content = (record.get("message") or {}).get("content")
            if record.get("type") == "assistant":
                counts["tool_calls"] += sum(1 for b in content if b.get("type") == "tool_use")
            if record.get("type") != "user":
                continue
            if isinstance(content, list):
                counts["tool_results"] += sum(1 for b in content if b.get("type") == "tool_result")
            elif (
                main
                and not record.get("isMeta")
                and not record.get("isCompactSummary")
                and not content.startswith(
                    ("<command-name>", "<local-command", "[Request interrupted")
                )
            ):
                counts["prompts"] += 1
    return counts


def truth() -> dict[str, dict]:
    merged = {}
    for path in (RECORDED / "truth.json", RECORDED / "interactive" / "truth.json"):
        merged.update(json.loads(path.read_text()))
    return merged


@pytest.fixture
def imported(store):
    summary = import_paths(store, SAMPLE_DIRS)
    return store, summary


def test_every_sample_session_is_imported(imported):
    store, summary = imported
    assert summary.errors == 0
    assert summary.files == len(transcript_files())
    assert set(fold(store)) == set(truth())


@pytest.mark.parametrize("session_id", sorted(truth()))
def test_tokens_per_session_and_model_equal_what_the_api_reported(imported, session_id):
    store, _ = imported
    session = fold(store)[session_id]
    assert session.tokens() == truth()[session_id]


@pytest.mark.parametrize("session_id", sorted(truth()))
def test_prompts_tool_calls_and_results_equal_a_direct_count(imported, session_id):
    store, _ = imported
    session = fold(store)[session_id]
    results = sum(
        1 for e in store.read_all() if e.type == "ToolResultReceived" and session_id in e.stream
    )
    expected = direct_counts(session_id)
    assert session.prompts == expected["prompts"]
    assert sum(session.tool_calls.values()) == expected["tool_calls"]
    assert results == expected["tool_results"]


def test_subagent_tokens_are_included_and_shown_separately(imported):
    store, _ = imported
    session = fold(store)["708f24f2-dc3e-4588-a43d-59d69a508ed0"]
    [agent_id] = session.subagents
    assert session.subagents[agent_id]["agent_type"] == "general-purpose"
    main = session.tokens(None)["claude-opus-4-8"]
    sub = session.tokens(agent_id)["claude-opus-4-8"]
    total = session.tokens()["claude-opus-4-8"]
    assert main["requests"] + sub["requests"] == total["requests"] == 11
    assert sub["ephemeral_5m_input_tokens"] == 12203


def test_session_context_and_files_changed(imported):
    store, _ = imported
    sessions = fold(store)
    api = sessions["e3ace814-42a0-4b79-a8f9-2db1e6c908e0"]
    assert (api.cwd, api.branch, api.agent, api.agent_version) == (
        "/home/dev/src/api-server",
        "main",
        "claude-code",
        "2.1.197",
    )
    assert api.files_changed == {"/home/dev/src/api-server/app.py"}
    assert api.prompts == 2  # the original prompt and the resumed one
    todo = sessions["922a15d3-3e4d-471a-9a7e-754f15615295"]
    assert todo.branch == "feature/greeting"
    assert todo.files_changed == set()  # its one Write failed
    assert (
        sessions["56d0e3a4-49a6-4882-8732-25313eede8cc"].title
        == "Fix add() returning the difference"
    )


def test_cost_comes_from_the_price_database(imported):
    store, _ = imported
    row = fold(store)["97617f62-6fd5-442d-bb39-3ca75bd8c3e3"].as_json()
    assert row["price_source"].startswith("genai-prices ")
    # haiku 4.5: $1/MTok in, $5 out, $0.10 cache read, $2 for 1h cache writes
    expected = (9 * 1 + 117 * 5 + 58599 * 0.1 + 29468 * 2) / 1e6
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-6)


def test_unknown_model_has_unknown_cost_not_zero(store):
    from kapacitor.events import NewEvent

    usage = {
        "model": "acme-llm-9",
        "message_id": "m",
        "request_id": "r",
        "input_tokens": 10,
        "output_tokens": 5,
    }
    store.append(
        "AgentSession-x",
        [
            NewEvent(
                id="00000000-0000-0000-0000-000000000001",
                type="AssistantTextGenerated",
                data={"timestamp": "2026-01-01T00:00:00Z", "content": "hi"},
                metadata={"$usage": usage},
            )
        ],
    )
    row = fold(store)["x"].as_json()
    assert row["cost_usd"] is None
    assert row["tokens"]["acme-llm-9"]["input_tokens"] == 10


def test_importing_twice_adds_nothing(imported):
    store, first = imported
    head = store.head_position()
    second = import_paths(store, SAMPLE_DIRS)
    assert first.events_added == head > 0
    assert (second.events_added, second.files_unchanged) == (0, second.files)
    assert store.head_position() == head


def test_every_line_is_kept_raw_exactly_once(imported):
    store, _ = imported
    raws = [e.metadata["raw"] for e in store.read_all() if "raw" in e.metadata]
    lines = [
        line
        for path in transcript_files()
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    assert sorted(raws) == sorted(lines)
    ids = {e.id for e in store.read_all()}
    assert all(e.metadata["raw_ref"] in ids for e in store.read_all() if "raw_ref" in e.metadata)


def test_subagent_runs_are_linked_to_the_call_that_started_them(imported):
    store, _ = imported
    sid = "708f24f2-dc3e-4588-a43d-59d69a508ed0"
    parent = store.read_stream(f"AgentSession-{sid}")
    [started] = [e for e in parent if e.type == "SubagentStarted"]
    [completed] = [e for e in parent if e.type == "SubagentCompleted"]
    assert (
        started.data["extensions"]["claude_code"]["tool_use_id"] == "toolu_6f53674e7b3340709c2abc90"
    )
    assert completed.data["agent_id"] == started.data["agent_id"] == "aaa13d7d127c8c4a2"
    sub = store.read_stream(started.data["subsession_stream"])
    assert sub and sub[0].type == "UserMessageReceived"
    assert sub[0].data["content"].startswith("SUBAGENT_REVIEW")


def test_permission_denials_become_interrupts(imported):
    store, _ = imported
    events = store.read_stream("AgentSession-97617f62-6fd5-442d-bb39-3ca75bd8c3e3")
    outcomes = [e.data["outcome"] for e in events if e.type == "InterruptResolved"]
    assert outcomes == ["denied", "denied"]


def test_compaction_is_an_event_and_its_summary_is_not_a_prompt(imported):
    store, _ = imported
    events = store.read_stream("AgentSession-708f24f2-dc3e-4588-a43d-59d69a508ed0")
    [compacted] = [e for e in events if e.type == "ContextCompacted"]
    assert (compacted.data["trigger"], compacted.data["pre_tokens"]) == ("manual", 20513)
    kinds = [
        e.data["extensions"]["claude_code"]["kind"]
        for e in events
        if e.type == "UserMessageReceived"
    ]
    assert kinds.count("compact_summary") == 1 and kinds.count("command") == 1
