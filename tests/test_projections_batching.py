"""Read models that work a batch at a time in memory (open calls paired, token
sightings merged, tool counts summed) end exactly as if they went event by
event: a batch of one event takes the table path every time."""

from __future__ import annotations

import sqlite3

import pytest

from kapacitor.events import NewEvent, event_id
from kapacitor.projections.catalog import BY_NAME
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store import open_store

NAMES = ("tool_calls", "files_changed", "token_usage")


def call(call_id: str, tool: str, path: str) -> dict:
    return {"call_id": call_id, "tool_name": tool, "arguments": {"file_path": path}}


def usage(message: str, output: int, model: str = "claude-sonnet-4-5") -> dict:
    return {"message_id": message, "request_id": "r-" + message, "model": model, "input_tokens": 3, "output_tokens": output}


def event(n: int, type_: str, data: dict, used: dict | None = None) -> NewEvent:
    metadata = {"source": {"session_id": "s"}, "raw": "{}"}
    if used:
        metadata["$usage"] = used
    return NewEvent(event_id("batching", n), type_, {"timestamp": f"2026-01-01T00:00:{n:02d}Z", **data}, metadata)


EVENTS = [
    event(0, "AssistantToolCallsGenerated", {"tool_calls": [call("c1", "Edit", "a.py"), call("c2", "Bash", "")]}, usage("m1", 5)),
    event(1, "AssistantMessageGenerated", {"content": "..."}, usage("m1", 9, model="other")),
    event(2, "ToolResultReceived", {"call_id": "c2", "extensions": {"claude_code": {"is_error": True}}}),
    # c1 asked again (a resumed session replays it), then answered: the earlier ask is gone too.
    event(3, "AssistantToolCallsGenerated", {"tool_calls": [call("c1", "Write", "b.py")]}, usage("m2", 1)),
    event(4, "ToolResultReceived", {"call_id": "c1", "extensions": {"claude_code": {"tool_use_result": {"type": "create", "content": "x\ny"}}}}),
    event(5, "AssistantToolCallsGenerated", {"tool_calls": [call("c3", "Edit", "c.py")]}, usage("m2", 7)),
    event(6, "ToolResultReceived", {"call_id": "c9"}),
    event(7, "AssistantMessageGenerated", {"content": "..."}, usage("m1", 2)),
]


def tables(tmp_path, batch_size: int) -> dict[str, list[tuple]]:
    path = tmp_path / f"b{batch_size}.db"
    store = open_store(f"sqlite://{path}")
    store.append("AgentSession-s", EVENTS)
    projections = [BY_NAME[name] for name in NAMES]
    runner = ProjectionRunner(store, path, projections, batch_size=batch_size)
    runner.catch_up()
    assert not runner.failures
    runner.close()
    store.close()
    conn = sqlite3.connect(path)
    try:
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"')) for p in projections for t in p.tables}
    finally:
        conn.close()


@pytest.mark.parametrize("batch_size", [2, 3, 1000])
def test_batched_equals_event_by_event(tmp_path, batch_size):
    assert tables(tmp_path, batch_size) == tables(tmp_path, 1)


def test_what_the_events_say(tmp_path):
    got = tables(tmp_path, 1000)
    assert got["tool_calls"] == [("s", "Bash", 1, 1), ("s", "Edit", 2, 0), ("s", "Write", 1, 0)]
    assert got["tool_calls_open"] == [("s", "c3", "Edit", "c.py")]
    assert got["files_changed"] == [("s", "c1", "b.py", "create", "Write", 2, 0, "2026-01-01T00:00:04Z")]
    assert got["files_changed_open"] == [("s", "c3", "Edit", "c.py")]
    # Each call counted once, each field its largest sighting, the first sighting's model.
    assert got["token_usage"] == [("s", "claude-sonnet-4-5", "", 6, 16, 0, 0, 0, 0, 2)]
