"""Which tool a result belongs to.

A ToolResultReceived often does not name its tool: the AssistantToolCallsGenerated
that asked for it does, maybe batches earlier. Read models that need the tool of
a result keep the calls still waiting for one in a table of their own (so each
can be rebuilt alone), through these functions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from kapacitor.projections.session_summary import file_path_of


def create(conn: sqlite3.Connection, table: str) -> None:
    conn.execute(
        f"CREATE TABLE {table} (session_id TEXT NOT NULL, call_id TEXT NOT NULL,"
        " tool_name TEXT NOT NULL, path TEXT, PRIMARY KEY (session_id, call_id))"
    )


def remember(conn: sqlite3.Connection, table: str, session_id: str, calls: Iterable[dict[str, Any]]) -> None:
    """Note each call's tool (and the file it means to change, if any)."""
    conn.executemany(
        f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?)",
        [(session_id, c.get("call_id", ""), c.get("tool_name", ""), file_path_of(c)) for c in calls],
    )


def take(conn: sqlite3.Connection, table: str, session_id: str, call_id: str) -> tuple[str, str | None] | None:
    """The (tool name, path) of the call a result answers, forgetting the call."""
    row = conn.execute(
        f"DELETE FROM {table} WHERE session_id = ? AND call_id = ? RETURNING tool_name, path",
        (session_id, call_id),
    ).fetchone()
    return None if row is None else (row[0], row[1])
