"""Faults of the machine, not of the data: a full disk while the read models run
(recovered without a restart), a damaged page in the store file (refused, never
written to, reported)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.cli.doctor_cmd import check_store
from kapacitor.events import NewEvent
from kapacitor.projections import skipped
from kapacitor.server.app import create_app, health_report
from kapacitor.store import open_store
from kapacitor.store.base import StoreDamaged
from kapacitor.store.health import quick_check


@contextmanager
def small_disk(path: Path, size: str = "16m"):
    """A tmpfs of ``size`` at ``path`` (needs root); None when it cannot be mounted."""
    path.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    ).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write to ``path`` until the disk is full; returns the file written."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError:
            pass
        try:
            while True:  # the last few kilobytes too
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:
            pass
    return filler


def wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_full_disk_stalls_the_read_models_and_they_recover_without_a_restart(tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        simulated = disk is None
        where = tmp_path if simulated else disk
        store_path = where / "k.db"
        store = open_store(f"sqlite://{store_path}")
        import_paths(store, SAMPLE_DIRS)
        head = store.head_position()
        store.close()
        app = create_app(f"sqlite://{store_path}", run_projections=False)
        runner = app.state.runner
        for backoff in runner.backoff.values():
            backoff.first, backoff.cap = 0.02, 0.2
        if simulated:  # no tmpfs (not root): SQLite's own limit says "database or disk is full"
            (pages,) = runner.conn.execute("PRAGMA page_count").fetchone()
            runner.conn.execute(f"PRAGMA max_page_count = {pages}")
        else:
            runner.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = fill(disk)
        runner.start()
        try:
            wait_for(lambda: runner.stalled())
            health = health_report(app.state.store, app.state.db, runner)
            assert not health["ok"] and any("waits out" in p and "full" in p for p in health["problems"])
            assert skipped.skipped(runner.conn) == []  # a full disk is never the event's fault
            if simulated:
                runner.conn.execute("PRAGMA max_page_count = 1073741823")
            else:
                filler.unlink()
            wait_for(lambda: set(runner.positions().values()) == {head})
            wait_for(lambda: not runner.stalled())
            health = health_report(app.state.store, app.state.db, runner)
            assert health["ok"] and health["lag"] == 0 and health["problems"] == []
            assert skipped.skipped(runner.conn) == []
            (count,) = runner.conn.execute("SELECT count(*) FROM sessions").fetchone()
            assert count == len({p.stem for d in SAMPLE_DIRS for p in d.glob("*/*.jsonl")})
        finally:
            app.state.close()


def damage_a_page(path: Path) -> None:
    """Overwrite one page in the middle of the events table's data with garbage."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()
    conn.close()
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\xde\xad\xbe\xef" * (page_size // 4))


def test_a_damaged_store_file_is_reported_refused_and_never_written_to(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    store.close()
    damage_a_page(store_path)
    before = store_path.read_bytes()
    problems = quick_check(store_path)
    assert problems and problems != ["ok"]
    [check], opened = check_store(f"sqlite://{store_path}")
    assert check.status == "fail" and "quick_check" in check.detail and opened is None
    # a process that opens it anyway meets the damage on its first read and refuses to write
    damaged = open_store(f"sqlite://{store_path}")
    with pytest.raises(StoreDamaged):
        damaged.read_all()
    with pytest.raises(StoreDamaged, match="nothing was written to it"):
        damaged.append("AgentSession-x", [NewEvent("00000000-0000-0000-0000-00000000d00d", "SessionEnded", {"timestamp": ""})])
    damaged.close()
    assert store_path.read_bytes() == before


def test_serve_refuses_a_damaged_store_in_one_line(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    store.close()
    damage_a_page(store_path)
    result = subprocess.run(
        ["kapacitor", "--store", f"sqlite://{store_path}", "serve", "--port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith(f"Error: {store_path} is damaged or not a Kapacitor store")
