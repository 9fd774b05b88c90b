"""Positions are opaque: ordered, never counted. Every reader of the log that shows
"how far" (read models' lag in `projections status`, `doctor` and `/healthz`,
progress bars of rebuild, copy and scrub, the live hub's change messages) runs
here over a real SQLite store whose positions are sparse, as KurrentDB's are,
and must still count events right."""

from __future__ import annotations

from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.cli.doctor_cmd import check_read_models
from kapacitor.cli.store_cmd import copied_up_to, copy_log
from kapacitor.events import NewEvent
from kapacitor.normalize.scrub import scrub
from kapacitor.projections.catalog import PROJECTIONS, statuses
from kapacitor.projections.runner import ProjectionRunner, reset
from kapacitor.server import live
from kapacitor.server.app import health_report
from kapacitor.server.live import LiveHub
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from sparse_store import STRIDE, SparsePositions

SESSION = "0b9c2d4e-0000-4000-8000-00000000c0de"


def more_events(n: int) -> list[NewEvent]:
    return [NewEvent(f"00000000-0000-4000-8000-{i:012d}", "UserMessageReceived",
                     {"timestamp": f"2026-11-29T10:00:0{i}.000Z", "text": f"hello {i}"},
                     {"source": {"session_id": SESSION}}) for i in range(n)]


def test_read_models_lag_and_progress_are_counts_of_events(store):
    import_paths(store, SAMPLE_DIRS)
    log = SparsePositions(store)
    events = len(store.read_all())
    assert log.head_position() > events * 1000  # positions far apart: a subtraction would be off by thousands
    runner = ProjectionRunner(log, open_read_db(store), PROJECTIONS, batch_size=97)
    try:
        assert {s.lag for s in statuses(runner.conn, log)} == {events}
        read: list[int] = []
        runner.catch_up(read.append)
        assert sum(read) == events and not runner.failures
        assert {s.lag for s in statuses(runner.conn, log)} == {0}
        assert {s.checkpoint for s in statuses(runner.conn, log)} == {log.head_position()}

        log.append(f"AgentSession-{SESSION}", more_events(3))
        assert {s.lag for s in statuses(runner.conn, log)} == {3}
        health = health_report(log, runner.conn, runner)
        assert health["lag"] == 3 and health["head"] == log.head_position()
        doctor = {c.name: c for c in check_read_models(log)}
        assert doctor["read model sessions"].status == "warn"
        assert doctor["read model sessions"].detail == "3 event(s) behind the log"

        read.clear()
        runner.catch_up(read.append)
        assert sum(read) == 3 and health_report(log, runner.conn, runner)["lag"] == 0
        assert {c.status for c in check_read_models(log)} == {"ok"}

        for projection in PROJECTIONS:  # a rebuild's progress bar counts the whole log
            reset(runner.conn, projection)
        assert log.count_after(0) == events + 3
        read.clear()
        runner.catch_up(read.append)
        assert sum(read) == events + 3
    finally:
        runner.close()


def test_copy_and_scrub_progress_count_events_and_a_copy_resumes_at_a_sparse_position(tmp_path, store):
    import_paths(store, SAMPLE_DIRS)
    source, source_url = SparsePositions(store), "kurrentdb://sparse"
    target = open_store(f"sqlite://{tmp_path / 'target.db'}")
    try:
        copied: list[int] = []

        def stop_after_two_batches(n: int) -> None:
            copied.append(n)
            if len(copied) == 2:
                raise KeyboardInterrupt

        try:
            copy_log(source, target, source_url, stop_after_two_batches, batch=50)
        except KeyboardInterrupt:
            pass
        resumed_at = copied_up_to(target, source_url)
        assert resumed_at == source.read_all(limit=100)[-1].position  # a sparse position, kept as it is
        assert source.count_after(resumed_at) == source.count_after(0) - 100
        added, skipped = copy_log(source, target, source_url, copied.append, batch=50)
        # the 100 an earlier run copied count as already there (what `store copy` reports)
        assert (added, skipped) == (source.count_after(0) - 100, 100) and sum(copied) == source.count_after(0)
        assert [e.id for e in target.read_all()] == [e.id for e in store.read_all()]

        scanned: list[int] = []
        report = scrub(source, dry_run=True, progress=scanned.append)
        assert sum(scanned) == report.scanned == source.count_after(0)
    finally:
        target.close()


def test_live_changes_read_events_by_position_not_by_difference(store, monkeypatch):
    import_paths(store, SAMPLE_DIRS)
    log = SparsePositions(store)
    runner = ProjectionRunner(log, open_read_db(store), PROJECTIONS)
    runner.catch_up()
    db = runner.conn
    try:
        hub = LiveHub(log, db, [p.name for p in PROJECTIONS])
        before = log.head_position()
        log.append(f"AgentSession-{SESSION}", more_events(2))
        message = hub.changes(before, log.head_position())
        assert message["all"] is False and message["sessions"] == [SESSION]
        assert log.head_position() - before == 2 * STRIDE  # what a subtraction would have called "events"
        monkeypatch.setattr(live, "MAX_LISTED", 1)  # more events than a message lists: pages refresh everything
        assert hub.changes(before, log.head_position())["all"] is True
    finally:
        runner.close()
