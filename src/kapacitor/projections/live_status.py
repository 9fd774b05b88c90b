"""Read model ``live_status``: when each session was last active and whether it ended.

A session's status depends on the clock as well as the log, so the table keeps
the facts (last activity, end time) and ``status`` turns them into running /
idle / ended when read:

- ``ended``: a ``SessionEnded`` arrived and nothing happened after it, or the
  session has been silent for more than ``IDLE_FOR`` (its agent has surely gone);
- ``running``: an event within the last ``RUNNING_FOR``;
- ``waiting``: not running, but background subagents it launched have not
  reported back yet (their task notification will wake it);
- ``idle``: in between (the agent waits for its user, or is thinking long), and
  at once when a Notification hook says ``agent_needs_input`` (until the next event).

Activity is the event's own ``timestamp`` (when it happened), not when it was
stored: importing last month's history must not make it look running.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kapacitor.envelope import RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.store.readdb import ReadDb

RUNNING_FOR = timedelta(minutes=2)
IDLE_FOR = timedelta(hours=1)


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE live_status (session_id TEXT PRIMARY KEY,"
        " last_activity TEXT NOT NULL, ended_at TEXT, input_at TEXT)"
    )
    conn.execute("CREATE INDEX live_status_last_activity ON live_status (last_activity)")
    conn.execute(
        "CREATE TABLE live_background (session_id TEXT NOT NULL, agent_id TEXT NOT NULL,"
        " done INTEGER NOT NULL, PRIMARY KEY (session_id, agent_id))"
    )


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    # Here, not at the top: ``kapacitor sessions --json`` reads ``statuses`` and
    # imports none of the fold (``projections.sessions``).
    from kapacitor.projections.session_summary import session_of

    # session -> (last activity, ended at, asked for input at), this batch
    latest: dict[str, tuple[str, str | None, str | None]] = {}
    for event in events:
        sid, stamp = session_of(event), event.data.get("timestamp") or ""
        if not (sid and stamp):
            continue
        last, ended, asked = latest.get(sid, ("", None, None))
        if event.type == "SessionEnded":
            ended = max(ended or "", stamp)
        if event.type == "HookReceived" and _needs_input(event):
            asked = max(asked or "", stamp)
        latest[sid] = (max(last, stamp), ended, asked)
    _background(conn, events)
    conn.executemany(
        "INSERT INTO live_status VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
        f" last_activity = {conn.greatest('live_status.last_activity', 'excluded.last_activity')},"
        f" ended_at = coalesce({conn.greatest('live_status.ended_at', 'excluded.ended_at')},"
        " live_status.ended_at, excluded.ended_at),"
        f" input_at = coalesce({conn.greatest('live_status.input_at', 'excluded.input_at')},"
        " live_status.input_at, excluded.input_at)",
        [(sid, last, ended, asked) for sid, (last, ended, asked) in latest.items()],
    )


def _needs_input(event: RecordedEvent) -> bool:
    payload = (event.data.get("extensions") or {}).get("claude_code") or {}
    return event.data.get("hook_event_name") == "Notification" and payload.get("notification_type") == "agent_needs_input"


def _background(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    """Background subagents: launched (the Agent call's result says ``async_launched``,
    or a live Stop hook lists it among its running ``background_tasks``), done (their
    task notification, a ``SubagentCompleted`` marked background)."""
    from kapacitor.projections.session_summary import session_of

    for event in events:
        ext = (event.data.get("extensions") or {}).get("claude_code") or {}
        sid = session_of(event)
        if not sid:
            continue
        result = ext.get("tool_use_result")
        if event.type == "ToolResultReceived" and isinstance(result, dict) and result.get("status") == "async_launched":
            conn.execute("INSERT INTO live_background VALUES (?, ?, 0) ON CONFLICT DO NOTHING", (sid, str(result.get("agentId", ""))))
        elif event.type == "HookReceived" and isinstance(ext.get("background_tasks"), list):
            # Live only: Stop and SubagentStop name the background tasks still running.
            running = [t for t in ext["background_tasks"] if isinstance(t, dict) and t.get("status") == "running" and t.get("id")]
            conn.executemany("INSERT INTO live_background VALUES (?, ?, 0) ON CONFLICT DO NOTHING", [(sid, str(t["id"])) for t in running])
        elif event.type == "SubagentCompleted" and ext.get("background"):
            conn.execute(
                "INSERT INTO live_background VALUES (?, ?, 1) ON CONFLICT (session_id, agent_id) DO UPDATE SET done = 1",
                (sid, str(event.data.get("agent_id", ""))),
            )


def status(
    last_activity: str | None, ended_at: str | None, now: datetime | None = None, waiting: int = 0, input_at: str | None = None
) -> str:
    """running, waiting, idle or ended (see the module docstring); ended when nothing
    is known. ``waiting``: how many background subagents have not reported back;
    ``input_at``: when the agent last said it needs its user's input."""
    if not last_activity or (ended_at and ended_at >= last_activity):
        return "ended"
    silent = (now or datetime.now(UTC)) - parse_time(last_activity)
    if silent <= RUNNING_FOR and not (input_at and input_at >= last_activity):
        return "running"
    if silent > IDLE_FOR:
        return "ended"
    return "waiting" if waiting else "idle"


def parse_time(stamp: str) -> datetime:
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def statuses(conn: ReadDb, session_ids: Sequence[str], now: datetime | None = None) -> dict[str, str]:
    """Status of each given session (as of ``now``, default the present)."""
    now = now or datetime.now(UTC)
    out = dict.fromkeys(session_ids, "ended")
    for start in range(0, len(session_ids), 500):
        chunk = list(session_ids[start : start + 500])
        rows = conn.execute(
            f"SELECT session_id, last_activity, ended_at,"
            f" (SELECT count(*) FROM live_background b WHERE b.session_id = s.session_id AND b.done = 0), input_at"
            f" FROM live_status s WHERE session_id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for sid, last, ended, waiting, asked in rows:
            out[sid] = status(last, ended, now, waiting, asked)
    return out


def running_sessions(conn: ReadDb) -> set[str]:
    """Sessions running now: only recent activity can be, so the scan is short."""
    since = (datetime.now(UTC) - RUNNING_FOR).strftime("%Y-%m-%dT%H:%M:%S")
    rows = conn.execute("SELECT session_id, last_activity, ended_at, input_at FROM live_status WHERE last_activity >= ?", (since,))
    return {sid for sid, last, ended, asked in rows if status(last, ended, input_at=asked) == "running"}


PROJECTION = Projection("live_status", 2, ("live_status", "live_background"), setup, apply)
