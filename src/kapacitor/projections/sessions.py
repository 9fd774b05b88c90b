"""Read model ``sessions``: one row per session, what ``kapacitor sessions`` shows.

The rules are ``session_summary``'s fold; this module only persists it. Each row
keeps the fold's whole state (``state``) beside the finished row (``row``), so a
batch continues the fold where the last one stopped, even after a restart.
``started``, ``repository``, ``user`` and ``cwd`` are columns to filter and sort on;
``times`` says where the row's times lie in its text (``json_times.time_places``)
and ``price_source`` which price database priced it, so ``kapacitor sessions
--json`` writes the rows in a zone without looking for either (both lie before
the row in the record: reading them passes over no page of the row or its state).
A row is written as of a live session; ``open_subagents`` counts its subagents
without a result, whose status (``running`` or ``unknown``) depends on whether
the session is still live, so ``newest_json`` writes those rows again when it is not.
The fold (``session_summary``, with its pricing) is imported where it is used:
``kapacitor sessions --json`` reads the stored rows and needs none of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from kapacitor.envelope import RecordedEvent
from kapacitor.json_times import time_places
from kapacitor.pricing import price_source
from kapacitor.projections.ownership import StoredOwners, leaf_key
from kapacitor.projections.runner import Projection
from kapacitor.store import codec
from kapacitor.store.readdb import ReadDb

if TYPE_CHECKING:
    from kapacitor.projections.session_summary import SessionSummary


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, started TEXT, repository TEXT,"
        ' "user" TEXT, cwd TEXT, times TEXT NOT NULL, price_source TEXT NOT NULL, open_subagents INTEGER NOT NULL,'
        " row TEXT NOT NULL, state TEXT NOT NULL)"
    )
    for column in ("started", "repository", "user", "cwd"):
        conn.execute(f'CREATE INDEX sessions_{column} ON sessions ("{column}")')
    conn.execute("CREATE INDEX sessions_open ON sessions (session_id) WHERE open_subagents > 0")  # few: newest_json reads them


def batch_owners(conn: ReadDb, events: Sequence[RecordedEvent]) -> StoredOwners:
    """What ``ownership`` says of a batch: the events inherited, and the sessions
    its ``summary`` titles name by ``leafUuid``."""
    leaves = [leaf_key(leaf) for e in events if e.type == "SessionTitled" and isinstance(leaf := _leaf(e), str)]
    return StoredOwners(conn, events, leaves)


def touched_by(events: Sequence[RecordedEvent], owners: StoredOwners) -> set[str]:
    """The sessions a batch changes: its own, and those others inherit from (a chain
    link) or title (a summary naming their leaf)."""
    from kapacitor.projections.session_summary import session_of

    return {sid for sid in map(session_of, events) if sid} | set(owners.by_position.values()) | set(owners.owners.values())


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    from kapacitor.projections.session_summary import SessionSummaries, summary_from_state, summary_state

    owners = batch_owners(conn, events)
    touched = touched_by(events, owners)
    summaries = SessionSummaries(owners)
    for sid in touched:
        found = conn.execute("SELECT state FROM sessions WHERE session_id = ?", (sid,)).fetchone()
        if found:
            summaries.sessions[sid] = summary_from_state(json.loads(found[0]))
    for event in events:
        summaries.apply(event)
    conn.executemany(
        conn.upsert("sessions", ("session_id", "started", "repository", "user", "cwd", "state", "row", "times", "price_source",
                                 "open_subagents"), ("session_id",)),
        [(s.session_id, s.started, s.repository, s.user, s.cwd, _json(summary_state(s)), *_row(s), s.open_subagents())
         for s in summaries.sessions.values()],
    )


def _row(summary: SessionSummary, live: bool = True) -> tuple[str, str, str]:
    """A session's row as JSON text, where its times lie in it, and the price
    database that priced it (the ``row``, ``times`` and ``price_source`` columns);
    ``live`` as for ``SessionSummary.as_json``."""
    data = summary.as_json(live)
    row = _json(data)
    return row, time_places(row), data["price_source"]


def _leaf(event: RecordedEvent) -> object:
    return (event.data.get("extensions") or {}).get("claude_code", {}).get("leafUuid")


def _json(value: object) -> str:
    """JSON text (``orjson``, falling back for lone surrogates), for ``json_extract``."""
    return codec.dumps(value).decode()


MMAP_BYTES = 1 << 30
"""How much of a SQLite read-model file ``newest_json`` maps into memory to read."""


def newest_json(conn: ReadDb, limit: int | None = None) -> Iterator[tuple[str, str]]:
    """The rows of ``kapacitor sessions --json``, newest first, as JSON text, each
    after where its times lie in it (``json_times.time_places``): read, not
    rebuilt, one at a time from the cursor (so the output is written as it is
    read, not held whole). A row priced with another price database than today's
    is priced again from its state, and so is a row with subagents without a result
    whose session is no longer live (``live_status``: their status is ``unknown``,
    not ``running``)."""
    from kapacitor.projections import live_status

    current = price_source()
    if conn.dialect == "sqlite":
        # Read the pages where they lie instead of copying each one (the rows sit
        # among their fold states, ~40 MB of pages for 10 MB of rows): a third of the CPU.
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    with_open = [sid for (sid,) in conn.execute("SELECT session_id FROM sessions WHERE open_subagents > 0")]
    ended = {sid for sid, status in live_status.statuses(conn, with_open).items() if status == "ended"}
    rows = conn.execute(
        "SELECT session_id, times, row, price_source FROM sessions ORDER BY started DESC" + (" LIMIT ?" if limit else ""),
        (limit,) if limit else (),
    )
    for session_id, times, row, source in rows:
        if source != current or session_id in ended:
            from kapacitor.projections.session_summary import summary_from_state

            (state,) = conn.execute("SELECT state FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
            row, times, _ = _row(summary_from_state(json.loads(state)), live=session_id not in ended)
        yield times, row


def newest(conn: ReadDb, limit: int | None = None) -> list[SessionSummary]:
    """The sessions, newest first, as live summaries (so cost is priced now, not
    when the row was written)."""
    from kapacitor.projections.session_summary import summary_from_state

    rows = conn.execute("SELECT state FROM sessions ORDER BY started DESC" + (" LIMIT ?" if limit else ""), (limit,) if limit else ())
    return [summary_from_state(json.loads(state)) for (state,) in rows]


PROJECTION = Projection("sessions", 8, ("sessions",), setup, apply)  # 5: times and price_source beside each row; 6: subagents' own span and tokens_total (subagent_figures); 7: titles never cut inside a marker; 8: subagents' status by one rule (subagent_status), open_subagents
