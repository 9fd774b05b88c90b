"""Read model ``repositories``: sessions grouped by where they ran.

A session belongs to its GitHub repository (``owner/repo``, from the cwd's git
remote) when it has one, else to its working directory, so sessions in a
directory without a GitHub remote still group together. Each group has its
session count, tokens (input, output, cache read and cache write summed), files
changed, tool calls and last activity.

It reads the ``sessions`` read model for the sessions a batch touched, so it runs
after it (``catalog`` lists it later; the runner hands every projection the same
batch in order). Each session's share is kept in ``repository_sessions`` and
the touched groups are summed afresh from it: a session moving to another group
(its SessionStarted came late) leaves the old one.

``repository_sessions`` is also the timeline's table: beside each session's
group and share it keeps what the list shows of it (``list_row``) and the
columns the list filters and sorts on (``started``, ``user``, ``title``,
``duration_seconds``, ``cost_usd``, the share's counts and ``eval_score``, the
latest eval's overall score), small rows with their own indexes, so paging and
filtering 10,000s of sessions never reads the ``sessions`` rows with their whole
fold state. Each sort key, both ways, has an index in exactly its ``ORDER BY``
(``sort_terms``: no value last, then newest first), so a page of 100,000 sorted
sessions is read from an index, never sorted. The eval score is read from the
``evals`` read model, which runs before this one (``catalog``). Its ``FIGURES`` columns
are what the overview and the list's totals sum (``server/totals.py``), and
``session_models`` holds each session's tokens, requests and cost per model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kapacitor.events import RecordedEvent
from kapacitor.projections import evals, sessions
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_keys import TOKEN_KINDS, group_of, total_tokens
from kapacitor.store.readdb import ReadDb

_SHARE = ("tokens", "tool_calls", "files_changed")
FIGURES = (*TOKEN_KINDS, "cost_usd", "active_seconds", "tool_errors")
"""Columns of ``repository_sessions`` (besides ``_SHARE``) that totals sum; the list row has them too."""
_LISTED = ("session_id", "key", *_SHARE, "last_activity", "started", "user", "title", "list_row", *FIGURES, "duration_seconds",
           "eval_score")
_MODEL_COLUMNS = ("session_id", "model", *TOKEN_KINDS, "requests", "cost_usd")
SORTS = {
    "started": "started", "title": "lower(title)", "repo": "key", "user": '"user"',
    "duration": "duration_seconds", "tokens": "tokens", "cost": "cost_usd",
    "files": "files_changed", "tools": "tool_calls", "eval": "eval_score",
}  # fmt: skip
"""The timeline's sort keys and their SQL over ``repository_sessions``."""
_TEXT_SORTS = ("title", "repo", "user")
NULLABLE_SORTS = ("duration", "cost", "eval")  # no eval, no price, no end


def sort_columns(key: str, descending: bool, binary: str = "") -> list[tuple[str, bool]]:
    """(SQL expression, descending) of each column sorting by ``key`` (a key of
    ``SORTS``) orders by: the key, then ``started`` newest first, then the id, so
    every session has one place (``started`` ascending: oldest first, ties by id
    last first, the default order read backwards). For a key in
    ``NULLABLE_SORTS`` the ``ORDER BY`` puts ``(key IS NULL)`` before these
    (``sort_terms``). ``binary``: the read-model database's ``binary`` (text
    compared by its bytes on both backends). The keyset pager
    (``server/paging.py``) seeks on exactly these columns."""
    if key == "started":
        return [(f"started{binary}", descending), (f"session_id{binary}", not descending)]
    column = SORTS[key] + (binary if key in _TEXT_SORTS else "")
    return [(column, descending), (f"started{binary}", True), (f"session_id{binary}", False)]


def sort_terms(key: str, descending: bool, binary: str = "") -> list[str]:
    """The ``ORDER BY`` terms of sorting by ``key`` (a key of ``SORTS``): sessions
    without a value last either way, then ``sort_columns``, so every session has
    one place and pages neither repeat nor skip one. Each (key, direction) has an
    index on exactly these terms (``setup``); sorting by ``started`` ascending
    reads the default order's index backwards."""
    columns = sort_columns(key, descending, binary)
    nulls = [f"({columns[0][0]} IS NULL)"] if key in NULLABLE_SORTS else []
    explicit = key != "started"  # the key's own term says its direction; the others only DESC (the text the indexes were made with)
    return [*nulls, *(f"{expr} {'DESC' if desc else 'ASC'}" if explicit and n == 0 else f"{expr}{' DESC' if desc else ''}"
                      for n, (expr, desc) in enumerate(columns))]


_FILTERED = ("key", '"user"')
"""Columns each sort index carries after its terms: a page filtered by repository
or user is read from the index alone (its rows' ids), never from the table."""


def sort_index(key: str, descending: bool) -> str:
    """The name of the index that reads sessions in ``sort_terms(key, descending)``
    order (``started`` ascending: the default order's, read backwards)."""
    if key == "started":
        return "repository_sessions_newest"
    return f"repository_sessions_by_{key}_{'desc' if descending else 'asc'}"


def _sort_indexes(binary: str) -> dict[str, list[str]]:
    """Index name -> its columns: one per sort key and direction (``started``: one)."""
    return {sort_index(key, descending): [*sort_terms(key, descending, binary), *_FILTERED]
            for key in SORTS for descending in (True, False) if key != "started" or descending}


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE repository_sessions (session_id TEXT PRIMARY KEY, key TEXT NOT NULL,"
        " tokens BIGINT NOT NULL, tool_calls INTEGER NOT NULL, files_changed INTEGER NOT NULL,"
        ' last_activity TEXT NOT NULL, started TEXT NOT NULL, "user" TEXT NOT NULL,'
        " title TEXT NOT NULL, list_row TEXT NOT NULL,"
        + "".join(f" {name} BIGINT NOT NULL," for name in TOKEN_KINDS)
        + " cost_usd DOUBLE PRECISION, active_seconds DOUBLE PRECISION NOT NULL, tool_errors INTEGER NOT NULL,"
        " duration_seconds DOUBLE PRECISION, eval_score DOUBLE PRECISION)"
    )
    conn.execute(
        "CREATE TABLE session_models (session_id TEXT NOT NULL, model TEXT NOT NULL,"
        + "".join(f" {name} BIGINT NOT NULL," for name in TOKEN_KINDS)
        + " requests INTEGER NOT NULL, cost_usd DOUBLE PRECISION, PRIMARY KEY (session_id, model))"
    )
    conn.execute("CREATE INDEX repository_sessions_key ON repository_sessions (key, started)")
    conn.execute("CREATE INDEX repository_sessions_started ON repository_sessions (started)")
    conn.execute('CREATE INDEX repository_sessions_user ON repository_sessions ("user", started)')
    for name, terms in _sort_indexes(conn.binary).items():
        conn.execute(f"CREATE INDEX {name} ON repository_sessions ({', '.join(terms)})")
    conn.execute(
        "CREATE TABLE repositories (key TEXT PRIMARY KEY, kind TEXT NOT NULL, remote_url TEXT,"
        " sessions INTEGER NOT NULL, tokens BIGINT NOT NULL, tool_calls INTEGER NOT NULL,"
        " files_changed INTEGER NOT NULL, last_activity TEXT NOT NULL)"
    )


def list_row(row: dict[str, Any]) -> dict[str, Any]:
    """A timeline row: what the session list shows of a ``sessions`` row."""
    key, kind = group_of(row)
    return {
        "session_id": row["session_id"],
        "title": row["title"],
        "repo": key,
        "repo_kind": kind,
        "branch": row["branch"],
        "user": row["user"],
        "started": row["started"],
        "duration_seconds": row["duration_seconds"],
        "tokens": total_tokens(row["tokens"]),
        "cost_usd": row["cost_usd"],
        "files_changed": len(row["files_changed"]),
        "tool_calls": row["tool_calls"],
        "tool_errors": row["tool_errors"],
        "active_seconds": row["active_seconds"],
        **{name: sum(t.get(name, 0) for t in row["tokens"].values()) for name in TOKEN_KINDS},
    }


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    touched_sessions = sessions.touched_by(events, sessions.batch_owners(conn, events))
    evaluated = {e.stream.removeprefix(evals.PREFIX) for e in events if e.stream.startswith(evals.PREFIX)}
    touched_sessions |= evaluated
    scores = evals.latest_scores(conn, sorted(touched_sessions)) if conn.has_table("evals") else {}
    touched = set()
    for sid in touched_sessions:
        found = conn.execute("SELECT row FROM sessions WHERE session_id = ?", (sid,)).fetchone()
        if not found:
            continue
        row = json.loads(found[0])
        key, kind = group_of(row)
        old = conn.execute("SELECT key FROM repository_sessions WHERE session_id = ?", (sid,)).fetchone()
        if old:
            touched.add(old[0])
        touched.add(key)
        listed = list_row(row)
        conn.execute(
            conn.upsert("repository_sessions", _LISTED, ("session_id",)),
            (sid, key, listed["tokens"], listed["tool_calls"], listed["files_changed"], row["ended"] or row["started"],
             row["started"], row["user"], row["title"], json.dumps(listed), *(listed[name] for name in FIGURES),
             listed["duration_seconds"], scores.get(sid)),
        )
        conn.execute("DELETE FROM session_models WHERE session_id = ?", (sid,))
        conn.executemany(
            f"INSERT INTO session_models ({', '.join(_MODEL_COLUMNS)}) VALUES ({', '.join('?' * len(_MODEL_COLUMNS))})",
            [(sid, model, *(t.get(name, 0) for name in TOKEN_KINDS), t.get("requests", 0), row["cost_per_model"].get(model))
             for model, t in row["tokens"].items()],
        )
        conn.execute(
            "INSERT INTO repositories VALUES (?, ?, ?, 0, 0, 0, 0, '') ON CONFLICT (key) DO UPDATE"
            " SET remote_url = coalesce(excluded.remote_url, repositories.remote_url)",
            (key, kind, row.get("remote_url")),
        )
    sums = ", ".join(f"sum({name})" for name in _SHARE)
    for key in touched:
        count, tokens, calls, files, last = conn.execute(
            f"SELECT count(*), {sums}, max(last_activity) FROM repository_sessions WHERE key = ?", (key,)
        ).fetchone()
        if count:
            conn.execute(
                "UPDATE repositories SET sessions = ?, tokens = ?, tool_calls = ?, files_changed = ?,"
                " last_activity = ? WHERE key = ?",
                (count, tokens, calls, files, last, key),
            )
        else:
            conn.execute("DELETE FROM repositories WHERE key = ?", (key,))


PROJECTION = Projection("repositories", 7, ("repository_sessions", "repositories", "session_models"), setup, apply)
