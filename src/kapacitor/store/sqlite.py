"""The embedded event store: one SQLite file in WAL mode.

Several processes append at once (hooks, the importer, the server): every write
takes SQLite's write lock up front (``BEGIN IMMEDIATE``) and waits up to
``busy_timeout`` for it, so versions and global positions are assigned under one
lock and never interleave.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kapacitor.envelope import NewEvent, RecordedEvent
from kapacitor.store import blobs, codec
from kapacitor.store.base import (
    ANY,
    EVENT_COLUMNS,
    NO_STREAM,
    AppendResult,
    Rewrite,
    StoreClosed,
    StoreDamaged,
    StoreError,
    StoreMissing,
    check_expected_version,
    count_dense,
    recorded_events,
    unseen_events,
    utc_now,
)

_ID_CHUNK = 500  # stays under SQLite's bound-parameter limit


def _m001_events(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE events (
            position INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            stream TEXT NOT NULL,
            version INTEGER NOT NULL,
            type TEXT NOT NULL,
            data BLOB NOT NULL,
            metadata BLOB NOT NULL,
            recorded_at TEXT NOT NULL,
            UNIQUE (stream, version)
        )"""
    )
    conn.execute(
        """
        CREATE TABLE streams (
            stream TEXT PRIMARY KEY,
            version INTEGER NOT NULL DEFAULT -1,
            metadata BLOB
        )"""
    )


def _m002_blobs(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE blobs (hash TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID")


def _m003_checkpoints(conn: sqlite3.Connection) -> None:
    """Readers' checkpoints in their own table (they were ``$import-`` streams' metadata)."""
    conn.execute("CREATE TABLE checkpoints (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
    conn.execute(
        "INSERT INTO checkpoints SELECT substr(stream, 2), metadata FROM streams"
        " WHERE stream LIKE '$import-%' AND metadata IS NOT NULL"
    )
    conn.execute("DELETE FROM streams WHERE stream LIKE '$import-%' AND version = -1")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_events, _m002_blobs, _m003_checkpoints]
"""Schema changes, in order; each runs once and is recorded in ``_migrations``."""


def migrate(conn: sqlite3.Connection, migrations: Sequence[Callable[[sqlite3.Connection], None]]) -> None:
    """Apply the migrations this database has not seen yet, under the write lock."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        for step in migrations:
            if step.__name__ not in done:
                step(conn)
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (step.__name__, utc_now()))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def connect(path: Path) -> sqlite3.Connection:
    """A connection tuned for many processes sharing one file."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA page_size=16384")  # a new file only: a transcript line fits in fewer pages
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=60000")
    conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: random-id index inserts stay in memory
    return conn


def create_private(path: Path) -> None:
    """Create the store file readable by its user only (0600; SQLite gives its -wal
    and -shm files the same mode), and a missing directory for it 0700: transcripts
    hold code, prompts and sometimes secrets. An existing file or directory is left as it is."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def damage_of(exc: BaseException) -> str | None:
    """SQLite's words when ``exc`` says the file is damaged or is not a database."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        message = str(exc)
        if "malformed" in message or "not a database" in message or "corrupt" in message:
            return message
    return None


class SQLiteEventStore:
    """Event store on one SQLite file. One connection per thread, opened on the
    thread's first call, until ``close()``: then every call raises ``StoreClosed``.
    ``close()`` waits for calls in flight on other threads' connections (closing a
    connection under a running statement can crash the interpreter).

    A file that is not a SQLite database, or whose pages turn out damaged, is
    refused (``StoreDamaged``): once a damaged page is met, this store writes
    nothing more (``damaged`` says why); ``kapacitor doctor`` runs the full check."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.damaged = ""
        if not create and not self.path.exists():
            raise StoreMissing(f"no store at {self.path}: nothing was imported there (check --store, or run `kapacitor import`)")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a store file")
        create_private(self.path)
        self._local = threading.local()
        self._connections: list[tuple[sqlite3.Connection, threading.RLock]] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            migrate(self.conn, MIGRATIONS)
        except sqlite3.DatabaseError as exc:
            if damage_of(exc) is None:
                raise
            self.close()
            raise StoreDamaged(self.path, str(exc)) from None

    def _refuse_if_closed_or_damaged(self, exc: BaseException) -> None:
        if self._closed:  # closed under a call in flight (sqlite3: "Cannot operate on a closed database")
            raise StoreClosed(f"store {self.url}") from exc
        message = damage_of(exc)
        if message is not None:
            self.damaged = message
            raise StoreDamaged(self.path, message) from exc

    @contextmanager
    def _guarded(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for one call: ``close()`` waits until the call
        is over, and sqlite3's own error for a store closed before the call took
        its connection (or a damaged page) is raised as ``StoreClosed`` (``StoreDamaged``)."""
        conn = self.conn
        try:
            with self._local.busy:
                yield conn
        except sqlite3.DatabaseError as exc:
            self._refuse_if_closed_or_damaged(exc)
            raise

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row ``sql`` gives (None if none), as ``_guarded`` (not through
        it: a generator costs more than the query)."""
        conn = self.conn
        try:
            with self._local.busy:
                return conn.execute(sql, params).fetchone()
        except sqlite3.DatabaseError as exc:
            self._refuse_if_closed_or_damaged(exc)
            raise

    @property
    def url(self) -> str:
        return f"sqlite://{self.path}"

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened now if it has none); ``StoreClosed`` once closed."""
        if self._closed:
            raise StoreClosed(f"store {self.url}")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn, busy = connect(self.path), threading.RLock()
            with self._lock:
                if self._closed:  # closed while it was being opened: close() did not see it
                    conn.close()
                    raise StoreClosed(f"store {self.url}")
                self._connections.append((conn, busy))
            self._local.conn, self._local.busy = conn, busy
        return conn

    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int = ANY
    ) -> AppendResult:
        return self.append_many([(stream, events, expected_version)])[0]

    def append_many(
        self,
        batches: Sequence[tuple[str, Sequence[NewEvent], int]],
        stream_metadata: dict[str, dict[str, Any]] | None = None,
        checkpoints: dict[str, dict[str, Any]] | None = None,
    ) -> list[AppendResult]:
        if self.damaged:
            raise StoreDamaged(self.path, self.damaged)
        with self._guarded() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = [self._append_locked(conn, s, events, expected) for s, events, expected in batches]
                for stream, metadata in (stream_metadata or {}).items():
                    self._set_metadata(conn, stream, metadata)
                conn.executemany(
                    "INSERT INTO checkpoints VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [(name, codec.dumps(value)) for name, value in (checkpoints or {}).items()],
                )
                conn.execute("COMMIT")
                return results
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _append_locked(
        self, conn: sqlite3.Connection, stream: str, events: Sequence[NewEvent], expected: int
    ) -> AppendResult:
        row = conn.execute("SELECT version FROM streams WHERE stream = ?", (stream,)).fetchone()
        current = row[0] if row else NO_STREAM
        fresh = self._unseen(conn, stream, events)
        if not fresh:
            return AppendResult(0, len(events), current, self.head_position())
        check_expected_version(stream, expected, current)
        now, chunks = utc_now(), {}
        rows = (  # one row alive at a time: orjson's bytes take ~4 KiB each however short
            (e.id, stream, current + 1 + i, e.type, blobs.encode(e.data, chunks), blobs.encode(e.metadata, chunks), now)
            for i, e in enumerate(fresh)
        )
        conn.executemany(
            "INSERT INTO events (id, stream, version, type, data, metadata, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        if chunks:  # the chunks those rows refer to, in the same transaction
            stored = [name for name, in self._chunk_rows(conn, "hash", list(chunks))]
            conn.executemany("INSERT OR IGNORE INTO blobs (hash, body) VALUES (?, ?)", blobs.new_rows(chunks, stored))
        version = current + len(fresh)
        conn.execute(
            "INSERT INTO streams (stream, version) VALUES (?, ?)"
            " ON CONFLICT (stream) DO UPDATE SET version = excluded.version",
            (stream, version),
        )
        position = conn.execute("SELECT max(position) FROM events").fetchone()[0]
        return AppendResult(len(fresh), len(events) - len(fresh), version, position)

    @staticmethod
    def _unseen(
        conn: sqlite3.Connection, stream: str, events: Sequence[NewEvent]
    ) -> list[NewEvent]:
        """The events not stored yet (see ``unseen_events``), looking the ids up in chunks."""
        ids = list(dict.fromkeys(e.id for e in events))
        stored: dict[str, str] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            stored.update(conn.execute(f"SELECT id, stream FROM events WHERE id IN ({marks})", chunk))
        return unseen_events(stream, events, stored)

    def read_stream(
        self,
        stream: str,
        from_version: int = 0,
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        if backwards and from_version < 0:
            from_version = self.stream_version(stream)
        where, order = ("version <= ?", "DESC") if backwards else ("version >= ?", "ASC")
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE stream = ? AND {where} ORDER BY version {order}"
        params: list[Any] = [stream, from_version]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._guarded() as conn:
            return recorded_events(conn.execute(sql, params).fetchall(), self._chunks)

    def read_all(self, after: int = 0, *, limit: int | None = None) -> list[RecordedEvent]:
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position"
        params: list[Any] = [after]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._guarded() as conn:
            return recorded_events(conn.execute(sql, params).fetchall(), self._chunks)

    def _chunks(self, names: Iterable[str]) -> blobs.Chunks:
        return dict(self._chunk_rows(self.conn, "hash, body", list(names)))

    @staticmethod
    def _chunk_rows(conn: sqlite3.Connection, columns: str, names: list[str]) -> list[Any]:
        """``columns`` of the stored chunks among ``names`` (looked up in chunks of ids)."""
        rows: list[Any] = []
        for start in range(0, len(names), _ID_CHUNK):
            part = names[start : start + _ID_CHUNK]
            rows += conn.execute(f"SELECT {columns} FROM blobs WHERE hash IN ({','.join('?' * len(part))})", part).fetchall()
        return rows

    def storage(self) -> dict[str, int]:
        events, event_bytes = self._one("SELECT count(*), coalesce(sum(length(data) + length(metadata)), 0) FROM events")
        chunks, chunk_bytes = self._one("SELECT count(*), coalesce(sum(length(body)), 0) FROM blobs")
        return {"events": events, "event_bytes": event_bytes, "chunks": chunks, "chunk_bytes": chunk_bytes}

    def head_position(self) -> int:
        return self._one("SELECT coalesce(max(position), 0) FROM events")[0]

    def count_after(self, after: int = 0) -> int:
        return count_dense(self.head_position(), after)

    def get_checkpoint(self, name: str) -> dict[str, Any]:
        row = self._one("SELECT value FROM checkpoints WHERE name = ?", (name,))
        return codec.loads(row[0]) if row else {}

    def stream_version(self, stream: str) -> int:
        row = self._one("SELECT version FROM streams WHERE stream = ?", (stream,))
        return row[0] if row else NO_STREAM

    def get_stream_metadata(self, stream: str) -> dict[str, Any]:
        row = self._one("SELECT metadata FROM streams WHERE stream = ?", (stream,))
        return codec.loads(row[0]) if row and row[0] is not None else {}

    def set_stream_metadata(self, stream: str, metadata: dict[str, Any]) -> None:
        with self._guarded() as conn:
            self._set_metadata(conn, stream, metadata)

    @staticmethod
    def _set_metadata(conn: sqlite3.Connection, stream: str, metadata: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO streams (stream, metadata) VALUES (?, ?)"
            " ON CONFLICT (stream) DO UPDATE SET metadata = excluded.metadata",
            (stream, codec.dumps(metadata)),
        )

    def rewrite(self, changes: Sequence[Rewrite]) -> int:
        """(The old values are overwritten with zeros, not left in free pages, and
        the WAL is checkpointed, so the file no longer holds them.)"""
        with self._guarded() as conn:
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed, chunks = 0, {}
                for change in changes:
                    data, metadata = blobs.encode(change.data, chunks), blobs.encode(change.metadata, chunks)
                    changed += conn.execute("UPDATE events SET data = ?, metadata = ? WHERE id = ?", (data, metadata, change.id)).rowcount
                if chunks:
                    stored = [name for name, in self._chunk_rows(conn, "hash", list(chunks))]
                    conn.executemany("INSERT OR IGNORE INTO blobs (hash, body) VALUES (?, ?)", blobs.new_rows(chunks, stored))
                referred = conn.execute("SELECT data, metadata FROM events WHERE instr(data, ?) OR instr(metadata, ?)",
                                        (blobs.MARKER_BYTES, blobs.MARKER_BYTES)).fetchall()
                orphans = blobs.orphans([name for name, in conn.execute("SELECT hash FROM blobs")], referred)
                for start in range(0, len(orphans), _ID_CHUNK):
                    part = orphans[start : start + _ID_CHUNK]
                    conn.execute(f"DELETE FROM blobs WHERE hash IN ({','.join('?' * len(part))})", part)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return changed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            opened, self._connections = self._connections, []
        for conn, busy in opened:
            with busy:  # not under a call in flight on another thread
                conn.close()
