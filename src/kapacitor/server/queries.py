"""What the pages ask of the read models: the session list with its filters, the
repositories, and one session's stats. Plain SQL over the projection tables;
the pages and their JSON twins both call these, so they always agree."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, tzinfo
from typing import Any

from kapacitor import times
from kapacitor.pricing import price_source
from kapacitor.projections import evals, live_status
from kapacitor.projections.repositories import group_of
from kapacitor.projections.session_summary import TOKEN_FIELDS, summary_from_state

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    """The timeline's filter state, as it stands in the URL query."""

    repo: str = ""
    user: str = ""
    since: str = ""  # YYYY-MM-DD, inclusive, in the viewer's zone
    until: str = ""  # YYYY-MM-DD, inclusive, in the viewer's zone
    q: str = ""
    page: int = 1
    sort: str = ""  # "": newest first; "eval": lowest latest eval score first; "-eval": highest first

    def where(self, tz: tzinfo = UTC) -> tuple[str, list[Any]]:
        """SQL over ``repository_sessions`` (the timeline's table, see ``repositories``);
        a day is a day in ``tz``."""
        clauses, params = [], []
        if self.repo:
            clauses.append("key = ?")
            params.append(self.repo)
        if self.user:
            clauses.append('"user" = ?')
            params.append(self.user)
        if self.since:
            clauses.append("started >= ?")
            params.append(times.day_start(self.since, tz))
        if self.until:
            clauses.append("started < ?")
            params.append(times.day_start(times.day_after(self.until), tz))
        if self.q:
            clauses.append("(title LIKE ? ESCAPE '\\' OR session_id = ?)")
            escaped = self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params += [f"%{escaped}%", self.q]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def query(self, **change: Any) -> dict[str, Any]:
        """The URL query for these filters with ``change`` applied, empty values left out."""
        state = asdict(self) | change
        return {k: v for k, v in state.items() if v and not (k == "page" and v == 1)}


ZONED = ("started", "ended", "last_activity")
"""The time fields of the rows the JSON API answers with."""


def in_zone(row: dict[str, Any], tz: tzinfo) -> dict[str, Any]:
    """``row`` with its times as ISO 8601 in ``tz``, with offset."""
    return row | {k: times.iso(row[k], tz) for k in ZONED if isinstance(row.get(k), str) and row[k]}


def session_list(conn: sqlite3.Connection, filters: Filters, tz: tzinfo = UTC) -> dict[str, Any]:
    """One page of sessions, newest first, and how many match; dates in ``tz``."""
    where, params = filters.where(tz)
    (total,) = conn.execute(f"SELECT count(*) FROM repository_sessions{where}", params).fetchone()
    order = "started DESC, session_id"
    if filters.sort in ("eval", "-eval"):  # sessions without an eval last
        order = f"{evals.LATEST} IS NULL, {evals.LATEST} {'DESC' if filters.sort == '-eval' else 'ASC'}, {order}"
    rows = conn.execute(
        f"SELECT list_row FROM repository_sessions{where} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, PAGE_SIZE, (filters.page - 1) * PAGE_SIZE],
    ).fetchall()
    sessions = [json.loads(row) for (row,) in rows]
    status = live_status.statuses(conn, [s["session_id"] for s in sessions])
    scores = evals.latest_scores(conn, [s["session_id"] for s in sessions])
    for s in sessions:
        s["status"] = status[s["session_id"]]
        s["eval_score"] = scores.get(s["session_id"])
    pages = max(1, -(-total // PAGE_SIZE))
    return {"total": total, "page": filters.page, "pages": pages, "page_size": PAGE_SIZE, "sessions": sessions}


def repositories(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every repository (or directory), most recently active first, with a status:
    running when any of its sessions is."""
    running = live_status.running_sessions(conn)
    live_repos = set()
    if running:
        marks = ",".join("?" * len(running))
        live_repos = {k for (k,) in conn.execute(f"SELECT DISTINCT key FROM repository_sessions WHERE session_id IN ({marks})", list(running))}
    rows = conn.execute(
        "SELECT key, kind, remote_url, sessions, tokens, tool_calls, files_changed, last_activity"
        " FROM repositories ORDER BY last_activity DESC"
    )
    names = ("key", "kind", "remote_url", "sessions", "tokens", "tool_calls", "files_changed", "last_activity")
    return [dict(zip(names, r, strict=True)) | {"running": r[0] in live_repos} for r in rows]


def users(conn: sqlite3.Connection) -> list[str]:
    return [u for (u,) in conn.execute('SELECT DISTINCT "user" FROM repository_sessions WHERE "user" != \'\' ORDER BY 1')]


def session_row(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    """The full ``kapacitor sessions --json`` row, priced now, with its live status."""
    found = conn.execute("SELECT state FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
    if not found:
        return None
    row = summary_from_state(json.loads(found[0])).as_json()
    row["status"] = live_status.statuses(conn, [session_id])[session_id]
    row["repo"], row["repo_kind"] = group_of(row)
    return row


def session_stats(conn: sqlite3.Connection, session_id: str) -> dict[str, Any] | None:
    """The stats tab: the session row, tokens per model (with totals), tool calls
    per tool with errors, and the files changed."""
    row = session_row(conn, session_id)
    if row is None:
        return None
    sums = ", ".join(f"sum({name})" for name in TOKEN_FIELDS)
    models = [
        {"model": model, **dict(zip((*TOKEN_FIELDS, "requests"), numbers, strict=True))}
        for model, *numbers in conn.execute(
            f"SELECT model, {sums}, sum(requests) FROM token_usage WHERE session_id = ? GROUP BY model ORDER BY model",
            (session_id,),
        )
    ]
    totals = {name: sum(m[name] for m in models) for name in (*TOKEN_FIELDS, "requests")}
    tools = [
        {"tool": tool, "count": count, "errors": errors}
        for tool, count, errors in conn.execute(
            "SELECT tool_name, count, errors FROM tool_calls WHERE session_id = ? ORDER BY count DESC, tool_name",
            (session_id,),
        )
    ]
    files = [
        {"path": path, "changes": n, "kinds": sorted(set(kinds.split(","))), "lines_added": added, "lines_removed": removed}
        for path, n, kinds, added, removed in conn.execute(
            "SELECT path, count(*), group_concat(DISTINCT kind), sum(lines_added), sum(lines_removed)"
            " FROM files_changed WHERE session_id = ? GROUP BY path ORDER BY path",
            (session_id,),
        )
    ]
    return {
        "session": row,
        "tokens_by_model": models,
        "tokens_total": totals,
        "cost_usd": row["cost_usd"],
        "price_source": price_source(),
        "tool_calls": tools,
        "files_changed": files,
    }
