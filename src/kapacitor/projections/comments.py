"""Read model ``comments``: every comment on a session, its chat items and trace
nodes (``collab.comments``), from the sessions' comment streams.

``comments`` has one row per ``CommentAdded``; a ``CommentEdited`` by its author
on the same session's stream replaces ``text`` and sets ``edited_at``; a
``CommentRetracted`` sets ``retracted_at`` and ``retracted_by`` (the row is kept: the
log is the history, the read model says what is shown). Readers ask
``session_comments`` and ``counts``; whether the viewer may see the session is
asked before (the server's viewer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kapacitor.events import RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.store.readdb import ReadDb

PREFIX = "SessionComments-"


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE comments (comment_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, author TEXT NOT NULL,"
        " kind TEXT NOT NULL, anchor TEXT NOT NULL, text TEXT NOT NULL, created_at TEXT NOT NULL,"
        " edited_at TEXT NOT NULL, retracted_at TEXT NOT NULL, retracted_by TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX comments_session ON comments (session_id, created_at)")


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    for event in events:
        if not event.stream.startswith(PREFIX):
            continue
        session_id, data = event.stream.removeprefix(PREFIX), event.data
        if event.type == "CommentAdded":
            target = data.get("target") or {}
            conn.execute(
                "INSERT INTO comments VALUES (?, ?, ?, ?, ?, ?, ?, '', '', '') ON CONFLICT (comment_id) DO NOTHING",
                (data["comment_id"], session_id, data.get("author", ""), target.get("kind") or "session",
                 target.get("anchor", ""), data.get("text", ""), data.get("timestamp", "")),
            )
        elif event.type == "CommentEdited":
            conn.execute(
                "UPDATE comments SET text = ?, edited_at = ? WHERE comment_id = ? AND session_id = ? AND author = ?"
                " AND retracted_at = ''",
                (data.get("text", ""), data.get("timestamp", ""), data.get("comment_id", ""), session_id,
                 data.get("author", "")),
            )
        elif event.type == "CommentRetracted":
            conn.execute(
                "UPDATE comments SET retracted_at = ?, retracted_by = ? WHERE comment_id = ? AND session_id = ?"
                " AND retracted_at = ''",
                (data.get("timestamp", ""), data.get("author", ""), data.get("comment_id", ""), session_id),
            )


def session_comments(conn: ReadDb, session_id: str) -> list[dict[str, Any]]:
    """The session's standing comments, oldest first: ``comment_id``, ``author``,
    ``target`` (``kind``, ``anchor``), ``text`` (markdown, the latest edit), ``created_at``
    and ``edited_at`` (UTC; ``""`` when never edited)."""
    rows = conn.execute(
        "SELECT comment_id, author, kind, anchor, text, created_at, edited_at FROM comments"
        " WHERE session_id = ? AND retracted_at = '' ORDER BY created_at, comment_id", (session_id,)
    )
    return [{"comment_id": cid, "author": author, "target": {"kind": kind, "anchor": anchor}, "text": text,
             "created_at": at, "edited_at": edited} for cid, author, kind, anchor, text, at, edited in rows]


def find(conn: ReadDb, session_id: str, comment_id: str) -> dict[str, Any] | None:
    """One standing comment of the session, None when there is none (or it was retracted)."""
    return next((c for c in session_comments(conn, session_id) if c["comment_id"] == comment_id), None)


def counts(comments: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many comments each target has, keyed ``kind:anchor`` (``session:`` for the session's own)."""
    out: dict[str, int] = {}
    for c in comments:
        key = f"{c['target']['kind']}:{c['target']['anchor']}"
        out[key] = out.get(key, 0) + 1
    return out


PROJECTION = Projection("comments", 2, ("comments",), setup, apply)
