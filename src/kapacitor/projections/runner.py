"""Runs read models as followers of the one ordered event log.

Each projection keeps its tables and a checkpoint (the last global position it
handled) in the store's own database (``store.readdb``: the SQLite file or the
PostgreSQL database). A batch's writes and its new
checkpoint commit in one transaction, so after a crash a projection resumes
exactly where its last commit left it: nothing is counted twice or skipped.

A projection that raises on an event never stops for good: the event is
recorded in ``projection_skipped`` (read model, position, event id, error; see
``skipped``), the checkpoint moves past it and the projection goes on; a rebuild
applies it again. A transient error (disk full, database locked) is not the
event's fault: the runner keeps its place and retries with back-off until it
succeeds. A projection whose version changed is rebuilt from the start.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kapacitor.cycles import young_collections_only
from kapacitor.envelope import RecordedEvent
from kapacitor.projections import skipped
from kapacitor.projections.skipped import Backoff, is_transient
from kapacitor.store.base import EventStore, StoreClosed
from kapacitor.store.readdb import ReadDb, migrate, open_read_db_at

if TYPE_CHECKING:
    import logging


def log() -> logging.Logger:
    """This module's logger (``logging`` is imported when first needed: a read of
    an up-to-date read model, as ``sessions --json``, logs nothing)."""
    import logging

    return logging.getLogger(__name__)


@dataclass(frozen=True)
class Projection:
    """A read model: its name, version, the tables its ``setup`` creates, and
    ``apply``, which writes one batch of events into those tables."""

    name: str
    version: int
    tables: tuple[str, ...]
    setup: Callable[[ReadDb], None]
    apply: Callable[[ReadDb, Sequence[RecordedEvent]], None]


@dataclass(frozen=True)
class Checkpoint:
    name: str
    position: int
    version: int


class ProjectionFailed(Exception):
    """A projection could not handle an event (it was skipped and recorded)."""

    def __init__(self, name: str, event: RecordedEvent, cause: BaseException):
        super().__init__(
            f"projection {name!r} failed on event at position {event.position}"
            f" (id {event.id}, type {event.type}): {type(cause).__name__}: {cause}"
        )
        self.name, self.event, self.cause = name, event, cause


def _p001_projection_checkpoints(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE projection_checkpoints ("
        " name TEXT PRIMARY KEY, position BIGINT NOT NULL, version INTEGER NOT NULL)"
    )


def _p002_projection_skipped(conn: ReadDb) -> None:
    skipped.create_table(conn)


MIGRATIONS = [_p001_projection_checkpoints, _p002_projection_skipped]


def open_read_models(target: Path | str | ReadDb) -> ReadDb:
    """The read-model database (a SQLite file, a store URL, or an open ``ReadDb``),
    with the checkpoint table in place."""
    conn = open_read_db_at(target)
    migrate(conn, MIGRATIONS)
    return conn


def checkpoints(conn: ReadDb) -> dict[str, Checkpoint]:
    rows = conn.execute("SELECT name, position, version FROM projection_checkpoints")
    return {row[0]: Checkpoint(*row) for row in rows}


def reset(conn: ReadDb, projection: Projection) -> None:
    """Drop the projection's tables and checkpoint and set it up empty, at position 0."""
    with _transaction(conn):
        for table in projection.tables:
            conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        projection.setup(conn)
        skipped.forget(conn, projection.name)
        conn.execute(
            conn.upsert("projection_checkpoints", ("name", "position", "version"), ("name",)),
            (projection.name, 0, projection.version),
        )


def apply_batch(conn: ReadDb, projection: Projection, events: Sequence[RecordedEvent]) -> list[ProjectionFailed]:
    """Apply events and move the checkpoint past them, in one transaction. When the
    batch fails, retry it an event at a time: an event the projection raises on is
    recorded as skipped (``skipped.record``) and stepped over. Returns the events
    skipped. A transient error (``skipped.is_transient``) is raised as it is: the
    checkpoint stays before the batch, to be retried."""
    try:
        _apply_committed(conn, projection, events)
        return []
    except Exception as exc:
        if is_transient(exc):
            raise
    failed = []
    for event in events:
        try:
            _apply_committed(conn, projection, [event])
        except Exception as exc:
            if is_transient(exc):
                raise
            failed.append(ProjectionFailed(projection.name, event, exc))
            _apply_committed(conn, projection, [event], skip=exc)
    return failed


def apply_together(conn: ReadDb, work: Sequence[tuple[Projection, Sequence[RecordedEvent]]]) -> bool:
    """Every (projection, events) of ``work`` and their checkpoints in one
    transaction: one commit per batch instead of one per read model (on
    PostgreSQL each commit waits for its WAL flush), the checkpoint rows locked
    in one query. False, with nothing written, when any of them
    raised: the caller then applies them one by one (``apply_batch``), which
    skips a bad event or waits out a transient error for that read model alone."""
    names = sorted(p.name for p, _ in work)  # rows locked in one order: two runners never deadlock
    try:
        with _transaction(conn):
            saved = dict(conn.execute(f"SELECT name, position FROM projection_checkpoints WHERE name IN"
                                      f" ({','.join('?' * len(names))}) ORDER BY name{conn.for_update}", names))
            for projection, events in work:
                _apply_locked(conn, projection, events, position=saved[projection.name])
    except Exception:  # noqa: BLE001 — one by one, the error is handled where it belongs
        return False
    return True


def _apply_committed(
    conn: ReadDb, projection: Projection, events: Sequence[RecordedEvent], skip: BaseException | None = None
) -> None:
    with _transaction(conn):
        _apply_locked(conn, projection, events, skip)


def _apply_locked(
    conn: ReadDb, projection: Projection, events: Sequence[RecordedEvent], skip: BaseException | None = None,
    position: int | None = None,
) -> None:
    """Apply in the caller's transaction, from the checkpoint ``position`` (read and
    locked by the caller) or read here: under the write lock (SQLite) or the
    checkpoint row's lock (PostgreSQL), so two runners on one database never
    apply an event twice."""
    if position is None:
        (position,) = conn.execute(
            f"SELECT position FROM projection_checkpoints WHERE name = ?{conn.for_update}", (projection.name,)
        ).fetchone()
    unseen = after(events, position)
    if unseen:
        if skip is None:
            projection.apply(conn, unseen)
        else:
            for event in unseen:
                skipped.record(conn, projection.name, event, skip)
        conn.execute(
            "UPDATE projection_checkpoints SET position = ? WHERE name = ?",
            (unseen[-1].position, projection.name),
        )


def after(events: Sequence[RecordedEvent], position: int) -> Sequence[RecordedEvent]:
    """The events past ``position`` (``events`` are in log order)."""
    if not events or events[0].position > position:
        return events
    return [e for e in events if e.position > position]


def _transaction(conn: ReadDb):  # type: ignore[no-untyped-def]
    """One transaction, holding the write lock from its start; ROLLBACK on any error
    (also a failed COMMIT: a full disk can refuse it)."""
    return conn.transaction()


def listen(db: ReadDb):  # type: ignore[no-untyped-def]
    """A connection LISTENing for appends and for visibility changes (PostgreSQL), or
    None (SQLite: polling). An access change moves no read model, but its NOTIFY
    wakes the live hub through ``on_progress`` like an append's."""
    if db.dialect != "postgresql":
        return None
    from kapacitor.access.changes import CHANNEL as ACCESS_CHANNEL
    from kapacitor.store.postgres import NOTIFY_CHANNEL

    listener = db.connect()
    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
    listener.execute(f"LISTEN {ACCESS_CHANNEL}")
    return listener


class ProjectionStalled(Exception):
    """A read model could not move for longer than the caller was willing to wait,
    for a transient reason (disk full, database locked): nothing was skipped."""


class ProjectionRunner:
    """Keeps projections up to date with the log: ``catch_up`` once, or ``run``
    (``start``/``stop``) to follow appends as they happen.

    ``failures`` holds, per projection, the last event this runner skipped (all of
    them are in ``skipped.skipped``); ``backoff`` a projection's transient trouble
    (``Backoff.failures`` is 0 while all is well); ``error`` what last stopped the
    whole step (reading the log failed), "" when it runs. ``on_progress`` (set by
    the server to wake its live hub) is called from the runner's thread after a
    step that read events or followed a NOTIFY: the read models may have moved,
    by this runner or another one on the same database (or, ``kapacitor_access``,
    someone's visibility changed: ``access.changes``)."""

    def __init__(
        self,
        store: EventStore,
        path: Path | str | ReadDb,
        projections: Sequence[Projection],
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.05,
        max_backoff: float = 5.0,
    ):
        self.store = store
        self.projections = list(projections)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.failures: dict[str, ProjectionFailed] = {}
        self.backoff = {p.name: Backoff(cap=max_backoff) for p in self.projections}
        self._whole = Backoff(cap=max_backoff)
        self.error = ""
        self.on_progress: Callable[[], None] | None = None
        self.conn = open_read_models(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listener = listen(self.conn)
        saved = checkpoints(self.conn)
        for projection in self.projections:
            known = saved.get(projection.name)
            if known is None or known.version != projection.version:
                if known is not None:  # an upgrade: until it has caught up, its reads are partial
                    log().warning("read model %r is rebuilt from the start of the log (version %d, was %d)",
                                  projection.name, projection.version, known.version)
                reset(self.conn, projection)

    def positions(self) -> dict[str, int]:
        saved = checkpoints(self.conn)
        return {p.name: saved[p.name].position for p in self.projections}

    def stalled(self) -> dict[str, str]:
        """Projections waiting out a transient error, with the error."""
        return {name: b.last_error for name, b in self.backoff.items() if b.failures}

    def step(self) -> list[RecordedEvent]:
        """Read one batch after the lowest checkpoint of the projections not waiting
        out a transient error and give each the events it has not seen. Returns the
        batch read. All of them in one transaction while all is well
        (``apply_together``); else each in its own: a skipped event is logged once,
        a transient error puts the projection in back-off."""
        ready = [p for p in self.projections if not self.backoff[p.name].waiting]
        if not ready:
            return []
        positions = self.positions()
        batch = self.store.read_all(min(positions[p.name] for p in ready), limit=self.batch_size)
        work = [(p, unseen) for p in ready if (unseen := after(batch, positions[p.name]))]
        healthy = not any(self.backoff[p.name].failures for p, _ in work)
        if len(work) > 1 and healthy and apply_together(self.conn, work):
            return batch
        for projection, unseen in work:
            backoff = self.backoff[projection.name]
            try:
                failed = apply_batch(self.conn, projection, unseen)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if not backoff.failures:
                    log().warning("read model %r waits and retries: %s: %s", projection.name, type(exc).__name__, exc)
                backoff.failed(exc)
                continue
            if backoff.failures:
                log().warning("read model %r goes on after %d retries", projection.name, backoff.failures)
                backoff.reset()
            for failure in failed:
                log().error("%s (skipped; `kapacitor projections rebuild` applies it again)", failure)
                self.failures[projection.name] = failure
        return batch

    def catch_up(self, progress: Callable[[int], None] | None = None, patience: float = 60.0) -> None:
        """Apply everything up to the head; ``progress`` gets the number of events
        each batch read (positions are not counts: see ``store.base.Position``).
        Skipped events are in ``failures``. A transient error is retried for up to
        ``patience`` seconds, then raised as ``ProjectionStalled``."""
        with young_collections_only():
            while True:
                batch = self.step()
                if batch:
                    if progress:
                        progress(len(batch))
                    del batch
                    gc.collect(0)
                    continue
                waiting = [b for b in self.backoff.values() if b.failures]
                if not waiting:
                    return
                if max(b.stalled_for for b in waiting) > patience:
                    raise ProjectionStalled("; ".join(f"read model {n!r}: {e}" for n, e in self.stalled().items()))
                time.sleep(max(0.0, min(b.next_try for b in waiting) - time.monotonic()))

    def run(self, stop: threading.Event) -> None:
        """Catch up, then follow new appends (polling) until ``stop`` is set. Never
        ends on an error: a failed read of the log is logged (``error``) and retried
        with back-off, like a transient error of one projection. A store or
        database closed under it (``StoreClosed``) ends it, logged once: closed
        is for good."""
        notified = False
        while not stop.is_set():
            try:
                batch = self.step()
            except StoreClosed as exc:
                log().warning("read models stopped: %s", exc)
                return
            except Exception as exc:
                if not self._whole.failures:
                    log().error("read models wait and retry: %s: %s", type(exc).__name__, exc)
                self._whole.failed(exc)
                self.error = self._whole.last_error
                stop.wait(max(self.poll_interval, self._whole.next_try - time.monotonic()))
                continue
            if self._whole.failures:
                log().warning("read models go on after %d retries", self._whole.failures)
                self._whole.reset()
                self.error = ""
            if (batch or notified) and self.on_progress:
                try:
                    self.on_progress()
                except Exception:  # a listener's fault must not stop the read models
                    log().exception("read models: on_progress failed")
            notified = False
            if len(batch) < self.batch_size:
                notified = self.wait(stop)

    def wait(self, stop: threading.Event) -> bool:
        """Until the next poll: on PostgreSQL, or until a NOTIFY (an append's or an
        access change's), whichever first. True when a NOTIFY ended it."""
        if self.listener is None:
            stop.wait(self.poll_interval)
            return False
        try:
            for _ in self.listener.notifies(timeout=self.poll_interval * 4, stop_after=1):
                return True
        except Exception:  # noqa: BLE001 — a broken listener falls back to polling
            log().warning("LISTEN connection lost; polling the log instead")
            self.listener = None
        return False

    @property
    def following(self) -> bool:
        """Whether ``start`` runs it in its thread (else a caller must ``catch_up``)."""
        return self._thread is not None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name="projections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        self.stop()
        if self.listener is not None:
            self.listener.close()
        self.conn.close()
