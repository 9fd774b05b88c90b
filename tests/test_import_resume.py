"""Resumable import: grown files, and kill -9 midway then a rerun."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from conftest import RECORDED, SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.capture.synthetic import replicate
from kapacitor.store import open_store


def snapshot(store):
    """The whole store as comparable data: every stream in order, every event's
    id, type, data and metadata (recording times differ by nature)."""
    return [(e.stream, e.version, e.id, e.type, e.data, e.metadata) for e in store.read_all()]


def test_a_grown_file_imports_only_its_new_lines(store, tmp_path):
    source = (
        RECORDED
        / "projects"
        / "-home-dev-src-api-server"
        / "e3ace814-42a0-4b79-a8f9-2db1e6c908e0.jsonl"
    )
    lines = source.read_bytes().splitlines(keepends=True)
    path = tmp_path / "e3ace814-42a0-4b79-a8f9-2db1e6c908e0.jsonl"
    path.write_bytes(b"".join(lines[:10]))
    first = import_paths(store, [path])
    path.write_bytes(b"".join(lines))
    second = import_paths(store, [path])
    assert (first.lines, second.lines) == (10, len(lines) - 10)
    clean = open_store(f"sqlite://{tmp_path / 'clean.db'}")
    import_paths(clean, [source])
    assert [e.id for e in store.read_all()] == [e.id for e in clean.read_all()]
    clean.close()


def test_a_replaced_file_is_read_again_without_duplicating_records(store, tmp_path):
    """Records with a uuid keep their ids wherever they move; bookkeeping records
    without one are identified by byte offset, so only those that moved are new."""
    source = (
        RECORDED / "projects" / "-home-dev-notes" / "97617f62-6fd5-442d-bb39-3ca75bd8c3e3.jsonl"
    )
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    import_paths(store, [path])
    conversation = [e.id for e in store.read_all() if e.type != "ClientStateRecorded"]
    path.write_bytes(b'{"type":"mode","mode":"plan","sessionId":"x"}\n' + source.read_bytes())
    again = import_paths(store, [path])
    uuidless = sum(1 for line in source.read_text().splitlines() if '"uuid"' not in line)
    assert again.events_added == 1 + uuidless
    assert [e.id for e in store.read_all() if e.type != "ClientStateRecorded"] == conversation


def test_kill_9_midway_then_rerun_equals_a_clean_import(tmp_path):
    data = tmp_path / "data"
    for d in SAMPLE_DIRS:
        list(replicate(d, data, 120))
    killed_db, clean_db = tmp_path / "killed.db", tmp_path / "clean.db"
    cmd = [
        sys.executable,
        "-m",
        "kapacitor",
        "--store",
        f"sqlite://{killed_db}",
        "import",
        str(data),
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if killed_db.exists():
            store = store or open_store(f"sqlite://{killed_db}")
            if store.head_position() > 0:
                break
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = store.head_position()
    store.close()
    rerun = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert '"errors": 0' in rerun.stdout
    killed, clean = open_store(f"sqlite://{killed_db}"), open_store(f"sqlite://{clean_db}")
    import_paths(clean, [data])
    total = clean.head_position()
    assert 0 < partial < total, "the kill should land midway"
    assert snapshot(killed) == snapshot(clean)
    killed.close()
    clean.close()
    shutil.rmtree(data)


def test_a_file_reached_through_a_symlinked_dir_is_the_same_file(store, tmp_path):
    source = RECORDED / "projects" / "-home-dev-notes" / "97617f62-6fd5-442d-bb39-3ca75bd8c3e3.jsonl"
    real = tmp_path / "real" / "proj"
    real.mkdir(parents=True)
    (real / source.name).write_bytes(source.read_bytes())
    (tmp_path / "link").symlink_to(tmp_path / "real")
    first = import_paths(store, [tmp_path / "link", tmp_path / "real"])
    assert first.files == 1 and first.events_added > 0
    again = import_paths(store, [tmp_path / "real" / "proj" / source.name])
    assert (again.files_unchanged, again.events_added) == (1, 0)
