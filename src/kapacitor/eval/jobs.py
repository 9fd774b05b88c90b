"""The server's eval jobs: a durable queue in the store's own database (the
SQLite file or the PostgreSQL database, through the read-model port) and one
worker thread owned by the app's lifespan.

A job is a row of ``eval_jobs``: ``queued`` -> ``running`` -> ``done`` (with the
``eval_id`` it stored) or ``failed`` (with ``error``); its ``progress`` is the
list of the runner's progress messages, which the SSE endpoint streams. Jobs
survive a restart: queued ones run when a worker starts again, and one that was
running when its server stopped is marked failed, never lost. Several servers on
one PostgreSQL database share the queue: a job is claimed by one worker (a
conditional update), and a worker starting up fails only the running jobs of
workers that are gone (each worker holds an advisory lock named by its ``worker``
id while it lives; on SQLite one server owns the file).

Auto-eval (off by default; ``EvalConfig.auto``): the worker follows the log for
``SessionEnded`` from its own checkpoint and queues one ``auto`` job per session
(checkpoint and queue in one transaction, so two servers queue a session once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from typing import Any

from kapacitor.eval import catalog as catalog_mod
from kapacitor.eval.config import EvalConfig
from kapacitor.eval.judges import JudgeError, NoApiKey
from kapacitor.eval.runner import Settings
from kapacitor.eval.service import EvalRequest, NoSuchSession, NothingAnswered, evaluate
from kapacitor.projections.session_summary import session_of
from kapacitor.store.base import EventStore, StoreClosed, utc_now
from kapacitor.store.readdb import ReadDb, migrate

log = logging.getLogger(__name__)
RESTARTED = "the server stopped while this eval ran"


_SUBMIT_LOCK = 0x6B61_7063_0005  # pg_advisory_xact_lock key: one count-and-queue at a time (SQLite: its write lock)


class TooManyJobs(Exception):
    """The person has as many jobs queued or running as they may (``EvalConfig.max_jobs``):
    the message says so in one line (the server answers it 429)."""


class _Stopping(Exception):
    """The worker is closing: its job asks no further question and writes nothing
    more (the next worker to start marks the job failed, ``RESTARTED``)."""


def _j001_eval_jobs(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE eval_jobs (job_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, state TEXT NOT NULL,"
        " reason TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, options TEXT NOT NULL,"
        " progress TEXT NOT NULL DEFAULT '[]', eval_id TEXT, error TEXT)"
    )
    conn.execute("CREATE INDEX eval_jobs_state ON eval_jobs (state, created)")
    conn.execute("CREATE TABLE eval_auto (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")


def _j002_eval_job_worker(conn: ReadDb) -> None:
    conn.execute("ALTER TABLE eval_jobs ADD COLUMN worker TEXT")


def _j003_eval_job_person(conn: ReadDb) -> None:
    conn.execute("ALTER TABLE eval_jobs ADD COLUMN person TEXT")
    conn.execute("CREATE INDEX eval_jobs_person ON eval_jobs (person, state)")


MIGRATIONS = [_j001_eval_jobs, _j002_eval_job_worker, _j003_eval_job_person]
COLUMNS = ("job_id", "session_id", "state", "reason", "created", "updated", "options", "progress", "eval_id", "error")


def open_jobs(db: ReadDb) -> ReadDb:
    """``db`` (the store's own database) with the job tables in place."""
    migrate(db, MIGRATIONS)
    return db


def job(conn: ReadDb, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM eval_jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    out = dict(zip(COLUMNS, row, strict=True))
    out["options"], out["progress"] = json.loads(out["options"]), json.loads(out["progress"])
    return out


def _lock_key(worker: str) -> int:
    """The PostgreSQL advisory lock a live worker holds: a signed 64-bit number of its id."""
    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:8], "big", signed=True)


def failure(exc: Exception) -> str:
    """What a failed job says, for the person who clicked Run eval: what
    happened and, where there is one, the fix. An eval's own failures (no key,
    judge unreachable, no question answered, a bad catalog or judge name) as their message;
    anything else, a defect, with its class name for the report."""
    if isinstance(exc, NoApiKey):
        return (f"{exc.backend} judge: no API key on the server: set {exc.variable} in the environment of"
                " `kapacitor serve` and restart it (or run `kapacitor eval SESSION` where the key is set)")
    if isinstance(exc, (JudgeError, NoSuchSession, NothingAnswered, catalog_mod.CatalogError, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class EvalWorker:
    """Runs queued eval jobs one at a time (each asks its questions in parallel).
    ``db``: the store's own database (``open_read_db(store)``), closed with the worker."""

    def __init__(self, store: EventStore, store_url: str, db: ReadDb, config: EvalConfig, poll: float = 0.5):
        self.store, self.store_url, self.config, self.poll = store, store_url, config, poll
        self.conn = open_jobs(db)
        self.worker = str(uuid.uuid4())
        self._alive = None  # PostgreSQL: the connection holding this worker's advisory lock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if db.dialect == "postgresql":
            self._alive = db.connect()
            self._alive.execute("SELECT pg_advisory_lock(%s)", (_lock_key(self.worker),))
        self._fail_orphans()

    def _fail_orphans(self) -> None:
        """Mark failed the running jobs whose worker is gone (every running job on SQLite)."""
        for job_id, worker in self.conn.execute("SELECT job_id, worker FROM eval_jobs WHERE state = 'running'").fetchall():
            if self._alive is not None and worker:
                key = _lock_key(worker)
                if not self._alive.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                    continue  # its worker is alive, in another server
                self._alive.execute("SELECT pg_advisory_unlock(%s)", (key,))
            self.conn.execute("UPDATE eval_jobs SET state = 'failed', error = ?, updated = ? WHERE job_id = ? AND state = 'running'",
                              (RESTARTED, utc_now(), job_id))

    def submit(self, session_id: str, reason: str = "manual", only: list[str] | None = None, person: str = "") -> str:
        """Queue a job; its id. ``person``: who asked (Run eval), whose queued and
        running jobs are counted: ``TooManyJobs`` when they have
        ``config.jobs_per_person`` already (auto-eval's jobs, person "", are not
        counted). Counted and queued in one transaction, so that two servers or
        two clicks at once cannot both take the last place."""
        if not person:
            return self._queue(session_id, reason, only, None)
        with self.conn.transaction():
            if self.conn.dialect == "postgresql":
                self.conn.execute("SELECT pg_advisory_xact_lock(?)", (_SUBMIT_LOCK,))
            cap = self.config.jobs_per_person
            if self.active(person) >= cap:
                raise TooManyJobs(f"{person} has {cap} eval{'s' if cap != 1 else ''} queued or running already"
                                  f" (at most {cap} at once): run this one when one of them has finished")
            return self._queue(session_id, reason, only, person)

    def _queue(self, session_id: str, reason: str, only: list[str] | None, person: str | None) -> str:
        job_id, now = str(uuid.uuid4()), utc_now()
        self.conn.execute(
            "INSERT INTO eval_jobs (job_id, session_id, state, reason, created, updated, options, person)"
            " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
            (job_id, session_id, reason, now, now, json.dumps({"only": only or []}), person),
        )
        return job_id

    def active(self, person: str) -> int:
        """How many jobs ``person`` has queued or running."""
        return int(self.conn.execute("SELECT count(*) FROM eval_jobs WHERE person = ? AND state IN ('queued', 'running')",
                                     (person,)).fetchone()[0])

    def job(self, job_id: str) -> dict[str, Any] | None:
        return job(self.conn, job_id)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="eval-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread: a job under way asks no further question (the questions
        in flight end first, up to their timeout: waited for at most 5 s, then the
        thread is left to end on its own, writing nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        if self._alive is not None:
            self._alive.close()
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
            except Exception as exc:  # the worker must outlive any one job
                if self._stop.is_set() or isinstance(exc, StoreClosed):  # the database closed under it: stop
                    log.warning("eval worker stopped: %s: %s", type(exc).__name__, exc)
                    return
                log.exception("eval worker")
            self._stop.wait(self.poll)

    def _claim(self) -> str | None:
        """The oldest queued job, now running in this worker; None when there is
        none. The update is conditional: of two workers racing, one wins."""
        while True:
            row = self.conn.execute(
                "SELECT job_id FROM eval_jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
            if row is None:
                return None
            won = self.conn.execute("UPDATE eval_jobs SET state = 'running', worker = ?, updated = ?"
                                    " WHERE job_id = ? AND state = 'queued'", (self.worker, utc_now(), row[0])).rowcount
            if won:
                return str(row[0])

    def _update(self, job_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE eval_jobs SET {sets}, updated = ? WHERE job_id = ?", (*fields.values(), utc_now(), job_id))

    def run_job(self, job_id: str) -> None:
        current = self.job(job_id)
        assert current is not None
        progress: list[dict[str, Any]] = []

        def note(message: dict[str, Any]) -> None:
            if self._stop.is_set():
                raise _Stopping
            progress.append(message)
            self._update(job_id, progress=json.dumps(progress))

        try:
            catalog = catalog_mod.load(self.config.catalog)
            request = EvalRequest(current["session_id"], self.config.judge, self.config.model, catalog,
                                  current["options"].get("only") or [], [], Settings(max_cost=self.config.max_cost))
            result = evaluate(self.store, self.store_url, request, note)
        except _Stopping:
            return
        except Exception as exc:
            self._update(job_id, state="failed", error=failure(exc))
            return
        failed = "; ".join(f"{f['question_id']}: {f['error']}" for f in result.failed)
        self._update(job_id, state="done", eval_id=result.eval_id, error=failed or None)

    def queue_ended_sessions(self) -> None:
        """Queue an ``auto`` job for each session that ended since the last look.
        The first look starts at the log's head: switching auto-eval on does not
        evaluate the whole history."""
        with self.conn.transaction():
            found = self.conn.execute(f"SELECT position FROM eval_auto WHERE name = 'auto'{self.conn.for_update}").fetchone()
            if found is None:
                self.conn.execute("INSERT INTO eval_auto VALUES ('auto', ?) ON CONFLICT DO NOTHING", (self.store.head_position(),))
                return
            events = self.store.read_all(found[0], limit=1000)
            for event in events:
                sid = session_of(event)
                if event.type == "SessionEnded" and sid and not self.conn.execute(
                        "SELECT 1 FROM eval_jobs WHERE session_id = ? AND reason = 'auto'", (sid,)).fetchone():
                    self.submit(sid, "auto")
            if events:
                self.conn.execute("UPDATE eval_auto SET position = ? WHERE name = 'auto'", (events[-1].position,))
