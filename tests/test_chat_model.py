"""The chat and trace kept up to date by folding in only what was appended
(``chat.ChatModel``, ``trace.TraceModel``) equal a build from scratch: on the
real recordings (every event of ../shared replayed into a store in several
steps, in the order the import appended them) and on a synthetic session of
20,000 tool calls with a subagent, a task list and results that arrive a step
after their calls. The fast path must be the one taken: appends that a full
fold would treat the same way cause no rebuild."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import RECORDED, SHARED
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent, RecordedEvent
from kapacitor.server.chat import ChatModel, chat_items, render_chat
from kapacitor.server.trace import TraceModel, trace_tree
from kapacitor.store import open_store

RECORDINGS = [
    RECORDED / "projects",
    RECORDED / "interactive" / "projects",
    SHARED / "claude-code" / "recorded-2.1.332",
    SHARED / "field",
]


def replay(events: list[RecordedEvent], store, cuts: list[int]):  # noqa: ANN001
    """Append ``events`` to ``store`` in order, yielding after each part (split at ``cuts``)."""
    for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
        for event in events[start:end]:
            store.append(event.stream, [NewEvent(event.id, event.type, event.data, event.metadata)])
        yield


def assert_same_as_full(store, session_id: str, chat: ChatModel, trace: TraceModel) -> None:  # noqa: ANN001
    chat.update()
    full = chat_items(store, session_id)
    assert chat.items == full
    if len(full) < 1_000:
        assert render_chat(session_id, chat.items, 0, 10**6) == render_chat(session_id, full, 0, 10**6)
    assert trace.update().as_json() == trace_tree(store, session_id, full).as_json()


@pytest.mark.parametrize("parts", [3, 40])
def test_the_recordings_folded_in_parts_equal_a_full_build(tmp_path: Path, parts: int):
    source = open_store(f"sqlite://{tmp_path / 'source.db'}")
    import_paths(source, [d for d in RECORDINGS if d.exists()])
    events = source.read_all()
    sessions = sorted({e.stream.removeprefix("AgentSession-") for e in events if e.stream.startswith("AgentSession-")})
    assert len(sessions) >= 16  # the transcripts' sessions (the hook logs beside them are no transcripts)
    store = open_store(f"sqlite://{tmp_path / 'replay.db'}")
    kept: dict[str, tuple[ChatModel, TraceModel]] = {}
    checked = 0
    for _ in replay(events, store, [len(events) * n // parts for n in range(1, parts)]):
        for session_id in sessions:
            if store.stream_version(f"AgentSession-{session_id}") < 0:
                continue
            if session_id not in kept:
                chat = ChatModel(store, session_id)
                kept[session_id] = (chat, TraceModel(chat))
            assert_same_as_full(store, session_id, *kept[session_id])
            checked += 1
    assert checked > len(sessions)
    assert sum(chat.rebuilds for chat, _ in kept.values()) < checked  # mostly folded in, not rebuilt


def huge_session(session_id: str, calls: int) -> list[RecordedEvent]:
    """A prompt, ``calls`` Bash calls each answered by the next event, a task list,
    and a subagent (its own stream) started half-way: as positions of one store."""
    ts = lambda i: f"2026-05-01T10:{i // 3600 % 60:02d}:{i // 60 % 60:02d}.{i % 60:03d}Z"  # noqa: E731
    main, sub = f"AgentSession-{session_id}", f"AgentSubsession-{session_id}-agent1"
    out: list[tuple[str, str, str, dict, dict]] = [
        (main, "p", "UserMessageReceived", {"timestamp": ts(0), "content": "run the tests", "extensions": {"claude_code": {"kind": "prompt"}}}, {}),
        (main, "tc", "AssistantToolCallsGenerated", {"timestamp": ts(1), "message_id": "msg_task", "tool_calls": [
            {"call_id": "toolu_task", "tool_name": "TaskCreate", "arguments": {"subject": "make it green"}}]}, {}),
        (main, "tr", "ToolResultReceived", {"timestamp": ts(1), "call_id": "toolu_task", "result": "Task #1 created",
                                             "extensions": {"claude_code": {"tool_use_result": {"task": {"id": "1", "subject": "make it green"}}}}}, {}),
        (main, "tu", "AssistantToolCallsGenerated", {"timestamp": ts(2), "message_id": "msg_upd", "tool_calls": [
            {"call_id": "toolu_upd", "tool_name": "TaskUpdate", "arguments": {"taskId": "1", "status": "in_progress"}}]}, {}),
    ]
    usage = {"message_id": "", "request_id": "", "input_tokens": 3, "output_tokens": 5}
    for i in range(calls):
        call = f"toolu_{i}"
        out.append((main, f"c{i}", "AssistantToolCallsGenerated", {
            "timestamp": ts(i + 3), "message_id": f"msg_{i}", "author_name": "claude-opus-4-8",
            "tool_calls": [{"call_id": call, "tool_name": "Bash", "arguments": {"command": f"pytest tests/test_{i}.py"}}]},
            {"$usage": usage | {"message_id": f"msg_{i}", "request_id": f"req_{i}"}}))
        out.append((main, f"r{i}", "ToolResultReceived", {
            "timestamp": ts(i + 4), "call_id": call, "result": f"test_{i} {'failed' if i % 97 == 0 else 'passed'}",
            "extensions": {"claude_code": {"is_error": i % 97 == 0}}}, {}))
        if i == calls // 2:
            out += [
                (main, "a", "AssistantToolCallsGenerated", {"timestamp": ts(i + 4), "message_id": "msg_agent", "tool_calls": [
                    {"call_id": "toolu_agent", "tool_name": "Agent", "arguments": {"description": "review", "prompt": "review it"}}]}, {}),
                (main, "as", "SubagentStarted", {"timestamp": ts(i + 4), "agent_id": "agent1", "agent_type": "general-purpose", "prompt": "review it",
                                                 "subsession_stream": sub, "extensions": {"claude_code": {"tool_use_id": "toolu_agent", "description": "review"}}}, {}),
                (sub, "s1", "UserMessageReceived", {"timestamp": ts(i + 4), "content": "review it", "extensions": {"claude_code": {"kind": "subagent_prompt"}}}, {}),
                (sub, "s2", "AssistantTextGenerated", {"timestamp": ts(i + 5), "content": "Looks fine.", "message_id": "msg_sub"},
                 {"$usage": usage | {"message_id": "msg_sub", "request_id": "req_sub"}}),
                (main, "ar", "ToolResultReceived", {"timestamp": ts(i + 6), "call_id": "toolu_agent", "result": "Looks fine."}, {}),
                (main, "ad", "SubagentCompleted", {"timestamp": ts(i + 6), "agent_id": "agent1", "outcome": "completed",
                                                   "extensions": {"claude_code": {"tool_use_id": "toolu_agent"}}}, {}),
            ]
    out.append((main, "t", "AssistantTextGenerated", {"timestamp": ts(calls + 9), "content": "All green.", "message_id": "msg_end"}, {}))
    return [RecordedEvent(f"{session_id}-{key}", stream, kind, 0, 0, data, meta, "") for stream, key, kind, data, meta in out]


def test_a_session_of_20000_calls_grows_without_a_rebuild(tmp_path: Path):
    events = huge_session("huge", 20_000)
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    first = 2 * 10_000 + 5  # the Agent call is folded, its subagent's link not yet
    cuts = [7, 2 * 5_000 + 3, first, first + 4, len(events) - 1]
    parts = replay(events, store, cuts)
    next(parts)
    chat = ChatModel(store, "huge")
    trace = TraceModel(chat)
    for _ in parts:
        assert_same_as_full(store, "huge", chat, trace)
    assert chat.rebuilds == 1 and trace.rebuilds == 1
    agent = next(i for i in chat.items if i.tool and i.tool.name == "Agent")
    assert agent.tool.subagent is not None and agent.tool.subagent.outcome == "completed"
    assert agent.tool.subagent.items[-1].text == "Looks fine."
    assert trace.tree.errors == len(range(0, 20_000, 97))


def test_a_link_to_a_call_already_completed_is_folded_again_from_the_start(tmp_path: Path):
    """The import appends a parent's SubagentCompleted before the subagent's file
    brings its SubagentStarted: the completion was folded without a subagent to
    mark, so the model is built again, and equals a full build."""
    events = huge_session("late", 10)
    link = next(e for e in events if e.type == "SubagentStarted")
    events = [e for e in events if e is not link and e.stream == "AgentSession-late"] + [link] + [e for e in events if e.stream != "AgentSession-late"]
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    parts = replay(events, store, [len(events) - 3, len(events) - 2])
    next(parts)
    chat = ChatModel(store, "late")
    trace = TraceModel(chat)
    for _ in parts:
        assert_same_as_full(store, "late", chat, trace)
    assert chat.rebuilds == 2


def test_a_subagent_no_call_claims_is_shown_after_the_conversation_in_chat_and_trace(tmp_path: Path):
    """Its link arrives, its call never does: the subagent sits after the
    conversation, in the chat and in the trace, as in a full build."""
    events = [e for e in huge_session("orphan", 6) if e.id != "orphan-a"]
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    parts = replay(events, store, [4, 12, len(events) - 3, len(events) - 1])
    next(parts)
    chat = ChatModel(store, "orphan")
    trace = TraceModel(chat)
    for _ in parts:
        assert_same_as_full(store, "orphan", chat, trace)
    assert chat.items[-1].tool is not None and chat.items[-1].tool.subagent is not None
    node, path = trace.tree, []
    while node.children:
        node = node.children[-1]
        path.append(node.kind)
    assert "subagent" in path
