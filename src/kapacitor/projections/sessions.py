"""Read model ``sessions``: one row per session, what ``kapacitor sessions`` shows.

The rules are ``session_summary``'s fold; this module only persists it. Each row
keeps the fold's whole state (``state``) beside the finished row (``row``), so a
batch continues the fold where the last one stopped, even after a restart.
``started``, ``repository``, ``user`` and ``cwd`` are columns to filter and sort on.

Loading a session's state back from JSON every batch cost more than folding its
events, so the fold states stay in memory between the batches of one connection
(the most recently touched ``KEEP`` sessions). They are trusted only while the
checkpoint is where the last batch left it: a rolled-back batch, a reset, or
another runner on the same file moves it elsewhere, and the states are then
read back from the table.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from kapacitor.events import RecordedEvent
from kapacitor.projections.runner import Projection, position_of
from kapacitor.projections.session_summary import (
    SessionSummaries,
    SessionSummary,
    session_of,
    summary_from_state,
    summary_state,
)
from kapacitor.store import codec

KEEP = 20_000
"""Fold states kept in memory; the least recently touched are dropped beyond it."""


@dataclass
class _Folded:
    """The fold states of ``conn``'s sessions as of checkpoint ``position``."""

    conn: sqlite3.Connection
    position: int
    summaries: SessionSummaries = field(default_factory=SessionSummaries)


_folded: _Folded | None = None  # one connection's: the runner's


def setup(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, started TEXT, repository TEXT,"
        ' "user" TEXT, cwd TEXT, row TEXT NOT NULL, state TEXT NOT NULL)'
    )
    for column in ("started", "repository", "user", "cwd"):
        conn.execute(f'CREATE INDEX sessions_{column} ON sessions ("{column}")')


def apply(conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
    global _folded
    folded = _folded
    position = position_of(conn, PROJECTION.name)
    if folded is None or folded.conn is not conn or folded.position != position:
        folded = _Folded(conn, position)
    folded.position = -1  # until this batch is through: a failure leaves it untrusted
    known = folded.summaries.sessions
    touched = {sid for sid in map(session_of, events) if sid}
    for sid in touched:
        summary = known.pop(sid, None)  # re-inserted below: the most recent last
        if summary is None:
            found = conn.execute("SELECT state FROM sessions WHERE session_id = ?", (sid,)).fetchone()
            summary = summary_from_state(json.loads(found[0])) if found else SessionSummary(sid)
        known[sid] = summary
    for event in events:
        folded.summaries.apply(event)
    conn.executemany(
        "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(s.session_id, s.started, s.repository, s.user, s.cwd, _json(s.as_json()), _json(summary_state(s))) for s in map(known.__getitem__, touched)],
    )
    for sid in list(known)[: max(0, len(known) - KEEP)]:
        del known[sid]
    folded.position = events[-1].position
    _folded = folded


def _json(value: object) -> str:
    return codec.dumps(value).decode()


def newest(conn: sqlite3.Connection, limit: int | None = None) -> list[SessionSummary]:
    """The sessions, newest first, as live summaries (so cost is priced now, not
    when the row was written)."""
    rows = conn.execute("SELECT state FROM sessions ORDER BY started DESC LIMIT ?", (limit if limit else -1,))
    return [summary_from_state(json.loads(state)) for (state,) in rows]


PROJECTION = Projection("sessions", 1, ("sessions",), setup, apply)
