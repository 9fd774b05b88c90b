"""Read model ``token_usage``: per session, model and subagent ('' for the main
agent), the token fields summed and the number of API requests.

Claude Code repeats a call's usage on every line of its response, so calls are
deduplicated by (message id, request id) with ``session_summary``'s rule: each
call's usage is kept in ``token_calls`` and merged as more of it is seen; the
totals of the sessions a batch touched are then summed afresh from it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from kapacitor.events import USAGE_METADATA_KEY, RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_summary import (
    TOKEN_FIELDS,
    Call,
    call_key,
    merged_call,
    session_of,
    subagent_of,
)

_COLUMNS = ", ".join(TOKEN_FIELDS)
_NUMBERS = ", ".join(f"{name} INTEGER NOT NULL" for name in TOKEN_FIELDS)


def setup(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE token_calls (session_id TEXT NOT NULL, message_id TEXT NOT NULL,"
        f" request_id TEXT NOT NULL, model TEXT NOT NULL, subagent TEXT NOT NULL, {_NUMBERS},"
        " PRIMARY KEY (session_id, message_id, request_id))"
    )
    conn.execute(
        "CREATE TABLE token_usage (session_id TEXT NOT NULL, model TEXT NOT NULL,"
        f" subagent TEXT NOT NULL, {_NUMBERS}, requests INTEGER NOT NULL,"
        " PRIMARY KEY (session_id, model, subagent))"
    )


def apply(conn: sqlite3.Connection, events: Sequence[RecordedEvent]) -> None:
    touched = set()
    for event in events:
        usage = event.metadata.get(USAGE_METADATA_KEY)
        sid = session_of(event)
        if not (usage and sid):
            continue
        key = call_key(usage)
        call = merged_call(_load(conn, sid, key), usage, subagent_of(event))
        conn.execute(
            f"INSERT OR REPLACE INTO token_calls VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(TOKEN_FIELDS))})",
            (sid, *key, call.model, call.subagent or "", *(call.usage[name] for name in TOKEN_FIELDS)),
        )
        touched.add(sid)
    for sid in touched:
        conn.execute("DELETE FROM token_usage WHERE session_id = ?", (sid,))
        sums = ", ".join(f"sum({name})" for name in TOKEN_FIELDS)
        conn.execute(
            f"INSERT INTO token_usage SELECT session_id, model, subagent, {sums}, count(*)"
            " FROM token_calls WHERE session_id = ? GROUP BY model, subagent",
            (sid,),
        )


def _load(conn: sqlite3.Connection, session_id: str, key: tuple[str, str]) -> Call | None:
    row = conn.execute(
        f"SELECT model, subagent, {_COLUMNS} FROM token_calls"
        " WHERE session_id = ? AND message_id = ? AND request_id = ?",
        (session_id, *key),
    ).fetchone()
    if row is None:
        return None
    return Call(row[0], dict(zip(TOKEN_FIELDS, row[2:], strict=True)), row[1] or None)


PROJECTION = Projection("token_usage", 1, ("token_calls", "token_usage"), setup, apply)
