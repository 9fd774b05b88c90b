"""Stopping in any order: the server's background threads and tasks (live hub,
projection runner, eval worker, chat warm-up) end without an exception, a
traceback, or a query left running on a database that is being closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading

import pytest
from test_chat_model import huge_session

import capture_helpers
from capture_helpers import Server, wait_for
from conftest import RECORDED, SAMPLE_DIRS
from fake_judge import FakeJudge
from kapacitor.access.accounts import ensure_schema
from kapacitor.capture.importer import import_paths
from kapacitor.eval.config import EvalConfig
from kapacitor.eval.jobs import RESTARTED, EvalWorker
from kapacitor.eval.runner import Settings
from kapacitor.events import NewEvent
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner, open_read_models
from kapacitor.server import chat_warmup
from kapacitor.server.live import LiveHub
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db


def test_a_cancelled_hub_ends_only_once_its_query_has_ended(tmp_path):
    """The server closes the database right after the hub's task has ended: the
    hub's query, running in a worker thread when the task was cancelled, must
    be over by then (it went on, and failed or opened a connection nobody closed)."""
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    db = open_read_models(open_read_db(store))
    ensure_schema(db)
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    class HeldHub(LiveHub):
        def advance(self, viewers):  # noqa: ANN001, ANN202 — the real one, held until released
            entered.set()
            release.wait(30)
            try:
                return super().advance(viewers)
            finally:
                finished.set()

    hub = HeldHub(store, db, [p.name for p in PROJECTIONS])

    async def scenario() -> bool:
        task = asyncio.create_task(hub.run())
        await asyncio.to_thread(entered.wait, 30)  # its query is running now
        task.cancel()
        asyncio.get_running_loop().call_later(0.2, release.set)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return finished.is_set()

    try:
        assert asyncio.run(scenario()) is True
    finally:
        release.set()
        db.close()
        store.close()


def test_a_closed_eval_worker_asks_the_judge_nothing_more_and_writes_nothing(tmp_path, monkeypatch):
    """A server stopping with an eval under way: the questions in flight end, no
    other is asked (it went on asking all of them, on a closed database), and
    the next start marks the job failed, as for a server that died."""
    judge = FakeJudge({"*": [{"sleep": 1}]})  # every question answered, a second late
    monkeypatch.setenv("ANTHROPIC_BASE_URL", judge.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    url = f"sqlite://{tmp_path / 'events.db'}"
    store = open_store(url)
    import_paths(store, SAMPLE_DIRS)
    session = json.loads((RECORDED / "sessions.json").read_text())["api-fix"]["session_id"]
    worker = EvalWorker(store, url, open_read_db(store), EvalConfig(judge="anthropic"), poll=0.05)
    job_id = worker.submit(session)
    worker.start()
    thread = worker._thread
    try:
        wait_for(lambda: judge.requests, timeout=60)  # the judge is being asked
        asked = len(judge.requests)
        worker.close()
        thread.join(60)
        assert not thread.is_alive()
        assert len(judge.requests) <= asked + Settings().parallel  # at most those begun as it closed
        again = EvalWorker(store, url, open_read_db(store), EvalConfig(judge="anthropic"))
        assert again.job(job_id)["state"] == "failed" and again.job(job_id)["error"] == RESTARTED
        again.close()
    finally:
        worker.close()
        store.close()
        judge.close()


def test_a_test_server_that_does_not_answer_in_time_is_not_left_running(tmp_path, monkeypatch):
    """``Server.start`` gives up after ``START_TIMEOUT``: the server must not run on
    (they did, one per test that gave up on a loaded machine, loading it further)."""
    started: list[subprocess.Popen[bytes]] = []
    monkeypatch.setattr(capture_helpers, "START_TIMEOUT", 1.0)
    monkeypatch.setattr(Server, "_answers", lambda self: started.append(self.proc) and False)  # never answers
    with pytest.raises(AssertionError, match="timed out"):
        Server(tmp_path / "events.db").start()
    assert started and started[-1].poll() is not None


def test_a_server_stopped_during_a_huge_chat_warm_up_stops_the_build_and_exits_quietly(tmp_path):
    """A stop while the warm-up builds a huge session's chat (20,000 calls: seconds
    of folding; at a real team's sizes it ran past the 30 s the server waited, and
    the shutdown logged a traceback): the build gives up at its next look at the
    stop flag, the server exits without a traceback, and says so in one line."""
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    events = huge_session("5e55100e-0000-4000-8000-0000000000b1", 20_000)
    assert len(events) + 1 > chat_warmup.WARM_FROM * 4
    run: list = []
    for event in [*events, None]:  # appended in runs of one stream, in order
        if run and (event is None or event.stream != run[0].stream or len(run) == 5000):
            store.append(run[0].stream, [NewEvent(e.id, e.type, e.data, e.metadata) for e in run])
            run = []
        if event is not None:
            run.append(event)
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    runner.catch_up()  # the read models up to date, as a restarted server finds them
    assert chat_warmup.candidates(store, runner.conn, 4) == ["5e55100e-0000-4000-8000-0000000000b1"]
    runner.close()
    store.close()
    server = Server(tmp_path / "events.db").start()  # the warm-up starts before the server answers
    server.stop()  # no traceback (``Server.stop`` checks), within its bound
    assert "chat warm-up stopped before it was done: the server is stopping" in server.stopping
