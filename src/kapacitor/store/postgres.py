"""The team event store: one PostgreSQL database, through psycopg 3.

Why appends are serialised. A global position taken from a sequence is handed
out when a row is inserted, not when its transaction commits: writer A takes
position 7, writer B takes 8 and commits first, a reader sees 8 and remembers
it, then A commits 7 behind the reader's back and the reader never sees it. So
every append transaction first takes one transaction-level advisory lock
(``pg_advisory_xact_lock``) and numbers its events ``max(position) + 1 ...``
while holding it. PostgreSQL makes a commit visible before it releases the
transaction's locks, so the next writer reads the head only after the previous
one is visible: positions are gap-free and appear to readers in commit order,
exactly as SQLite's single write lock gives. An advisory lock rather than
``LOCK TABLE ... EXCLUSIVE`` because it blocks nobody but other appenders
(readers, autovacuum and metadata updates go on), and rather than a counter row
because it leaves no hot row to vacuum. Appends are short (one round trip per
step, rows sent with COPY), so one writer at a time is not the bottleneck for a
team's hooks and importers.

Data and metadata are stored as ``bytea`` holding ``codec.dumps`` JSON, not as
``jsonb``: ``jsonb`` rejects NUL characters and lone surrogates, which real
transcripts contain. Schema changes are an ordered list of named migrations
recorded in ``_migrations``, applied at open under another advisory lock so two
processes opening a fresh database at once do not race. Connections are kept in
a small pool of idle ones, so any number of threads share a few connections.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq

from kapacitor.events import NewEvent, RecordedEvent
from kapacitor.store import codec
from kapacitor.store.base import (
    ANY,
    NO_STREAM,
    AppendResult,
    EventIdConflict,
    StoreError,
    check_expected_version,
    utc_now,
)

# Advisory lock keys (per database): appends, and schema migrations.
_APPEND_LOCK = 0x6B61_7063_0001
_MIGRATE_LOCK = 0x6B61_7063_0002


def _m001_events(cur: psycopg.Cursor) -> None:
    cur.execute(
        """
        CREATE TABLE events (
            position bigint PRIMARY KEY,
            id text NOT NULL UNIQUE,
            stream text NOT NULL,
            version bigint NOT NULL,
            type text NOT NULL,
            data bytea NOT NULL,
            metadata bytea NOT NULL,
            recorded_at text NOT NULL,
            UNIQUE (stream, version)
        )"""
    )
    cur.execute(
        """
        CREATE TABLE streams (
            stream text PRIMARY KEY,
            version bigint NOT NULL DEFAULT -1,
            metadata bytea
        )"""
    )


MIGRATIONS: list[Callable[[psycopg.Cursor], None]] = [_m001_events]
"""Schema changes, in order; each runs once and is recorded in ``_migrations``."""


def migrate(conn: psycopg.Connection, migrations: Sequence[Callable[[psycopg.Cursor], None]]) -> None:
    """Apply the migrations this database has not seen yet, one process at a time."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        cur.execute("CREATE TABLE IF NOT EXISTS _migrations (name text PRIMARY KEY, applied_at text)")
        done = {row[0] for row in cur.execute("SELECT name FROM _migrations")}
        for step in migrations:
            if step.__name__ not in done:
                step(cur)
                cur.execute("INSERT INTO _migrations VALUES (%s, %s)", (step.__name__, utc_now()))


def redact(url: str) -> str:
    """The URL with its password masked, for error messages."""
    url = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


class PostgresEventStore:
    """Event store in one PostgreSQL database. Thread-safe: each call borrows an
    idle connection (or opens one) and gives it back."""

    def __init__(self, url: str):
        self.url = url
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        with self._connection() as conn:
            migrate(conn, MIGRATIONS)

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"cannot connect to PostgreSQL store {redact(self.url)}: {reason}") from None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        if self._closed:
            raise StoreError(f"store {redact(self.url)} is closed")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        conn = conn if conn is not None and not conn.closed else self._connect()
        try:
            yield conn
        finally:
            reusable = not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE
            with self._lock:
                if reusable and not self._closed:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            return cur.execute(sql, params).fetchall()

    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int = ANY
    ) -> AppendResult:
        return self.append_many([(stream, events, expected_version)])[0]

    def append_many(
        self,
        batches: Sequence[tuple[str, Sequence[NewEvent], int]],
        stream_metadata: dict[str, dict[str, Any]] | None = None,
    ) -> list[AppendResult]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
            # A new statement, so a new snapshot: it sees the previous writer's commit.
            head = cur.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
            results = []
            for stream, events, expected in batches:
                results.append(_append_locked(cur, stream, events, expected, head))
                head = results[-1].position
            for stream, metadata in (stream_metadata or {}).items():
                _set_metadata(cur, stream, metadata)
            return results

    def read_stream(
        self,
        stream: str,
        from_version: int = 0,
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        clauses, params = ["stream = %s"], [stream]
        if not backwards or from_version >= 0:
            clauses.append("version <= %s" if backwards else "version >= %s")
            params.append(from_version)
        order = "DESC" if backwards else "ASC"
        sql = f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(clauses)} ORDER BY version {order} LIMIT %s"
        return [_recorded(row) for row in self._query(sql, (*params, limit))]

    def read_all(self, after: int = 0, *, limit: int | None = None) -> list[RecordedEvent]:
        sql = f"SELECT {_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"
        return [_recorded(row) for row in self._query(sql, (after, limit))]

    def head_position(self) -> int:
        return self._query("SELECT coalesce(max(position), 0) FROM events")[0][0]

    def stream_version(self, stream: str) -> int:
        rows = self._query("SELECT version FROM streams WHERE stream = %s", (stream,))
        return rows[0][0] if rows else NO_STREAM

    def get_stream_metadata(self, stream: str) -> dict[str, Any]:
        rows = self._query("SELECT metadata FROM streams WHERE stream = %s", (stream,))
        return codec.loads(rows[0][0]) if rows and rows[0][0] is not None else {}

    def set_stream_metadata(self, stream: str, metadata: dict[str, Any]) -> None:
        with self._connection() as conn, conn.cursor() as cur:
            _set_metadata(cur, stream, metadata)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _append_locked(
    cur: psycopg.Cursor, stream: str, events: Sequence[NewEvent], expected: int, head: int
) -> AppendResult:
    """One stream's part of an append, inside the transaction holding the append lock."""
    row = cur.execute("SELECT version FROM streams WHERE stream = %s", (stream,)).fetchone()
    current = row[0] if row else NO_STREAM
    fresh = _unseen(cur, stream, events)
    if not fresh:
        return AppendResult(0, len(events), current, head)
    check_expected_version(stream, expected, current)
    now = utc_now()
    columns = "position, id, stream, version, type, data, metadata, recorded_at"
    with cur.copy(f"COPY events ({columns}) FROM STDIN") as copy:
        for i, e in enumerate(fresh, 1):
            data, metadata = codec.dumps(e.data), codec.dumps(e.metadata)
            copy.write_row((head + i, e.id, stream, current + i, e.type, data, metadata, now))
    version = current + len(fresh)
    cur.execute(
        "INSERT INTO streams (stream, version) VALUES (%s, %s)"
        " ON CONFLICT (stream) DO UPDATE SET version = excluded.version",
        (stream, version),
    )
    return AppendResult(len(fresh), len(events) - len(fresh), version, head + len(fresh))


def _unseen(cur: psycopg.Cursor, stream: str, events: Sequence[NewEvent]) -> list[NewEvent]:
    """The events not stored yet, each id once. An id stored in another stream is
    a conflict, never a silent skip."""
    ids = list(dict.fromkeys(e.id for e in events))
    stored = dict(cur.execute("SELECT id, stream FROM events WHERE id = ANY(%s)", (ids,)).fetchall())
    clash = next((i for i, s in stored.items() if s != stream), None)
    if clash is not None:
        raise EventIdConflict(f"event id {clash} is already stored in {stored[clash]!r}")
    fresh, seen = [], set(stored)
    for e in events:
        if e.id not in seen:
            seen.add(e.id)
            fresh.append(e)
    return fresh


def _set_metadata(cur: psycopg.Cursor, stream: str, metadata: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO streams (stream, metadata) VALUES (%s, %s)"
        " ON CONFLICT (stream) DO UPDATE SET metadata = excluded.metadata",
        (stream, codec.dumps(metadata)),
    )


_COLUMNS = "id, stream, type, version, position, data, metadata, recorded_at"


def _recorded(row: tuple[Any, ...]) -> RecordedEvent:
    id_, stream, type_, version, position, data, metadata, recorded_at = row
    return RecordedEvent(
        id=id_,
        stream=stream,
        type=type_,
        version=version,
        position=position,
        data=codec.loads(data),
        metadata=codec.loads(metadata),
        recorded_at=recorded_at,
    )
