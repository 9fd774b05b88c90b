"""The read-model database: one small interface over SQLite and PostgreSQL, so the
projections, the runner, the queries, the live hub and the access tables are
written once and run on either.

Read models live in the store's own database (the SQLite file, or the
PostgreSQL database): ``open_read_db(store)``. SQL is written with ``?``
placeholders; what differs between the two is behind a few helpers:

- ``transaction()``: SQLite's ``BEGIN IMMEDIATE`` (the file's write lock up
  front), PostgreSQL's ``BEGIN``; ``for_update`` locks the rows a transaction
  read (PostgreSQL; SQLite's write lock already covers them);
- ``upsert(table, columns, key)``: ``INSERT ... ON CONFLICT (key) DO UPDATE`` of
  every other column (what SQLite's ``INSERT OR REPLACE`` did);
- ``greatest(a, b)``: the larger of two values (SQLite's two-argument ``max``);
- ``week(expr)``: an ISO time's ``YYYY-Www``;
- ``has_table(name)``: whether a table exists;
- ``like``: case-insensitive ``LIKE`` (SQLite's is, for ASCII; PostgreSQL's ``ILIKE``);
- ``binary``: what makes text sort by its bytes (SQLite's default; PostgreSQL's
  ``COLLATE "C"``, whatever the database's locale), so both sort alike.

Closed is closed: after ``close()`` no thread gets a connection again (each
thread's own was opened lazily, so one that never used it before would quietly
open a new one); every call raises ``StoreClosed``. ``close()`` waits for calls
and fetches in flight on other threads' connections: closing a SQLite
connection under a running statement crashes the interpreter.

Integers: PostgreSQL sums ``bigint`` columns as ``numeric``; whole numbers come
back as ``int`` here, as SQLite gives them.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kapacitor.store.base import EventStore, StoreClosed, StoreError, display_url, utc_now

Migration = Callable[["ReadDb"], None]


class ReadDb:
    """A connection-like handle, one real connection per thread (opened on the
    thread's first call), until ``close()``: then ``StoreClosed`` for every call."""

    dialect = ""
    for_update = ""
    like = "LIKE"
    binary = ""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[tuple[Any, threading.RLock]] = []
        self._lock = threading.Lock()
        self._closed = False

    # what every backend implements
    def _connect(self) -> Any:
        raise NotImplementedError

    def __str__(self) -> str:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def greatest(self, a: str, b: str) -> str:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    # shared
    @property
    def conn(self) -> Any:
        """This thread's connection (opened now if it has none); ``StoreClosed`` once closed."""
        if self._closed:
            raise StoreClosed(str(self))
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn, busy = self.connect(), threading.RLock()
            with self._lock:
                if self._closed:  # closed while it was being opened: close() did not see it
                    conn.close()
                    raise StoreClosed(str(self))
                self._all.append((conn, busy))
            self._local.conn, self._local.busy = conn, busy
        return conn

    @contextmanager
    def _held(self) -> Iterator[Any]:
        """This thread's connection for one call: ``close()`` waits until the call
        is over; the driver's error for a database closed before the call took
        its connection is raised as ``StoreClosed``."""
        conn = self.conn
        try:
            with self._local.busy:
                yield conn
        except Exception as exc:
            self.refuse_if_closed(exc)
            raise

    def refuse_if_closed(self, exc: Exception) -> None:
        """``StoreClosed`` for the driver's error ``exc`` once this database is
        closed (the driver's own words for it vary)."""
        if self._closed:
            raise StoreClosed(str(self)) from exc

    def connect(self) -> Any:
        """A new connection of the caller's own, closed by the caller (a LISTEN, a
        held advisory lock); ``StoreClosed`` once this database is closed, also when
        it was closed while the connection was being opened."""
        if self._closed:
            raise StoreClosed(str(self))
        conn = self._connect()
        if self._closed:
            conn.close()
            raise StoreClosed(str(self))
        return conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the cursor has ``fetchone``, ``fetchall``, ``fetchmany``,
        ``rowcount`` and iterates."""
        conn = self.conn  # (not ``_held``: a generator costs more than the query)
        busy = self._local.busy
        try:
            with busy:
                return Cursor(conn.execute(self._sql(sql), params), self, busy)
        except Exception as exc:
            self.refuse_if_closed(exc)
            raise

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self._held() as conn:
                conn.cursor().executemany(self._sql(sql), rows)

    def week(self, expr: str) -> str:
        """SQL for the ISO 8601 week of the UTC time ``expr`` as ``YYYY-Www`` (weeks
        start on Monday; week 01 holds the year's first Thursday, so ``2026-11-29`` is
        ``2026-W48`` and ``2027-01-01`` is ``2026-W53``); NULL for an empty time."""
        raise NotImplementedError

    def has_table(self, name: str) -> bool:
        """Whether the table ``name`` exists (a read model a runner may leave out)."""
        raise NotImplementedError

    def upsert(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """``INSERT INTO table (columns) VALUES (?, ...)`` replacing the row with the same ``key``."""
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        rest = [c for c in columns if c not in key]
        action = "DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in rest) if rest else "DO NOTHING"
        return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({', '.join(key)}) {action}"

    def close(self) -> None:
        """Close every thread's connection; from now on every call raises ``StoreClosed``."""
        with self._lock:
            self._closed = True
            opened, self._all = self._all, []
        for conn, busy in opened:
            with busy:  # not under a call or fetch in flight on another thread
                conn.close()


class Cursor:
    """A driver's cursor whose fetches, like the call that made it, hold their
    connection (``ReadDb.close()`` waits for them) and raise ``StoreClosed`` once
    the database is closed."""

    def __init__(self, cursor: Any, db: ReadDb, busy: threading.RLock):
        self._cursor, self._db, self._busy = cursor, db, busy

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def _fetch(self, fetch: Callable[..., Any], *args: int) -> Any:
        try:
            with self._busy:
                return fetch(*args)
        except Exception as exc:
            self._db.refuse_if_closed(exc)
            raise

    def fetchone(self) -> Any:
        return self._fetch(self._cursor.fetchone)

    def fetchall(self) -> list[Any]:
        return self._fetch(self._cursor.fetchall)

    def fetchmany(self, size: int) -> list[Any]:
        return self._fetch(self._cursor.fetchmany, size)

    def __iter__(self) -> Iterator[Any]:
        while rows := self.fetchmany(500):
            yield from rows


class SQLiteReadDb(ReadDb):
    dialect = "sqlite"

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        from kapacitor.store.sqlite import connect

        return connect(self.path)

    def __str__(self) -> str:
        return f"database {self.path}"

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._held() as conn:
            conn.executemany(sql, rows)

    def greatest(self, a: str, b: str) -> str:
        return f"max({a}, {b})"

    def week(self, expr: str) -> str:
        # SQLite before 3.46 has no %G/%V: the ISO year and week are those of the
        # week's Thursday (the Sunday on or after the day, less three days).
        thursday = f"date({expr}, 'weekday 0', '-3 days')"
        return f"strftime('%Y', {thursday}) || '-W' || substr('0' || ((strftime('%j', {thursday}) - 1) / 7 + 1), -2)"

    def has_table(self, name: str) -> bool:
        return self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._held() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # also a failed COMMIT (a full disk can refuse it)
                    conn.execute("ROLLBACK")
                raise


_MARK = re.compile(r"%|\?")


class PostgresReadDb(ReadDb):
    dialect = "postgresql"
    for_update = " FOR UPDATE"
    like = "ILIKE"
    binary = ' COLLATE "C"'

    def __init__(self, url: str):
        super().__init__()
        self.url = url

    def _connect(self) -> Any:
        import psycopg

        from kapacitor.store.postgres import register_integers

        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL {display_url(self.url)}: {str(exc).strip().splitlines()[0]}") from None
        register_integers(conn)
        return conn

    def __str__(self) -> str:
        return f"database {display_url(self.url)}"

    def _sql(self, sql: str) -> str:
        return _MARK.sub(lambda m: "%s" if m.group() == "?" else "%%", sql)

    def greatest(self, a: str, b: str) -> str:
        return f"greatest({a}, {b})"

    def week(self, expr: str) -> str:
        t = f"(nullif({expr}, '')::timestamptz AT TIME ZONE 'UTC')"
        return f"to_char({t}, 'IYYY-\"W\"IW')"

    def has_table(self, name: str) -> bool:
        return bool(self.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._held() as conn, conn.transaction():
            yield


def open_read_db(store: EventStore) -> ReadDb:
    """The read-model database of ``store``: its own database."""
    path = getattr(store, "path", None)
    if path is not None:
        return SQLiteReadDb(Path(path))
    url = getattr(store, "url", "")
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresReadDb(url)
    raise StoreError(f"read models cannot live in store {display_url(url) or type(store).__name__}")


def open_read_db_at(target: Path | str | ReadDb) -> ReadDb:
    """A ``ReadDb`` for a SQLite file path, a store URL, or one already open."""
    if isinstance(target, ReadDb):
        return target
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresReadDb(text)
    return SQLiteReadDb(Path(text.removeprefix("sqlite://")))


_MIGRATE_LOCK = 0x6B61_7063_0003


def migrate(db: ReadDb, migrations: Sequence[Migration]) -> None:
    """Apply the named migrations this database has not seen, recorded in
    ``_migrations`` (the store's table: names are unique across the code base)."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    with db.transaction():
        if db.dialect == "postgresql":
            db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))
        done = {name for (name,) in db.execute("SELECT name FROM _migrations")}
        for step in migrations:
            if step.__name__ not in done:
                step(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (step.__name__, utc_now()))
