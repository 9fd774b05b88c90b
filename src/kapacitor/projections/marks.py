"""Read model ``marks``: who marked which session as worth learning from
(``collab.marks``), from the sessions' mark streams.

``session_marks`` has one row per standing mark (session, author): a
``SessionMarked`` adds it or replaces its reason, a ``SessionUnmarked`` removes
the mark it names. ``marked`` lists the marked sessions a viewer may see (the
viewer's SQL condition over ``repository_sessions``), for one repository or
the whole org.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kapacitor.access.viewer import Viewer, visible_clause
from kapacitor.events import RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.store.readdb import ReadDb

PREFIX = "SessionMarks-"
COLUMNS = ("session_id", "author", "reason", "marked_at")
MARKED = "repository_sessions.session_id IN (SELECT session_id FROM session_marks)"
"""SQL: a ``repository_sessions`` row whose session is marked (the timeline's filter)."""


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE session_marks (session_id TEXT NOT NULL, author TEXT NOT NULL, reason TEXT NOT NULL,"
        " marked_at TEXT NOT NULL, PRIMARY KEY (session_id, author))"
    )


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    for event in events:
        if not event.stream.startswith(PREFIX):
            continue
        session_id, data = event.stream.removeprefix(PREFIX), event.data
        if event.type == "SessionMarked":
            conn.execute(conn.upsert("session_marks", COLUMNS, ("session_id", "author")),
                         (session_id, data.get("author", ""), data.get("reason", ""), data.get("timestamp", "")))
        elif event.type == "SessionUnmarked":
            conn.execute("DELETE FROM session_marks WHERE session_id = ? AND author = ?",
                         (session_id, data.get("marked_by", "")))


def session_marks(conn: ReadDb, session_id: str) -> list[dict[str, Any]]:
    """The session's standing marks, oldest first: ``author``, ``reason``, ``marked_at`` (UTC)."""
    rows = conn.execute("SELECT author, reason, marked_at FROM session_marks WHERE session_id = ?"
                        " ORDER BY marked_at, author", (session_id,))
    return [{"author": a, "reason": r, "marked_at": at} for a, r, at in rows]


def mark_counts(conn: ReadDb, session_ids: Sequence[str]) -> dict[str, int]:
    """How many standing marks each of the sessions has (unmarked ones left out)."""
    out: dict[str, int] = {}
    for start in range(0, len(session_ids), 500):
        chunk = list(session_ids[start: start + 500])
        out.update(conn.execute(
            f"SELECT session_id, count(*) FROM session_marks WHERE session_id IN ({','.join('?' * len(chunk))})"
            " GROUP BY session_id", chunk))
    return out


def marked(conn: ReadDb, viewer: Viewer, repo: str = "") -> list[dict[str, Any]]:
    """The marked sessions ``viewer`` may see (of repository ``repo``; all when empty),
    most recently marked first: each the timeline's row (``repository_sessions.list_row``)
    with its ``marks``."""
    visible, params = visible_clause(viewer)
    where = [visible] if visible else []
    if repo:
        where.append("repository_sessions.key = ?")
        params.append(repo)
    rows = conn.execute(
        "SELECT repository_sessions.session_id, repository_sessions.list_row, m.author, m.reason, m.marked_at"
        " FROM session_marks m JOIN repository_sessions ON repository_sessions.session_id = m.session_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY m.marked_at DESC, m.author",
        params,
    )
    sessions: dict[str, dict[str, Any]] = {}
    for session_id, list_row, author, reason, at in rows:
        row = sessions.setdefault(session_id, json.loads(list_row) | {"marks": []})
        row["marks"].append({"author": author, "reason": reason, "marked_at": at})
    return list(sessions.values())


PROJECTION = Projection("marks", 1, ("session_marks",), setup, apply)
