"""Read model ``token_usage``: per session, model and subagent ('' for the main
agent), the token fields summed and the number of API requests.

Claude Code repeats a call's usage on every line of its response, so calls are
deduplicated by (message id, request id) with ``session_summary``'s rule: a
batch's sightings are merged in memory, then into ``token_calls`` with one
upsert per call; the totals of the sessions a batch touched are then summed
afresh from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from kapacitor.events import USAGE_METADATA_KEY, RecordedEvent
from kapacitor.projections.ownership import StoredOwners
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_summary import (
    TOKEN_FIELDS,
    Call,
    call_key,
    merged_call,
    session_of,
    subagent_of,
)
from kapacitor.store.readdb import ReadDb

_NUMBERS = ", ".join(f"{name} BIGINT NOT NULL" for name in TOKEN_FIELDS)


def setup(conn: ReadDb) -> None:
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


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    calls: dict[tuple[str, str, str], Call] = {}  # this batch's sightings, merged
    inherited = StoredOwners(conn, events).by_position  # counted by the session that owns them
    for event in events:
        usage = event.metadata.get(USAGE_METADATA_KEY)
        sid = usage and session_of(event)
        if not sid or event.position in inherited:
            continue
        key = (sid, *call_key(usage))
        calls[key] = merged_call(calls.get(key), usage, subagent_of(event))
    # Merged with what earlier batches saw by the same rule as ``merged_call``:
    # the largest of each field, the model and subagent of the first sighting.
    maxima = ", ".join(f"{name} = {conn.greatest(f'token_calls.{name}', f'excluded.{name}')}" for name in TOKEN_FIELDS)
    conn.executemany(
        f"INSERT INTO token_calls VALUES (?, ?, ?, ?, ?, {', '.join('?' * len(TOKEN_FIELDS))})"
        f" ON CONFLICT (session_id, message_id, request_id) DO UPDATE SET {maxima}",
        [(*key, c.model, c.subagent or "", *(c.usage[name] for name in TOKEN_FIELDS)) for key, c in calls.items()],
    )
    touched = [(sid,) for sid in {key[0] for key in calls}]
    conn.executemany("DELETE FROM token_usage WHERE session_id = ?", touched)
    sums = ", ".join(f"sum({name})" for name in TOKEN_FIELDS)
    conn.executemany(
        f"INSERT INTO token_usage SELECT session_id, model, subagent, {sums}, count(*)"
        " FROM token_calls WHERE session_id = ? GROUP BY session_id, model, subagent",
        touched,
    )


PROJECTION = Projection("token_usage", 2, ("token_calls", "token_usage"), setup, apply)
