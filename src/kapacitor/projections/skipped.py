"""Events a read model stepped over, and the errors that are worth waiting out.

A read model never stops for good on one event: when its code raises on an
event, the runner writes a row here (read model, position, event id and type,
the error) and moves its checkpoint past the event, in one transaction, so the
other events still count. ``projections status``, ``/healthz`` and
``kapacitor doctor`` show the rows; ``projections rebuild`` clears a read
model's rows with its tables, so the events are applied again (and recorded
again if they still fail).

A transient error (the disk is full, the database is locked, the connection to
the server dropped) is no fault of the event: the runner waits and retries the
batch (``Backoff``) and never records it here.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from dataclasses import dataclass

from kapacitor.envelope import RecordedEvent
from kapacitor.store.base import utc_now
from kapacitor.store.readdb import ReadDb

_TRANSIENT_SQLITE = ("locked", "busy", "full", "disk i/o", "unable to open", "readonly", "read-only")


def create_table(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE projection_skipped (name TEXT NOT NULL, position BIGINT NOT NULL,"
        " event_id TEXT NOT NULL, event_type TEXT NOT NULL, error TEXT NOT NULL,"
        " skipped_at TEXT NOT NULL, PRIMARY KEY (name, position))"
    )


@dataclass(frozen=True)
class Skipped:
    """One event a read model stepped over, and why."""

    name: str
    position: int
    event_id: str
    event_type: str
    error: str
    skipped_at: str

    def __str__(self) -> str:
        return (
            f"read model {self.name!r} skipped the event at position {self.position}"
            f" (id {self.event_id}, type {self.event_type}): {self.error}"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "position": self.position,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "error": self.error,
            "skipped_at": self.skipped_at,
        }


def record(conn: ReadDb, name: str, event: RecordedEvent, cause: BaseException) -> Skipped:
    """Note that ``name`` steps over ``event`` (inside the caller's transaction)."""
    row = Skipped(name, event.position, event.id, event.type, f"{type(cause).__name__}: {cause}"[:1000], utc_now())
    conn.execute(
        conn.upsert("projection_skipped", ("name", "position", "event_id", "event_type", "error", "skipped_at"), ("name", "position")),
        (row.name, row.position, row.event_id, row.event_type, row.error, row.skipped_at),
    )
    return row


def skipped(conn: ReadDb, name: str | None = None) -> list[Skipped]:
    """The events stepped over, by read model and position (``name``'s only if given)."""
    where, params = (" WHERE name = ?", (name,)) if name else ("", ())
    rows = conn.execute(f"SELECT * FROM projection_skipped{where} ORDER BY name, position", params)
    return [Skipped(*row) for row in rows]


def counts(conn: ReadDb) -> dict[str, int]:
    """How many events each read model stepped over (read models with none left out)."""
    return dict(conn.execute("SELECT name, count(*) FROM projection_skipped GROUP BY name").fetchall())


def forget(conn: ReadDb, name: str) -> None:
    """Drop ``name``'s rows: it is being rebuilt and will meet the events again."""
    conn.execute("DELETE FROM projection_skipped WHERE name = ?", (name,))


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the environment's fault, so the same work may succeed later:
    SQLite busy, locked, full or failing I/O, a full disk, a dropped server connection."""
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(word in message for word in _TRANSIENT_SQLITE)
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN, errno.EBUSY)
    # psycopg's OperationalError (server restarted, connection lost), without importing it.
    return type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith("psycopg")


class Backoff:
    """When to try again after transient failures: ``first`` seconds, doubling up to
    ``cap``; ``reset`` after a success."""

    def __init__(self, first: float = 0.1, cap: float = 5.0):
        self.first, self.cap = first, cap
        self.failures = 0
        self.next_try = self.since = 0.0
        self.last_error = ""

    def failed(self, exc: BaseException) -> None:
        if not self.failures:
            self.since = time.monotonic()
        self.failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.next_try = time.monotonic() + min(self.cap, self.first * 2 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures, self.next_try, self.last_error = 0, 0.0, ""

    @property
    def stalled_for(self) -> float:
        """Seconds since the first of the current run of failures."""
        return time.monotonic() - self.since if self.failures else 0.0

    @property
    def waiting(self) -> bool:
        return time.monotonic() < self.next_try
