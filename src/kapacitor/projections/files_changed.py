"""Read model ``files_changed``: one row per successful Write, Edit, MultiEdit or
NotebookEdit call, with the file, the kind of change and the lines it added and
removed, read from the tool's structured result (``toolUseResult``).

Kinds: ``create`` and ``update`` (Write, as the result says), ``edit`` (the
others). Lines come from ``structuredPatch`` ('+'/'-' lines of each hunk); a
created file adds all its lines. Where the result carries neither (NotebookEdit,
or no structured result), the counts are NULL: unknown, not zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kapacitor.events import RecordedEvent
from kapacitor.projections import open_calls
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_summary import FILE_TOOLS, tool_failed
from kapacitor.store.readdb import ReadDb

OPEN = "files_changed_open"


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE files_changed (session_id TEXT NOT NULL, call_id TEXT NOT NULL,"
        " path TEXT NOT NULL, kind TEXT NOT NULL, tool_name TEXT NOT NULL,"
        " lines_added INTEGER, lines_removed INTEGER, timestamp TEXT NOT NULL,"
        " PRIMARY KEY (session_id, call_id))"
    )
    conn.execute("CREATE INDEX files_changed_path ON files_changed (path)")
    open_calls.create(conn, OPEN)


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    rows = []
    for seen in open_calls.follow(conn, OPEN, events, keep=lambda call: call.get("tool_name") in FILE_TOOLS):
        if not (seen.answered and seen.answered[1]) or tool_failed(seen.event.data):
            continue
        tool, path = seen.answered
        data = seen.event.data
        structured = data.get("extensions", {}).get("claude_code", {}).get("tool_use_result")
        if not isinstance(structured, dict):
            structured = {}
        rows.append(
            (seen.session_id, data.get("call_id", ""), path, change_kind(tool, structured), tool, *changed_lines(structured), data.get("timestamp", ""))
        )
    columns = ("session_id", "call_id", "path", "kind", "tool_name", "lines_added", "lines_removed", "timestamp")
    conn.executemany(conn.upsert("files_changed", columns, ("session_id", "call_id")), rows)


def change_kind(tool: str, structured: dict[str, Any]) -> str:
    if tool == "Write":
        return "create" if structured.get("type") == "create" else "update"
    return "edit"


def changed_lines(structured: dict[str, Any]) -> tuple[int | None, int | None]:
    """(added, removed) lines, or (None, None) when the result does not say."""
    if structured.get("type") == "create":
        return len(str(structured.get("content", "")).splitlines()), 0
    patch = structured.get("structuredPatch")
    if not isinstance(patch, list):
        return None, None
    lines = [line for hunk in patch for line in hunk.get("lines", [])]
    return sum(line.startswith("+") for line in lines), sum(line.startswith("-") for line in lines)


PROJECTION = Projection("files_changed", 2, ("files_changed", OPEN), setup, apply)
