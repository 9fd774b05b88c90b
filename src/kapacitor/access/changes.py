"""The access-change log: which sessions' visibility changed, and who could see
them before, and whose rights changed, so every server's live hub can tell its
open pages.

Who may see a session is access control, not an event in the log, and it
changes from anywhere: a server's ``PUT /api/sessions/{id}/visibility`` or
ingest (a user's token makes them a new session's owner), the CLI's
``kapacitor users set`` / ``repos set`` / ``tokens revoke`` / ``store copy``
(no server at all), another server on the same database. So each change is
recorded where the access tables live, in the same transaction (``changing``,
the one path every write to the access tables takes: ``accounts``): one ``seq``
per change, one row per session whose visibility may follow from it, with that
session's owner and effective visibility *before* it (``access_changes``), and
one row per user whose own rights changed (``access_user_changes``: made or
unmade an admin, a token revoked), since that changes everything they may see.
A hub reads the rows after the last ``seq`` it saw and tells each open stream
about the sessions its viewer may see now or could see before (its timeline
gains or drops them); nobody else hears of them. The streams of a user whose
rights changed are signed in again (as an admin, as a user, as nobody when
their token was revoked) and told to re-read everything.

Hubs look at the log at each of their polls (every 0.5 s: several processes on
one SQLite file); on PostgreSQL a change also NOTIFYs ``CHANNEL`` with its
``seq``, which wakes every server's hub at once (the projection runner LISTENs).
Changes are serialized (SQLite's write lock; an advisory lock on PostgreSQL),
so ``seq`` grows in commit order and no reader steps over a change committed
late. Rows older than ``KEEP`` are dropped (the last change is always kept, so
``seq`` never goes back).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from kapacitor.access.viewer import Viewer, effective_visibility_sql, may_see, visible_clause
from kapacitor.store.readdb import ReadDb

CHANNEL = "kapacitor_access"
"""PostgreSQL channel a visibility change NOTIFYs (payload: its ``seq``) on commit."""
KEEP = timedelta(days=1)
"""How long a change stays in the log: far longer than any hub's poll."""
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # the access tables' times (``store.base.utc_now``)
_LOCK = 0x6B61_7063_0004  # pg_advisory_xact_lock key: one access change at a time
_LISTED = 500  # session ids named in one condition (well under SQLite's and psycopg's limits)

Pick = tuple[str, Sequence[Any]]
"""Sessions a change may open or close: an SQL condition over ``repository_sessions
rs`` and its params."""


def _a002_access_changes(db: ReadDb) -> None:
    db.execute(
        "CREATE TABLE access_changes (seq BIGINT NOT NULL, session_id TEXT NOT NULL, owner TEXT NOT NULL,"
        " visibility TEXT NOT NULL, changed_at TEXT NOT NULL, PRIMARY KEY (seq, session_id))"
    )


def _a003_access_user_changes(db: ReadDb) -> None:
    db.execute(
        "CREATE TABLE access_user_changes (seq BIGINT NOT NULL, user_name TEXT NOT NULL, changed_at TEXT NOT NULL,"
        " PRIMARY KEY (seq, user_name))"
    )


@contextmanager
def changing(db: ReadDb, *picks: Pick, users: Iterable[str] = ()) -> Iterator[None]:
    """A transaction in which the caller changes who may see the sessions ``picks``
    select, or the rights of ``users`` (user names); the sessions' state before is
    logged first. A store without read models yet has no session to announce: the
    change is made, only ``users`` logged."""
    with db.transaction():
        if db.dialect == "postgresql":
            db.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK,))
        seq = latest(db) + 1
        now = datetime.now(UTC)
        stamp = now.strftime(STAMP)
        logged = 0
        if db.has_table("repository_sessions"):
            for sessions, params in picks:
                logged += db.execute(
                    "INSERT INTO access_changes (seq, session_id, owner, visibility, changed_at) SELECT ?, rs.session_id,"
                    " coalesce((SELECT sa.owner FROM session_access sa WHERE sa.session_id = rs.session_id), ''),"
                    f" {effective_visibility_sql('rs.session_id', 'rs.key')}, ? FROM repository_sessions rs WHERE {sessions}"
                    " ON CONFLICT DO NOTHING",
                    (seq, stamp, *params),
                ).rowcount
        for user in dict.fromkeys(users):
            logged += db.execute("INSERT INTO access_user_changes VALUES (?, ?, ?)", (seq, user, stamp)).rowcount
        yield
        if logged:
            for table in ("access_changes", "access_user_changes"):
                db.execute(f"DELETE FROM {table} WHERE changed_at < ? AND seq < ?", ((now - KEEP).strftime(STAMP), seq))
            if db.dialect == "postgresql":
                db.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(seq)))


def in_chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """``ids`` (each once) a few hundred at a time: as many as one ``IN (...)`` names."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _LISTED):
        yield unique[start : start + _LISTED]


def listed(session_ids: Iterable[str]) -> list[Pick]:
    """Picks of exactly these sessions."""
    return [(f"rs.session_id IN ({','.join('?' * len(chunk))})", chunk) for chunk in in_chunks(session_ids)]


def latest(db: ReadDb) -> int:
    """The last change's ``seq`` (0: none yet)."""
    return int(db.execute(
        "SELECT max(seq) FROM (SELECT coalesce(max(seq), 0) AS seq FROM access_changes"
        " UNION ALL SELECT coalesce(max(seq), 0) FROM access_user_changes) AS logged").fetchone()[0])


def changed_sessions(db: ReadDb, after: int, upto: int) -> list[str]:
    """The sessions the changes in (``after``, ``upto``] may have opened or closed."""
    rows = db.execute("SELECT DISTINCT session_id FROM access_changes WHERE seq > ? AND seq <= ?", (after, upto))
    return sorted(sid for (sid,) in rows)


def changed_users(db: ReadDb, after: int, upto: int) -> list[str]:
    """The users whose rights the changes in (``after``, ``upto``] changed."""
    rows = db.execute("SELECT DISTINCT user_name FROM access_user_changes WHERE seq > ? AND seq <= ?", (after, upto))
    return sorted(name for (name,) in rows)


def seen_around(db: ReadDb, viewer: Viewer, after: int, upto: int, limit: int | None = None) -> dict[str, str]:
    """The sessions changed in (``after``, ``upto``] that ``viewer`` may see now or
    could see before one of those changes, each with its repository key: the ones
    their open pages should refresh (gain or drop), and no other (at most ``limit``
    of them: one tells whether there is any)."""
    sql = ("SELECT DISTINCT rs.session_id, rs.key FROM access_changes ac"
           " JOIN repository_sessions rs ON rs.session_id = ac.session_id WHERE ac.seq > ? AND ac.seq <= ?")
    now, now_params = visible_clause(viewer, "rs.session_id", "rs.key")
    before, before_params = may_see(viewer, "ac.visibility", "ac.owner")
    if now:
        sql += f" AND ({now} OR {before})"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return dict(db.execute(sql, (after, upto, *now_params, *before_params)))
