"""Read model ``tool_calls``: per session and tool, how often it was called and
how often it failed. A failure is counted against the tool of the call it
answers (see ``open_calls``)."""

from __future__ import annotations

from collections.abc import Sequence

from kapacitor.events import RecordedEvent
from kapacitor.projections import open_calls
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_summary import tool_failed
from kapacitor.store.readdb import ReadDb

OPEN = "tool_calls_open"


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE tool_calls (session_id TEXT NOT NULL, tool_name TEXT NOT NULL,"
        " count INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,"
        " PRIMARY KEY (session_id, tool_name))"
    )
    open_calls.create(conn, OPEN)


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    counts: dict[tuple[str, str], list[int]] = {}  # (session, tool) -> [calls, errors] in this batch
    for seen in open_calls.follow(conn, OPEN, events):
        for call in seen.calls:
            counts.setdefault((seen.session_id, call.get("tool_name", "")), [0, 0])[0] += 1
        if seen.is_result and tool_failed(seen.event.data):
            tool = seen.answered[0] if seen.answered else seen.event.data.get("tool_name", "")
            counts.setdefault((seen.session_id, tool), [0, 0])[1] += 1
    conn.executemany(
        "INSERT INTO tool_calls VALUES (?, ?, ?, ?) ON CONFLICT (session_id, tool_name)"
        " DO UPDATE SET count = tool_calls.count + excluded.count, errors = tool_calls.errors + excluded.errors",
        [(*key, calls, errors) for key, (calls, errors) in counts.items()],
    )


PROJECTION = Projection("tool_calls", 2, ("tool_calls", OPEN), setup, apply)
