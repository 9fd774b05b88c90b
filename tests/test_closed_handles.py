"""Closed is closed: a store or read-model database, once ``close()``d, opens no
connection again, whichever thread calls (each thread's connection is opened on
its first call, so a thread that had none quietly opened one: a closed eval
worker stored an eval 120 s after its server stopped). Every call raises
``StoreClosed``, and the server's background threads take it as "stop": they
end with one log line, not a traceback. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from capture_helpers import wait_for
from conftest import SAMPLE_DIRS
from kapacitor.access.accounts import ensure_schema
from kapacitor.capture.importer import import_paths
from kapacitor.eval.config import EvalConfig
from kapacitor.eval.jobs import EvalWorker
from kapacitor.events import NewEvent
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.server.live import LiveHub
from kapacitor.store import open_store
from kapacitor.store.base import StoreClosed
from kapacitor.store.readdb import open_read_db
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    return f"sqlite://{tmp_path / 'events.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def connections(store_url: str) -> int:
    """Connections this process (SQLite: its open files of the store) or anyone
    (PostgreSQL: the server's backends on the test's own database) holds."""
    if store_url.startswith("sqlite://"):
        path = Path(store_url.removeprefix("sqlite://"))
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))
    name = store_url.rsplit("/", 1)[1]
    with psycopg.connect(store_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)).fetchone()[0]


def in_thread(work):  # noqa: ANN001, ANN201
    """What ``work()`` returns or raises in a new thread (one that never used the handle)."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # noqa: BLE001 — handed back to the test
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    return out[0]


class Worker:
    """A thread that keeps its thread-local connection: it used the handle before the close."""

    def __init__(self) -> None:
        self.jobs: list[tuple[object, threading.Event, list[object]]] = []
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self.jobs:
                work, done, out = self.jobs.pop(0)
                if work is None:
                    return
                try:
                    out.append(work())
                except BaseException as exc:  # noqa: BLE001
                    out.append(exc)
                done.set()

    def call(self, work):  # noqa: ANN001, ANN201
        done, out = threading.Event(), []
        self.jobs.append((work, done, out))
        self._wake.set()
        assert done.wait(60)
        return out[0]

    def end(self) -> None:
        self.jobs.append((None, threading.Event(), []))
        self._wake.set()
        self._thread.join(60)


def event(n: int) -> NewEvent:
    return NewEvent(f"closed-{n}", "UserMessageReceived", {"timestamp": "2026-11-30T01:00:00.000Z", "content": "hi"}, {})


def test_a_closed_store_opens_no_connection_again_in_any_thread(store_url):
    store = open_store(store_url)
    store.append("AgentSession-a", [event(1)])
    worker = Worker()
    try:
        assert worker.call(store.head_position) == 1  # this thread has its connection now
        store.close()
        calls = {
            "head_position": store.head_position,
            "read_all": store.read_all,
            "append": lambda: store.append("AgentSession-a", [event(2)]),
            "stream_version": lambda: store.stream_version("AgentSession-a"),
        }
        for name, call in calls.items():
            for where, outcome in (("this thread", _outcome(call)), ("a thread that used it", worker.call(call)),
                                   ("a new thread", in_thread(call))):
                assert isinstance(outcome, StoreClosed), f"{name} in {where} after close: {outcome!r}"
                assert "is closed" in str(outcome)
        assert connections(store_url) == 0
    finally:
        worker.end()
        store.close()
    again = open_store(store_url)  # nothing was written after the close
    assert [e.id for e in again.read_all()] == ["closed-1"]
    again.close()


RACE = """
import sys, threading
from kapacitor.events import NewEvent
from kapacitor.store import open_store
from kapacitor.store.base import StoreClosed
from kapacitor.store.readdb import open_read_db

sys.setswitchinterval(1e-6)  # switch threads often: some are inside a call when the close lands
url, handle, rounds, wrong = sys.argv[1], sys.argv[2], int(sys.argv[3]), []
for r in range(rounds):
    store = open_store(url)
    stream = f"AgentSession-{r}"
    store.append(stream, [NewEvent(f"race-{r}", "UserMessageReceived", {"content": "hi"}, {})])
    if handle == "store":
        closing = store
        calls = [store.head_position, store.read_all, store.storage, lambda: store.stream_version(stream),
                 lambda: store.read_stream(stream), lambda: store.get_checkpoint("probe"),
                 lambda: store.get_stream_metadata(stream), lambda: store.set_stream_metadata("m", {"n": 1})]
    else:
        closing = db = open_read_db(store)
        db.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER)")
        db.executemany("INSERT INTO probe VALUES (?)", [(n,) for n in range(100)])

        def in_transaction():
            with db.transaction():
                db.execute("SELECT count(*) FROM probe").fetchone()

        calls = [lambda: db.execute("SELECT count(*) FROM probe").fetchone(), lambda: list(db.execute("SELECT n FROM probe")),
                 lambda: db.executemany("INSERT INTO probe VALUES (?)", [(1,)]), in_transaction]
    started, outcomes = threading.Barrier(5), []

    def hammer(n):
        started.wait()
        while True:
            try:
                calls[n % len(calls)]()
            except BaseException as exc:
                outcomes.append(exc)
                return
            n += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    for _ in range(50):
        calls[0]()
    closing.close()
    for thread in threads:
        thread.join()
    store.close()
    wrong += [repr(o) for o in outcomes if not isinstance(o, StoreClosed)]
print(len(wrong), wrong[:3])
"""


@pytest.mark.parametrize("handle", ["store", "read-model database"])
def test_a_handle_closed_in_the_middle_of_calls_raises_only_store_closed(store_url, handle):
    """A close that lands while other threads are inside calls waits for them
    (closing a SQLite connection under a running statement crashed the
    interpreter) and gives them ``StoreClosed``, not the driver's own
    "closed database" error. Four threads loop over every kind of call until the
    close stops them, in a process of its own (a crash fails only this test)."""
    rounds = 30 if store_url.startswith("sqlite://") else 5
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", RACE, store_url, handle.split()[0], str(rounds)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0 []", done.stdout


def test_a_closed_read_model_database_opens_no_connection_again_in_any_thread(store_url):
    store = open_store(store_url)
    db = open_read_db(store)
    db.execute("CREATE TABLE probe (n INTEGER)")
    worker = Worker()
    try:
        worker.call(lambda: db.execute("INSERT INTO probe VALUES (1)"))
        db.close()
        store.close()

        def in_transaction() -> None:
            with db.transaction():
                db.execute("INSERT INTO probe VALUES (3)")

        calls = {
            "execute": lambda: db.execute("SELECT count(*) FROM probe").fetchone(),
            "executemany": lambda: db.executemany("INSERT INTO probe VALUES (?)", [(2,)]),
            "transaction": in_transaction,
            "connect": db.connect,  # a connection of the caller's own (LISTEN, an advisory lock)
        }
        for name, call in calls.items():
            for where, outcome in (("this thread", _outcome(call)), ("a thread that used it", worker.call(call)),
                                   ("a new thread", in_thread(call))):
                assert isinstance(outcome, StoreClosed), f"{name} in {where} after close: {outcome!r}"
        assert connections(store_url) == 0
    finally:
        worker.end()
        db.close()
    reopened = open_store(store_url)
    again = open_read_db(reopened)
    assert again.execute("SELECT n FROM probe").fetchall() == [(1,)]
    again.close()
    reopened.close()


def _outcome(call):  # noqa: ANN001, ANN202
    try:
        return call()
    except BaseException as exc:  # noqa: BLE001
        return exc


def stop_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What was logged at warning or above; none may carry a traceback."""
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records]
    return records


def assert_thread_stops_with_one_line(thread: threading.Thread, close, caplog, says: str) -> None:  # noqa: ANN001
    """``close()`` its database under ``thread``: it ends by itself, logging one
    line (no traceback) that says ``says`` and that the database is closed."""
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        close()
        thread.join(60)
        assert not thread.is_alive()
    [line] = stop_lines(caplog)
    assert says in line.getMessage() and "is closed" in line.getMessage()


def test_the_projection_runner_stops_once_its_database_is_closed_under_it(store_url, caplog):
    store = open_store(store_url)
    import_paths(store, SAMPLE_DIRS[:1])
    db = open_read_db(store)
    runner = ProjectionRunner(store, db, PROJECTIONS)
    runner.start()
    thread = runner._thread
    try:
        wait_for(lambda: min(runner.positions().values()) == store.head_position(), timeout=120)
        # not stopped first: it must not go on through a connection of its own
        assert_thread_stops_with_one_line(thread, db.close, caplog, "read models stopped")
    finally:
        runner.close()
        store.close()


def test_the_eval_worker_stops_once_its_database_is_closed_under_it(store_url, caplog):
    store = open_store(store_url)
    worker = EvalWorker(store, store_url, open_read_db(store), EvalConfig(judge="anthropic"), poll=0.05)
    worker.start()
    thread = worker._thread
    try:
        assert_thread_stops_with_one_line(thread, worker.conn.close, caplog, "eval worker stopped")
    finally:
        worker.close()
        store.close()


def test_the_live_hub_stops_once_its_database_is_closed_under_it(store_url, caplog):
    store = open_store(store_url)
    db = open_read_db(store)
    ensure_schema(db)
    ProjectionRunner(store, open_read_db(store), PROJECTIONS).close()  # the read-model tables
    hub = LiveHub(store, db, [p.name for p in PROJECTIONS])

    async def scenario() -> None:
        task = asyncio.create_task(hub.run())
        await asyncio.sleep(0.2)
        await asyncio.to_thread(db.close)
        await asyncio.wait_for(task, 60)  # ends by itself, without an exception

    try:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            asyncio.run(scenario())
        [line] = stop_lines(caplog)
        assert "live updates stopped" in line.getMessage() and "is closed" in line.getMessage()
    finally:
        db.close()
        store.close()

