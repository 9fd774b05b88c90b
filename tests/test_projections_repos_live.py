"""Read models ``repositories`` and ``live_status`` on the real samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent
from kapacitor.projections import live_status
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner

WIDGETS = "/home/dev/src/widgets"


def built(store, store_path):
    runner = ProjectionRunner(store, store_path, PROJECTIONS, batch_size=13)
    runner.catch_up()
    assert not runner.failures
    return runner


def github_for_widgets(cwd: str) -> dict:
    if cwd == WIDGETS:
        return {
            "repository": "acme/widgets",
            "remote_url": "git@github.com:acme/widgets.git",
            "user": "ann@acme.dev",
        }
    return {"user": "bo@acme.dev"}


def test_sessions_group_by_github_repository_else_by_directory(store, store_path):
    import_paths(store, SAMPLE_DIRS, resolve_context=github_for_widgets)
    runner = built(store, store_path)
    rows = {
        r[0]: r[1:]
        for r in runner.conn.execute("SELECT key, kind, remote_url, sessions FROM repositories")
    }
    assert rows["acme/widgets"] == ("github", "git@github.com:acme/widgets.git", 2)
    assert rows["/home/dev/notes"] == ("directory", None, 1)
    assert (
        sum(r[2] for r in rows.values())
        == runner.conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    )
    runner.close()


def test_repository_totals_are_the_sums_of_their_sessions(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    runner = built(store, store_path)
    for key, tokens, calls in runner.conn.execute(
        "SELECT key, tokens, tool_calls FROM repositories"
    ):
        sums = runner.conn.execute(
            "SELECT sum(count) FROM tool_calls WHERE session_id IN (SELECT session_id FROM repository_sessions WHERE key = ?)",
            (key,),
        ).fetchone()
        assert calls == (sums[0] or 0) and tokens > 0
    runner.close()


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("last", "ended", "expected"),
    [
        (at(0.5), None, "running"),
        (at(2), None, "running"),
        (at(3), None, "idle"),
        (at(59), None, "idle"),
        (at(61), None, "ended"),
        (at(0.5), at(0.5), "ended"),
        (at(0.5), at(5), "running"),  # resumed after it ended
        (None, None, "ended"),
    ],
)
def test_status_thresholds(last, ended, expected):
    assert live_status.status(last, ended, NOW) == expected


def test_live_status_follows_activity_and_session_end(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    runner = built(store, store_path)
    sid = "97617f62-6fd5-442d-bb39-3ca75bd8c3e3"
    assert live_status.statuses(runner.conn, [sid])[sid] != "running"  # recorded earlier, not now
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    store.append(
        f"AgentSession-{sid}",
        [NewEvent("e-live-1", "UserMessageReceived", {"timestamp": now, "content": "more"}, {})],
    )
    runner.catch_up()
    assert live_status.statuses(runner.conn, [sid])[sid] == "running"
    assert sid in live_status.running_sessions(runner.conn)
    store.append(
        f"AgentSession-{sid}",
        [NewEvent("e-live-2", "SessionEnded", {"timestamp": now, "reason": "exit"}, {})],
    )
    runner.catch_up()
    assert live_status.statuses(runner.conn, [sid])[sid] == "ended"
    runner.close()
