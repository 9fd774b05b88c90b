"""``kapacitor store copy``: a laptop's SQLite log into a PostgreSQL store, whole,
idempotent, resumable after a kill."""

from __future__ import annotations

import subprocess

from capture_helpers import KAPACITOR
from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.cli.store_cmd import copy_log
from kapacitor.store import open_store
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)


def log_of(url: str) -> list[tuple]:
    store = open_store(url)
    try:
        return [(e.id, e.stream, e.version, e.type, e.data, e.metadata) for e in store.read_all()]
    finally:
        store.close()


def test_copy_moves_the_whole_log_and_a_rerun_changes_nothing(tmp_path, pg_url):  # noqa: F811
    laptop = f"sqlite://{tmp_path / 'laptop.db'}"
    store = open_store(laptop)
    import_paths(store, SAMPLE_DIRS)
    store.close()
    first = subprocess.run([KAPACITOR, "store", "copy", laptop, pg_url], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert log_of(pg_url) == log_of(laptop) and "copied" in first.stdout
    again = subprocess.run([KAPACITOR, "store", "copy", laptop, pg_url], capture_output=True, text=True, timeout=300)
    assert "copied 0 events" in again.stdout and log_of(pg_url) == log_of(laptop)


def test_copy_resumes_where_a_killed_run_stopped(tmp_path):
    source_url, target_url = f"sqlite://{tmp_path / 'a.db'}", f"sqlite://{tmp_path / 'b.db'}"
    source, target = open_store(source_url), open_store(target_url)
    import_paths(source, SAMPLE_DIRS)
    stopped_at = []

    def kill_after_two_batches(events: int) -> None:
        stopped_at.append(events)
        if len(stopped_at) == 2:
            raise KeyboardInterrupt

    try:
        copy_log(source, target, source_url, kill_after_two_batches, batch=50)
    except KeyboardInterrupt:
        pass
    assert target.head_position() > 0
    added, skipped = copy_log(source, target, source_url, batch=50)
    assert skipped == 0 and added == source.count_after(0) - 100  # nothing read twice
    source.close(), target.close()
    assert log_of(target_url) == log_of(source_url)
