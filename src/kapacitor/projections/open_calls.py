"""Which tool a result belongs to.

A ToolResultReceived often does not name its tool: the AssistantToolCallsGenerated
that asked for it does, maybe batches earlier. Read models that need the tool of
a result keep the calls still waiting for one in a table of their own (so each
can be rebuilt alone) and read the log through ``follow``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kapacitor.events import RecordedEvent
from kapacitor.projections.ownership import StoredOwners
from kapacitor.projections.session_summary import file_path_of, session_of
from kapacitor.store.readdb import ReadDb


@dataclass(frozen=True)
class Seen:
    """A tool-calls event with the ``calls`` it asks for, or a tool result with
    the (tool name, path) of the call it ``answered``, None if unknown."""

    session_id: str
    event: RecordedEvent
    calls: list[dict[str, Any]]
    answered: tuple[str, str | None] | None

    @property
    def is_result(self) -> bool:
        return self.event.type == "ToolResultReceived"


_FOLLOWED = frozenset({"AssistantToolCallsGenerated", "ToolResultReceived"})


def follow(
    conn: ReadDb,
    table: str,
    events: Sequence[RecordedEvent],
    keep: Callable[[dict[str, Any]], bool] = lambda call: True,
) -> Iterator[Seen]:
    """The tool calls (those ``keep`` accepts) and tool results among ``events``,
    each result paired with its call, remembered in ``table`` across batches.

    Most results answer a call of the same batch: those pairs are made in memory
    and ``table`` is written once when the batch is exhausted (the calls still
    open added, the ones answered removed), as if row by row. Calls and results
    a session inherited (``ownership``) are its owner's, and left out."""
    opened: dict[tuple[str, str], tuple[str, str | None] | None] = {}  # None: answered
    inherited = StoredOwners(conn, events).by_position
    for event in events:
        if event.type not in _FOLLOWED or event.position in inherited:
            continue
        sid = session_of(event)
        if not sid:
            continue
        if event.type == "AssistantToolCallsGenerated":
            calls = [c for c in event.data.get("tool_calls", []) if keep(c)]
            for c in calls:
                opened[(sid, c.get("call_id", ""))] = (c.get("tool_name", ""), file_path_of(c))
            yield Seen(sid, event, calls, None)
        elif event.type == "ToolResultReceived":
            key = (sid, event.data.get("call_id", ""))
            answered = opened.get(key) if key in opened else _take(conn, table, *key)
            opened[key] = None
            yield Seen(sid, event, [], answered)
    conn.executemany(f"DELETE FROM {table} WHERE session_id = ? AND call_id = ?", [k for k, v in opened.items() if v is None])
    conn.executemany(
        conn.upsert(table, ("session_id", "call_id", "tool_name", "path"), ("session_id", "call_id")),
        [(*k, *v) for k, v in opened.items() if v is not None],
    )


def create(conn: ReadDb, table: str) -> None:
    conn.execute(
        f"CREATE TABLE {table} (session_id TEXT NOT NULL, call_id TEXT NOT NULL,"
        " tool_name TEXT NOT NULL, path TEXT, PRIMARY KEY (session_id, call_id))"
    )


def _take(conn: ReadDb, table: str, session_id: str, call_id: str) -> tuple[str, str | None] | None:
    """The (tool name, path) of the call a result answers, forgetting the call."""
    row = conn.execute(
        f"DELETE FROM {table} WHERE session_id = ? AND call_id = ? RETURNING tool_name, path",
        (session_id, call_id),
    ).fetchone()
    return None if row is None else (row[0], row[1])
