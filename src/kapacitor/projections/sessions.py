"""Read model ``sessions``: one row per session, what ``kapacitor sessions`` shows.

The rules are ``session_summary``'s fold; this module only persists it. Each row
keeps the fold's whole state (``state``) beside the finished row (``row``), so a
batch continues the fold where the last one stopped, even after a restart.
``started``, ``repository``, ``user`` and ``cwd`` are columns to filter and sort on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from kapacitor.events import RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_summary import (
    SessionSummaries,
    SessionSummary,
    session_of,
    summary_from_state,
    summary_state,
)
from kapacitor.store import codec
from kapacitor.store.readdb import ReadDb


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, started TEXT, repository TEXT,"
        ' "user" TEXT, cwd TEXT, row TEXT NOT NULL, state TEXT NOT NULL)'
    )
    for column in ("started", "repository", "user", "cwd"):
        conn.execute(f'CREATE INDEX sessions_{column} ON sessions ("{column}")')


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    touched = {sid for sid in map(session_of, events) if sid}
    summaries = SessionSummaries()
    for sid in touched:
        found = conn.execute("SELECT state FROM sessions WHERE session_id = ?", (sid,)).fetchone()
        if found:
            summaries.sessions[sid] = summary_from_state(json.loads(found[0]))
    for event in events:
        summaries.apply(event)
    conn.executemany(
        conn.upsert("sessions", ("session_id", "started", "repository", "user", "cwd", "row", "state"), ("session_id",)),
        [
            (s.session_id, s.started, s.repository, s.user, s.cwd, _json(s.as_json()), _json(summary_state(s)))
            for s in summaries.sessions.values()
        ],
    )


def _json(value: object) -> str:
    """JSON text (``orjson``, falling back for lone surrogates), for ``json_extract``."""
    return codec.dumps(value).decode()


def newest(conn: ReadDb, limit: int | None = None) -> list[SessionSummary]:
    """The sessions, newest first, as live summaries (so cost is priced now, not
    when the row was written)."""
    rows = conn.execute("SELECT state FROM sessions ORDER BY started DESC" + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
    return [summary_from_state(json.loads(state)) for (state,) in rows]


PROJECTION = Projection("sessions", 2, ("sessions",), setup, apply)
