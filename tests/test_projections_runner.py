"""The projection runner on a real SQLite file with the real sample transcripts:
incremental equals rebuilt, restarts resume, an event a read model raises on is
recorded and skipped (never a stop for good), transient errors are waited out."""

from __future__ import annotations

import sqlite3
import time

import pytest

from conftest import RECORDED, SAMPLE_DIRS, transcript_files
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent
from kapacitor.projections import skipped
from kapacitor.projections.catalog import BY_NAME, PROJECTIONS
from kapacitor.projections.runner import (
    Projection,
    ProjectionRunner,
    ProjectionStalled,
    checkpoints,
    reset,
)
from kapacitor.store.readdb import SQLiteReadDb


def snapshot(path, projections=PROJECTIONS) -> dict[str, list[tuple]]:
    """Every row of every read-model table, sorted."""
    conn = sqlite3.connect(path)
    try:
        return {
            t: sorted(conn.execute(f'SELECT * FROM "{t}"')) for p in projections for t in p.tables
        }
    finally:
        conn.close()


def saved(path) -> dict[str, tuple[int, int]]:
    """(position, version) of each checkpoint, read through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return {name: (c.position, c.version) for name, c in checkpoints(conn).items()}
    finally:
        conn.close()


def rebuilt(store, store_path) -> dict[str, list[tuple]]:
    runner = ProjectionRunner(store, store_path, PROJECTIONS)
    for projection in PROJECTIONS:
        reset(runner.conn, projection)
    runner.catch_up()
    runner.close()
    assert not runner.failures
    return snapshot(store_path)


def growing_copies(tmp_path, fractions):
    """Copy the sample tree, each file cut to a fraction of its lines, one fraction
    after the other, so sessions arrive in pieces as during a live session."""
    root = tmp_path / "samples"
    sources = {f: root / f.relative_to(RECORDED) for f in transcript_files()}
    for fraction in fractions:
        for source, copy in sources.items():
            lines = source.read_text().splitlines(keepends=True)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text("".join(lines[: round(len(lines) * fraction)]))
        yield root


def test_rebuilt_tables_equal_incrementally_built_ones(store, store_path, tmp_path):
    runner = ProjectionRunner(store, store_path, PROJECTIONS, batch_size=7)
    for root in growing_copies(tmp_path, (0.3, 0.6, 1.0)):
        assert import_paths(store, [root]).events_added > 0
        runner.catch_up()
    runner.close()
    assert not runner.failures
    incremental = snapshot(store_path)
    assert all(
        incremental[t]
        for t in ("sessions", "tool_calls", "token_calls", "token_usage", "files_changed")
    )
    assert incremental == rebuilt(store, store_path)


def test_a_restart_resumes_from_the_checkpoint_without_double_counting(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    first = ProjectionRunner(store, store_path, PROJECTIONS, batch_size=10)
    for _ in range(3):
        first.step()
    first.close()
    assert {position for position, _ in saved(store_path).values()} == {30}
    second = ProjectionRunner(store, store_path, PROJECTIONS, batch_size=10)
    second.catch_up()
    second.close()
    assert {position for position, _ in saved(store_path).values()} == {store.head_position()}
    assert snapshot(store_path) == rebuilt(store, store_path)


def test_run_follows_live_appends(store, store_path):
    runner = ProjectionRunner(store, store_path, PROJECTIONS, poll_interval=0.01)
    runner.start()
    try:
        import_paths(store, SAMPLE_DIRS)
        deadline = time.monotonic() + 60  # a guard against a hang, not a timing
        while (
            set(runner.positions().values()) != {store.head_position()}
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
    finally:
        runner.stop()
    assert set(runner.positions().values()) == {store.head_position()}
    assert snapshot(store_path) == rebuilt(store, store_path)


def failing_projection(bad_event_id: str, name: str = "boom") -> Projection:
    def setup(conn):
        conn.execute("CREATE TABLE seen (position INTEGER PRIMARY KEY)")

    def apply(conn, events):
        for event in events:
            conn.execute("INSERT INTO seen VALUES (?)", (event.position,))
            if event.id == bad_event_id:
                raise ValueError("cannot handle this one")

    return Projection(name, 1, ("seen",), setup, apply)


def test_a_failing_event_is_recorded_and_skipped_and_a_rebuild_applies_it_again(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    head = store.head_position()
    bad = store.read_all(40, limit=1)[0]
    boom = failing_projection(bad.id)
    runner = ProjectionRunner(store, store_path, [boom, BY_NAME["token_usage"]], batch_size=25)
    runner.catch_up()
    message = str(runner.failures["boom"])
    assert "'boom'" in message and f"position {bad.position}" in message
    assert bad.id in message and bad.type in message and "cannot handle this one" in message
    # it went on past the event: both read models reach the head
    assert runner.positions() == {"boom": head, "token_usage": head}
    seen = [row[0] for row in runner.conn.execute("SELECT position FROM seen ORDER BY position")]
    assert seen == [p for p in range(1, head + 1) if p != bad.position]  # only the bad event's write rolled back
    [row] = skipped.skipped(runner.conn)
    assert (row.name, row.position, row.event_id, row.event_type) == ("boom", bad.position, bad.id, bad.type)
    assert row.error == "ValueError: cannot handle this one"
    runner.close()
    # a restart does not meet it again: it is recorded, not retried forever
    again = ProjectionRunner(store, store_path, [boom])
    again.catch_up()
    assert not again.failures and skipped.counts(again.conn) == {"boom": 1}
    again.close()
    # the code is fixed (same name, no failure): a rebuild applies the event and forgets the record
    fixed = failing_projection("no such event")
    rebuilt_runner = ProjectionRunner(store, store_path, [fixed])
    reset(rebuilt_runner.conn, fixed)
    rebuilt_runner.catch_up()
    assert not rebuilt_runner.failures and skipped.skipped(rebuilt_runner.conn) == []
    seen = [row[0] for row in rebuilt_runner.conn.execute("SELECT position FROM seen ORDER BY position")]
    assert seen == list(range(1, head + 1))
    rebuilt_runner.close()


def flaky_projection(failures: list[BaseException]) -> Projection:
    """Raises the given errors on its first calls, then works."""

    def setup(conn):
        conn.execute("CREATE TABLE flaky (position INTEGER PRIMARY KEY)")

    def apply(conn, events):
        conn.executemany("INSERT INTO flaky VALUES (?)", [(e.position,) for e in events])
        if failures:
            raise failures.pop(0)

    return Projection("flaky", 1, ("flaky",), setup, apply)


def test_a_transient_error_is_retried_never_skipped(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    errors = [sqlite3.OperationalError("database or disk is full"), sqlite3.OperationalError("database is locked"),
              OSError(28, "No space left on device")]
    runner = ProjectionRunner(store, store_path, [flaky_projection(errors), BY_NAME["sessions"]])
    runner.backoff["flaky"].first = 0.01
    runner.catch_up()
    assert not errors and not runner.failures and not runner.stalled()
    assert skipped.skipped(runner.conn) == []
    rows = [r[0] for r in runner.conn.execute("SELECT position FROM flaky ORDER BY position")]
    assert rows == list(range(1, store.head_position() + 1))
    runner.close()


def test_catch_up_gives_up_on_a_transient_error_after_its_patience(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    errors = [sqlite3.OperationalError("database is locked")] * 1000
    runner = ProjectionRunner(store, store_path, [flaky_projection(errors)])
    runner.backoff["flaky"].first = 0.01
    with pytest.raises(ProjectionStalled, match="'flaky': OperationalError: database is locked"):
        runner.catch_up(patience=0.2)
    assert runner.positions() == {"flaky": 0} and skipped.skipped(runner.conn) == []
    runner.close()


def test_a_new_version_rebuilds_the_projection(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    runner = ProjectionRunner(store, store_path, PROJECTIONS)
    runner.catch_up()
    runner.close()
    before = snapshot(store_path, [BY_NAME["tool_calls"]])
    bumped = Projection(
        "tool_calls",
        BY_NAME["tool_calls"].version + 1,
        BY_NAME["tool_calls"].tables,
        BY_NAME["tool_calls"].setup,
        BY_NAME["tool_calls"].apply,
    )
    runner = ProjectionRunner(store, store_path, [bumped])
    assert runner.positions() == {"tool_calls": 0}
    assert snapshot(store_path, [bumped]) == {t: [] for t in bumped.tables}
    runner.catch_up()
    runner.close()
    assert snapshot(store_path, [bumped]) == before
    assert saved(store_path)["tool_calls"] == (store.head_position(), bumped.version)


@pytest.mark.parametrize("projection", PROJECTIONS, ids=lambda p: p.name)
def test_setup_creates_exactly_the_tables_a_rebuild_drops(tmp_path, projection):
    conn = SQLiteReadDb(tmp_path / "x.db")
    projection.setup(conn)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    shadows = {f"{t}_{part}" for t in projection.tables for part in ("data", "idx", "content", "docsize", "config")}
    assert tables - shadows == set(projection.tables)  # an FTS5 table's shadow tables go with it


def test_events_outside_any_session_are_ignored(store, store_path):
    store.append(
        "AgentMemory-app-user",
        [
            NewEvent(
                id="00000000-0000-0000-0000-00000000000f",
                type="FactRetained",
                data={"fact": "x", "retained_at": "2026-01-01T00:00:00Z"},
            )
        ],
    )
    runner = ProjectionRunner(store, store_path, PROJECTIONS)
    runner.catch_up()
    runner.close()
    assert not runner.failures and {p for p, _ in saved(store_path).values()} == {1}
    tables = snapshot(store_path)
    assert [row[3] for row in tables.pop("facts")] == ["x"]  # a fact is memory, not a session
    assert all(rows == [] for rows in tables.values())


def test_run_logs_a_failure_once_and_keeps_the_others_going(store, store_path, caplog):
    import_paths(store, SAMPLE_DIRS)
    bad = store.read_all(10, limit=1)[0]
    runner = ProjectionRunner(
        store, store_path, [failing_projection(bad.id), BY_NAME["sessions"]], poll_interval=0.01
    )
    runner.start()
    try:
        deadline = time.monotonic() + 60  # a guard against a hang, not a timing
        while (
            set(runner.positions().values()) != {store.head_position()} and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        time.sleep(0.05)  # a few more polls: the failure must not be logged again
    finally:
        runner.stop()
    runner.close()
    head = store.head_position()
    assert saved(store_path) == {"boom": (head, 1), "sessions": (head, BY_NAME["sessions"].version)}
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"{runner.failures['boom']} (skipped; `kapacitor projections rebuild` applies it again)"]
