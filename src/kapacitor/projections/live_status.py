"""Read model ``live_status``: when each session was last active and whether it ended.

A session's status depends on the clock as well as the log, so the table keeps
the facts (last activity, end time) and ``status`` turns them into running /
idle / ended when read:

- ``ended``: a ``SessionEnded`` arrived and nothing happened after it, or the
  session has been silent for more than ``IDLE_FOR`` (its agent has surely gone);
- ``running``: an event within the last ``RUNNING_FOR``;
- ``idle``: in between (the agent waits for its user, or is thinking long).

Activity is the event's own ``timestamp`` (when it happened), not when it was
stored: importing last month's history must not make it look running.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kapacitor.events import RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_summary import session_of
from kapacitor.store.readdb import ReadDb

RUNNING_FOR = timedelta(minutes=2)
IDLE_FOR = timedelta(hours=1)


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE live_status (session_id TEXT PRIMARY KEY,"
        " last_activity TEXT NOT NULL, ended_at TEXT)"
    )
    conn.execute("CREATE INDEX live_status_last_activity ON live_status (last_activity)")


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    latest: dict[str, tuple[str, str | None]] = {}  # session -> (last activity, ended at), this batch
    for event in events:
        sid, stamp = session_of(event), event.data.get("timestamp") or ""
        if not (sid and stamp):
            continue
        last, ended = latest.get(sid, ("", None))
        if event.type == "SessionEnded":
            ended = max(ended or "", stamp)
        latest[sid] = (max(last, stamp), ended)
    conn.executemany(
        "INSERT INTO live_status VALUES (?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
        f" last_activity = {conn.greatest('live_status.last_activity', 'excluded.last_activity')},"
        f" ended_at = coalesce({conn.greatest('live_status.ended_at', 'excluded.ended_at')},"
        " live_status.ended_at, excluded.ended_at)",
        [(sid, last, ended) for sid, (last, ended) in latest.items()],
    )


def status(last_activity: str | None, ended_at: str | None, now: datetime | None = None) -> str:
    """running, idle or ended (see the module docstring); ended when nothing is known."""
    if not last_activity or (ended_at and ended_at >= last_activity):
        return "ended"
    silent = (now or datetime.now(UTC)) - parse_time(last_activity)
    if silent <= RUNNING_FOR:
        return "running"
    return "idle" if silent <= IDLE_FOR else "ended"


def parse_time(stamp: str) -> datetime:
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def statuses(conn: ReadDb, session_ids: Sequence[str]) -> dict[str, str]:
    """Status of each given session."""
    now = datetime.now(UTC)
    out = dict.fromkeys(session_ids, "ended")
    for start in range(0, len(session_ids), 500):
        chunk = list(session_ids[start : start + 500])
        rows = conn.execute(
            f"SELECT session_id, last_activity, ended_at FROM live_status"
            f" WHERE session_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for sid, last, ended in rows:
            out[sid] = status(last, ended, now)
    return out


def running_sessions(conn: ReadDb) -> set[str]:
    """Sessions running now: only recent activity can be, so the scan is short."""
    since = (datetime.now(UTC) - RUNNING_FOR).strftime("%Y-%m-%dT%H:%M:%S")
    rows = conn.execute("SELECT session_id, last_activity, ended_at FROM live_status WHERE last_activity >= ?", (since,))
    return {sid for sid, last, ended in rows if status(last, ended) == "running"}


PROJECTION = Projection("live_status", 1, ("live_status",), setup, apply)
