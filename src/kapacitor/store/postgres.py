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
because it leaves no hot row to vacuum. Appends are short (a fixed handful of round trips
however many streams a batch touches, rows sent with binary COPY), so one writer
at a time is not the bottleneck for a team's hooks and importers.

Data and metadata are stored as ``bytea`` holding ``codec.dumps`` JSON, not as
``jsonb``: ``jsonb`` rejects NUL characters and lone surrogates, which real
transcripts contain. Schema changes are an ordered list of named migrations
recorded in ``_migrations``, applied at open under another advisory lock so two
processes opening a fresh database at once do not race. Connections are kept in
a small pool of idle ones, so any number of threads share a few connections, and
one the server dropped (a restart, an idle timeout) is replaced on the spot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.types.numeric import NumericLoader

from kapacitor.events import NewEvent, RecordedEvent
from kapacitor.store import blobs, codec
from kapacitor.store.base import (
    ANY,
    EVENT_COLUMNS,
    NO_STREAM,
    AppendResult,
    Rewrite,
    StoreClosed,
    StoreError,
    check_expected_version,
    count_dense,
    display_url,
    recorded_events,
    unseen_events,
    utc_now,
)

T = TypeVar("T")

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


def _m002_blobs(cur: psycopg.Cursor) -> None:
    cur.execute("CREATE TABLE blobs (hash text PRIMARY KEY, body bytea NOT NULL)")


def _m003_checkpoints(cur: psycopg.Cursor) -> None:
    """Readers' checkpoints in their own table (they were ``$import-`` streams' metadata)."""
    cur.execute("CREATE TABLE checkpoints (name text PRIMARY KEY, value bytea NOT NULL)")
    cur.execute(
        "INSERT INTO checkpoints SELECT substr(stream, 2), metadata FROM streams"
        " WHERE stream LIKE '$import-%' AND metadata IS NOT NULL"
    )
    cur.execute("DELETE FROM streams WHERE stream LIKE '$import-%' AND version = -1")


MIGRATIONS: list[Callable[[psycopg.Cursor], None]] = [_m001_events, _m002_blobs, _m003_checkpoints]
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


NOTIFY_CHANNEL = "kapacitor_events"
"""Every append NOTIFYs this channel (on commit) with the new head position: followers
(the projection runner) LISTEN and wake at once instead of waiting for their next poll."""


class _WholeNumeric(NumericLoader):
    """``numeric`` as ``int`` when it is whole (``sum`` of ``bigint`` is numeric)."""

    def load(self, data: Any) -> Any:
        value = super().load(data)
        return int(value) if isinstance(value, Decimal) and value == value.to_integral_value() else value


def register_integers(conn: psycopg.Connection) -> None:
    conn.adapters.register_loader("numeric", _WholeNumeric)


def _reason(exc: psycopg.Error) -> str:
    """The first line of a driver error (libpq's messages span several)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PostgresEventStore:
    """Event store in one PostgreSQL database. Thread-safe: each call borrows an
    idle connection (or opens one) and gives it back. Once ``close()``d, every
    call raises ``StoreClosed`` and no connection is opened again."""

    def __init__(self, url: str):
        self.url = url
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._run(lambda conn: migrate(conn, MIGRATIONS))

    def _connect(self) -> psycopg.Connection:
        if self._closed:
            raise StoreClosed(f"store {display_url(self.url)}")
        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL store {display_url(self.url)}: {_reason(exc)}") from None
        if self._closed:  # closed while it was being opened
            conn.close()
            raise StoreClosed(f"store {display_url(self.url)}")
        return conn

    def _run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work`` on a borrowed connection. A pooled connection that the server
        dropped meanwhile (restart, idle timeout) is replaced and ``work`` runs once
        more: it is one read or one atomic, idempotent append. Other driver errors
        become a one-line StoreError."""
        with self._lock:
            if self._closed:
                raise StoreClosed(f"store {display_url(self.url)}")
            conn = self._idle.pop() if self._idle else None
        pooled = conn is not None
        if conn is None:
            conn = self._connect()
        try:
            try:
                return work(conn)
            except psycopg.OperationalError:
                if not (pooled and conn.closed):
                    raise
                conn = self._connect()
                return work(conn)
        except psycopg.Error as exc:
            if self._closed:  # closed while it ran
                raise StoreClosed(f"store {display_url(self.url)}") from exc
            raise StoreError(f"PostgreSQL store {display_url(self.url)}: {_reason(exc)}") from exc
        finally:
            self._give_back(conn)

    def _give_back(self, conn: psycopg.Connection) -> None:
        reusable = not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE
        with self._lock:
            if reusable and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def query(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
            with conn.cursor(binary=True) as cur:
                return cur.execute(sql, params).fetchall()

        return self._run(query)

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
        def append(conn: psycopg.Connection) -> list[AppendResult]:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))
                # A new statement, so a new snapshot: it sees the previous writer's commit.
                head = cur.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
                results = _append_locked(cur, batches, head)
                _set_metadata(cur, stream_metadata or {})
                if checkpoints:
                    cur.execute(
                        "INSERT INTO checkpoints SELECT * FROM unnest(%s::text[], %s::bytea[])"
                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                        (list(checkpoints), [codec.dumps(v) for v in checkpoints.values()]),
                    )
                if results and results[-1].position > head:
                    cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(results[-1].position)))
                return results

        return self._run(append)

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
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE {' AND '.join(clauses)} ORDER BY version {order} LIMIT %s"
        return recorded_events(self._query(sql, (*params, limit)), self._chunks)

    def read_all(self, after: int = 0, *, limit: int | None = None) -> list[RecordedEvent]:
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE position > %s ORDER BY position LIMIT %s"
        return recorded_events(self._query(sql, (after, limit)), self._chunks)

    def _chunks(self, names: Iterable[str]) -> blobs.Chunks:
        return {name: bytes(body) for name, body in self._query("SELECT hash, body FROM blobs WHERE hash = ANY(%s)", (list(names),))}

    def storage(self) -> dict[str, int]:
        [(events, event_bytes)] = self._query("SELECT count(*), coalesce(sum(length(data) + length(metadata)), 0) FROM events")
        [(chunks, chunk_bytes)] = self._query("SELECT count(*), coalesce(sum(length(body)), 0) FROM blobs")
        return {"events": events, "event_bytes": int(event_bytes), "chunks": chunks, "chunk_bytes": int(chunk_bytes)}

    def head_position(self) -> int:
        return self._query("SELECT coalesce(max(position), 0) FROM events")[0][0]

    def count_after(self, after: int = 0) -> int:
        return count_dense(self.head_position(), after)

    def get_checkpoint(self, name: str) -> dict[str, Any]:
        rows = self._query("SELECT value FROM checkpoints WHERE name = %s", (name,))
        return codec.loads(rows[0][0]) if rows else {}

    def stream_version(self, stream: str) -> int:
        rows = self._query("SELECT version FROM streams WHERE stream = %s", (stream,))
        return rows[0][0] if rows else NO_STREAM

    def get_stream_metadata(self, stream: str) -> dict[str, Any]:
        rows = self._query("SELECT metadata FROM streams WHERE stream = %s", (stream,))
        return codec.loads(rows[0][0]) if rows and rows[0][0] is not None else {}

    def set_stream_metadata(self, stream: str, metadata: dict[str, Any]) -> None:
        def write(conn: psycopg.Connection) -> None:
            with conn.cursor() as cur:
                _set_metadata(cur, {stream: metadata})

        self._run(write)

    def rewrite(self, changes: Sequence[Rewrite]) -> int:
        def write(conn: psycopg.Connection) -> int:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_APPEND_LOCK,))  # no append adds chunks meanwhile
                changed, chunks = 0, {}
                for change in changes:
                    data, metadata = blobs.encode(change.data, chunks), blobs.encode(change.metadata, chunks)
                    cur.execute("UPDATE events SET data = %s, metadata = %s WHERE id = %s", (data, metadata, change.id))
                    changed += cur.rowcount
                if chunks:
                    known = [row[0] for row in cur.execute("SELECT hash FROM blobs WHERE hash = ANY(%s)", (list(chunks),))]
                    new = blobs.new_rows(chunks, known)
                    if new:
                        cur.executemany("INSERT INTO blobs (hash, body) VALUES (%s, %s) ON CONFLICT DO NOTHING", new)
                referred = cur.execute("SELECT data, metadata FROM events WHERE position(%s in data) > 0 OR position(%s in metadata) > 0",
                                       (blobs.MARKER_BYTES, blobs.MARKER_BYTES)).fetchall()
                orphans = blobs.orphans([row[0] for row in cur.execute("SELECT hash FROM blobs")], referred)
                if orphans:
                    cur.execute("DELETE FROM blobs WHERE hash = ANY(%s)", (orphans,))
                return changed

        return self._run(write)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


# Binary COPY: about twice as fast as text COPY or INSERTs for a batch of rows.
_COPY = (
    "COPY events (position, id, stream, version, type, data, metadata, recorded_at)"
    " FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["int8", "text", "text", "int8", "text", "bytea", "bytea", "text"]


def _append_locked(
    cur: psycopg.Cursor, batches: Sequence[tuple[str, Sequence[NewEvent], int]], head: int
) -> list[AppendResult]:
    """The appends of one transaction holding the append lock, in a fixed number of
    round trips however many streams: fetch the streams' versions and the ids
    already stored, decide in order (a stream or an id may recur), then send every
    new row with one COPY and every new version with one statement."""
    names = list(dict.fromkeys(stream for stream, _, _ in batches))
    ids = list(dict.fromkeys(e.id for _, events, _ in batches for e in events))
    versions = dict(cur.execute("SELECT stream, version FROM streams WHERE stream = ANY(%s)", (names,)))
    stored = dict(cur.execute("SELECT id, stream FROM events WHERE id = ANY(%s)", (ids,)))
    now, rows, results, chunks = utc_now(), [], [], {}
    for stream, events, expected in batches:
        current = versions.get(stream, NO_STREAM)
        fresh = unseen_events(stream, events, {e.id: stored[e.id] for e in events if e.id in stored})
        if fresh:
            check_expected_version(stream, expected, current)
        for i, e in enumerate(fresh, 1):
            rows.append((head + i, e.id, stream, current + i, e.type, e, now))
            stored[e.id] = stream
        head += len(fresh)
        versions[stream] = current + len(fresh)
        results.append(AppendResult(len(fresh), len(events) - len(fresh), versions[stream], head))
    if rows:
        with cur.copy(_COPY) as copy:
            copy.set_types(_COPY_TYPES)
            for *columns, e, at in rows:  # encoded one at a time: orjson's bytes take ~4 KiB each however short
                copy.write_row((*columns, blobs.encode(e.data, chunks), blobs.encode(e.metadata, chunks), at))
        if chunks:  # the chunks those rows refer to, in the same transaction
            known = [row[0] for row in cur.execute("SELECT hash FROM blobs WHERE hash = ANY(%s)", (list(chunks),))]
            new = blobs.new_rows(chunks, known)
            cur.execute(
                "INSERT INTO blobs (hash, body) SELECT * FROM unnest(%s::text[], %s::bytea[]) ON CONFLICT DO NOTHING",
                ([name for name, _ in new], [body for _, body in new]),
            )
        changed = {row[2]: versions[row[2]] for row in rows}
        cur.execute(
            "INSERT INTO streams (stream, version) SELECT * FROM unnest(%s::text[], %s::bigint[])"
            " ON CONFLICT (stream) DO UPDATE SET version = excluded.version",
            (list(changed), list(changed.values())),
        )
    return results


def _set_metadata(cur: psycopg.Cursor, metadata: dict[str, dict[str, Any]]) -> None:
    if metadata:
        cur.execute(
            "INSERT INTO streams (stream, metadata) SELECT * FROM unnest(%s::text[], %s::bytea[])"
            " ON CONFLICT (stream) DO UPDATE SET metadata = excluded.metadata",
            (list(metadata), [codec.dumps(m) for m in metadata.values()]),
        )
