"""The server's eval jobs: a durable queue in the store file and one worker
thread owned by the app's lifespan.

A job is a row of ``eval_jobs``: ``queued`` -> ``running`` -> ``done`` (with the
``eval_id`` it stored) or ``failed`` (with ``error``); its ``progress`` is the
list of the runner's progress messages, which the SSE endpoint streams. Jobs
survive a restart: queued ones run when the worker starts again, and one that
was running when the server stopped is marked failed, never lost.

Auto-eval (off by default; ``EvalConfig.auto``): the worker follows the log for
``SessionEnded`` from its own checkpoint and queues one ``auto`` job per session.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from kapacitor.eval import catalog as catalog_mod
from kapacitor.eval.config import EvalConfig
from kapacitor.eval.runner import Settings
from kapacitor.eval.service import EvalRequest, evaluate
from kapacitor.projections.session_summary import session_of
from kapacitor.store.base import EventStore, utc_now
from kapacitor.store.sqlite import connect, migrate

log = logging.getLogger(__name__)
RESTARTED = "the server stopped while this eval ran"


def _j001_eval_jobs(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE eval_jobs (job_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, state TEXT NOT NULL,"
        " reason TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, options TEXT NOT NULL,"
        " progress TEXT NOT NULL DEFAULT '[]', eval_id TEXT, error TEXT)"
    )
    conn.execute("CREATE INDEX eval_jobs_state ON eval_jobs (state, created)")
    conn.execute("CREATE TABLE eval_auto (name TEXT PRIMARY KEY, position INTEGER NOT NULL)")


MIGRATIONS = [_j001_eval_jobs]
COLUMNS = ("job_id", "session_id", "state", "reason", "created", "updated", "options", "progress", "eval_id", "error")


def open_jobs(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    migrate(conn, MIGRATIONS)
    return conn


def job(conn: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM eval_jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    out = dict(zip(COLUMNS, row, strict=True))
    out["options"], out["progress"] = json.loads(out["options"]), json.loads(out["progress"])
    return out


class EvalWorker:
    """Runs queued eval jobs one at a time (each asks its questions in parallel)."""

    def __init__(self, store: EventStore, store_url: str, path: Path, config: EvalConfig, poll: float = 0.5):
        self.store, self.store_url, self.path, self.config, self.poll = store, store_url, path, config, poll
        self.conn = open_jobs(path)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with self.conn:
            self.conn.execute("UPDATE eval_jobs SET state = 'failed', error = ?, updated = ? WHERE state = 'running'",
                              (RESTARTED, utc_now()))

    def submit(self, session_id: str, reason: str = "manual", only: list[str] | None = None) -> str:
        job_id = str(uuid.uuid4())
        now = utc_now()
        with self._lock, self.conn:
            self.conn.execute(
                "INSERT INTO eval_jobs (job_id, session_id, state, reason, created, updated, options)"
                " VALUES (?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, session_id, reason, now, now, json.dumps({"only": only or []})),
            )
        return job_id

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            return job(self.conn, job_id)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="eval-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.config.auto:
                    self.queue_ended_sessions()
                claimed = self._claim()
                if claimed:
                    self.run_job(claimed)
                    continue
            except Exception:  # the worker must outlive any one job
                log.exception("eval worker")
            self._stop.wait(self.poll)

    def _claim(self) -> str | None:
        with self._lock, self.conn:
            row = self.conn.execute(
                "SELECT job_id FROM eval_jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
            if row is None:
                return None
            self.conn.execute("UPDATE eval_jobs SET state = 'running', updated = ? WHERE job_id = ?", (utc_now(), row[0]))
            return str(row[0])

    def _update(self, job_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._lock, self.conn:
            self.conn.execute(f"UPDATE eval_jobs SET {sets}, updated = ? WHERE job_id = ?",
                              (*fields.values(), utc_now(), job_id))

    def run_job(self, job_id: str) -> None:
        current = self.job(job_id)
        assert current is not None
        progress: list[dict[str, Any]] = []

        def note(message: dict[str, Any]) -> None:
            progress.append(message)
            self._update(job_id, progress=json.dumps(progress))

        try:
            catalog = catalog_mod.load(self.config.catalog)
            request = EvalRequest(current["session_id"], self.config.judge, self.config.model, catalog,
                                  current["options"].get("only") or [], [], Settings(max_cost=self.config.max_cost))
            result = evaluate(self.store, self.store_url, request, note)
        except Exception as exc:
            self._update(job_id, state="failed", error=f"{type(exc).__name__}: {exc}")
            return
        failed = "; ".join(f"{f['question_id']}: {f['error']}" for f in result.failed)
        self._update(job_id, state="done", eval_id=result.eval_id, error=failed or None)

    def queue_ended_sessions(self) -> None:
        """Queue an ``auto`` job for each session that ended since the last look.
        The first look starts at the log's head: switching auto-eval on does not
        evaluate the whole history."""
        with self._lock:
            found = self.conn.execute("SELECT position FROM eval_auto WHERE name = 'auto'").fetchone()
        if found is None:
            with self._lock, self.conn:
                self.conn.execute("INSERT INTO eval_auto VALUES ('auto', ?)", (self.store.head_position(),))
            return
        position = found[0]
        events = self.store.read_all(position, limit=1000)
        for event in events:
            sid = session_of(event)
            if event.type == "SessionEnded" and sid:
                with self._lock:
                    queued = self.conn.execute(
                        "SELECT 1 FROM eval_jobs WHERE session_id = ? AND reason = 'auto'", (sid,)).fetchone()
                if not queued:
                    self.submit(sid, "auto")
        if events:
            with self._lock, self.conn:
                self.conn.execute("UPDATE eval_auto SET position = ? WHERE name = 'auto'", (events[-1].position,))
