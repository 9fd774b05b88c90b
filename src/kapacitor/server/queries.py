"""What the pages ask of the read models: the session list with its filters, the
repositories, and one session's stats. Plain SQL over the projection tables;
the pages and their JSON twins both call these, so they always agree."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, tzinfo
from decimal import Decimal
from typing import Any

from kapacitor import times
from kapacitor.access.viewer import Viewer, session_access, visible_clause, visible_sessions
from kapacitor.pricing import price_source
from kapacitor.projections import evals, live_status, marks
from kapacitor.projections.repositories import SORTS, sort_index, sort_terms
from kapacitor.projections.session_summary import TOKEN_FIELDS, SessionSummary, summary_from_state
from kapacitor.server.terms import cache_hit_ratio
from kapacitor.store.readdb import ReadDb

PAGE_SIZE = 50
MIN_ID_PREFIX = 6
"""Characters of a session id the search box needs to find a session by its start."""
SORT_LABELS = {
    "started": "Started", "title": "Session", "repo": "Repository", "user": "User", "duration": "Duration",
    "tokens": "Tokens", "cost": "Cost", "files": "Files", "tools": "Tools", "eval": "Eval",
}  # fmt: skip
"""What the list's column headers (and the sort menu of narrow screens) call each sort key."""
ASCENDING_FIRST = ("title", "repo", "user", "eval")


@dataclass(frozen=True)
class Filters:
    """The timeline's filter state, as it stands in the URL query."""

    repo: str = ""
    user: str = ""
    since: str = ""  # YYYY-MM-DD, inclusive, in the viewer's zone
    until: str = ""  # YYYY-MM-DD, inclusive, in the viewer's zone
    q: str = ""
    page: int = 1
    sort: str = ""  # a key of SORTS, ascending, or "-key", descending; "": newest first
    marked: bool = False  # only sessions someone marked as worth learning from

    def where(self, viewer: Viewer, like: str = "LIKE", tz: tzinfo = UTC) -> tuple[str, list[Any]]:
        """SQL over ``repository_sessions`` (the timeline's table, see ``repositories``),
        limited to what ``viewer`` may see; a day is a day in ``tz``."""
        visible, params = visible_clause(viewer)
        clauses = [visible] if visible else []
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
            prefix = self.id_prefix()  # a whole id is the start of itself
            by_id = f"session_id {like} ? ESCAPE '\\'" if prefix else "session_id = ?"
            clauses.append(f"(title {like} ? ESCAPE '\\' OR {by_id})")
            params += [f"%{_escaped(self.q)}%", f"{_escaped(prefix)}%" if prefix else self.q]
        if self.marked:
            clauses.append(marks.MARKED)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def id_prefix(self) -> str:
        """``q`` as the start of a session id (the short id under each title is its
        first 8 characters): at least ``MIN_ID_PREFIX`` characters, no spaces;
        "" when ``q`` cannot be one."""
        q = self.q
        return "" if len(q) < MIN_ID_PREFIX or any(c.isspace() for c in q) else q

    def sorting(self) -> tuple[str, bool]:
        """(key of ``SORTS``, descending) of ``sort``; by default ``started``, descending."""
        return (self.sort.lstrip("-") or "started"), self.sort.startswith("-") or not self.sort

    def order(self, binary: str = "") -> str:
        """The SQL ORDER BY of ``sort`` (``sort_terms``: sessions without
        a value, as no eval or no price, last either way, then newest first);
        ``binary``: the read-model database's."""
        return ", ".join(sort_terms(*self.sorting(), binary))

    def sorted_by(self, key: str) -> str:
        """``asc``, ``desc`` or "" (not sorted by ``key``): the list's ``aria-sort``."""
        current = self.sort or "-started"
        if current.lstrip("-") != key:
            return ""
        return "desc" if current.startswith("-") else "asc"

    def toggled(self, key: str) -> str:
        """The ``sort`` a click on ``key``'s column header asks for: the other
        direction when the list is sorted by it, else its natural first direction
        (text A to Z, numbers and times largest first; eval lowest first)."""
        now = self.sorted_by(key)
        ascending = now == "desc" if now else key in ASCENDING_FIRST
        wanted = key if ascending else f"-{key}"
        return "" if wanted == "-started" else wanted  # the default keeps URLs short

    def query(self, **change: Any) -> dict[str, Any]:
        """The URL query for these filters with ``change`` applied, empty values left out."""
        state = asdict(self) | change
        return {k: v for k, v in state.items() if v and not (k == "page" and v == 1)}


def _escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def session_list(conn: ReadDb, filters: Filters, viewer: Viewer, tz: tzinfo = UTC) -> dict[str, Any]:
    """One page of the sessions ``viewer`` may see, in ``filters.sort`` order
    (newest first by default), and how many match; dates in ``tz``. ``id_matches``:
    how many of them ``q`` found by the start of their id (0 when ``q`` is not an
    id's start), so an ambiguous short id can say so."""
    where, params = filters.where(viewer, conn.like, tz)
    (total,) = conn.execute(f"SELECT count(*) FROM repository_sessions{where}", params).fetchone()
    sessions = _page(conn, where, params, filters, total)
    status = live_status.statuses(conn, [s["session_id"] for s in sessions])
    scores = evals.latest_scores(conn, [s["session_id"] for s in sessions])
    marked = marks.mark_counts(conn, [s["session_id"] for s in sessions])
    for s in sessions:
        s["status"] = status[s["session_id"]]
        s["eval_score"] = scores.get(s["session_id"])
        s["marks"] = marked.get(s["session_id"], 0)
    pages = max(1, -(-total // PAGE_SIZE))
    id_matches = 0
    if prefix := filters.id_prefix():
        (id_matches,) = conn.execute(
            f"SELECT count(*) FROM repository_sessions{where} AND session_id {conn.like} ? ESCAPE '\\'",
            [*params, f"{_escaped(prefix)}%"],
        ).fetchone()
    return {"total": total, "page": filters.page, "pages": pages, "page_size": PAGE_SIZE, "sessions": sessions,
            "id_matches": id_matches}


def _page(conn: ReadDb, where: str, params: list[Any], filters: Filters, matching: int) -> list[dict[str, Any]]:
    """The list rows of ``filters.page``: its ids first (read from the sort key's
    index alone: ``repositories.sort_terms``), then their rows by id, so rows
    skipped on the way to a deep page are never read from the table.
    ``matching``: how many sessions the filters keep."""
    offset = (filters.page - 1) * PAGE_SIZE
    hint = _in_sort_order(conn, filters, offset, matching) if where else ""
    ids = [sid for (sid,) in conn.execute(
        f"SELECT session_id FROM repository_sessions{hint}{where} ORDER BY {filters.order(conn.binary)} LIMIT ? OFFSET ?",
        [*params, PAGE_SIZE, offset],
    )]
    found = dict(conn.execute(
        f"SELECT session_id, list_row FROM repository_sessions WHERE session_id IN ({','.join('?' * len(ids))})", ids,
    )) if ids else {}
    return [json.loads(found[sid]) for sid in ids]


SCAN_OVER_SORT = 25
"""How many index entries walked in order cost as much as one matching row sorted
(read from the table by id, then sorted): measured by bench/timeline_sort.py."""


def _in_sort_order(conn: ReadDb, filters: Filters, offset: int, matching: int) -> str:
    """SQLite's ``INDEXED BY`` the sort key's index when walking it in order to the
    page is cheaper than sorting every matching session, else "". SQLite keeps no
    statistics, so for ``repo = ?`` it guesses a few rows and sorts them all,
    however many a busy repository has; PostgreSQL's planner weighs its
    statistics itself. The walk reads about (offset + page) * all / matching entries."""
    if conn.dialect != "sqlite" or not matching:
        return ""
    (everyone,) = conn.execute("SELECT max(rowid) FROM repository_sessions").fetchone()  # ~ the row count, without counting
    if (offset + PAGE_SIZE) * (everyone or 0) > SCAN_OVER_SORT * matching * matching:
        return ""
    return f" INDEXED BY {sort_index(*filters.sorting())}"


def repositories(conn: ReadDb, viewer: Viewer) -> list[dict[str, Any]]:
    """Every repository (or directory) with sessions ``viewer`` may see, most
    recently active first, its totals over those sessions, and a status: running
    when any of them is."""
    live_repos = set(visible_sessions(conn, viewer, live_status.running_sessions(conn)).values())
    if viewer.admin:
        rows = conn.execute(
            "SELECT key, kind, remote_url, sessions, tokens, tool_calls, files_changed, last_activity"
            " FROM repositories ORDER BY last_activity DESC"
        )
    else:
        visible, params = visible_clause(viewer, "rs.session_id", "rs.key")
        rows = conn.execute(
            "SELECT r.key, r.kind, r.remote_url, count(*), sum(rs.tokens), sum(rs.tool_calls), sum(rs.files_changed),"
            " max(rs.last_activity) AS last FROM repository_sessions rs JOIN repositories r ON r.key = rs.key"
            f" WHERE {visible} GROUP BY r.key, r.kind, r.remote_url ORDER BY last DESC",
            params,
        )
    names = ("key", "kind", "remote_url", "sessions", "tokens", "tool_calls", "files_changed", "last_activity")
    return [dict(zip(names, r, strict=True)) | {"running": r[0] in live_repos} for r in rows]


def users(conn: ReadDb, viewer: Viewer) -> list[str]:
    """The git users of the sessions ``viewer`` may see."""
    visible, params = visible_clause(viewer)
    where = f" AND {visible}" if visible else ""
    return [u for (u,) in conn.execute(f'SELECT DISTINCT "user" FROM repository_sessions WHERE "user" != \'\'{where} ORDER BY 1', params)]


def session_row(conn: ReadDb, session_id: str, viewer: Viewer) -> dict[str, Any] | None:
    """The full ``kapacitor sessions --json`` row, priced now, with its live status,
    ``owner`` and ``visibility``; None when there is no such session or ``viewer``
    may not see it (the same answer, so a private session's existence stays hidden)."""
    summary = _summary(conn, session_id, viewer)
    return None if summary is None else _row(conn, summary)


def _summary(conn: ReadDb, session_id: str, viewer: Viewer) -> SessionSummary | None:
    """The session's folded summary, None when missing or hidden from ``viewer``."""
    if not viewer.admin and not visible_sessions(conn, viewer, [session_id]):
        return None
    found = conn.execute("SELECT state FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
    return summary_from_state(json.loads(found[0])) if found else None


def _row(conn: ReadDb, summary: SessionSummary) -> dict[str, Any]:
    session_id = summary.session_id
    status = live_status.statuses(conn, [session_id])[session_id]
    row = summary.as_json(live=status != "ended")  # a subagent without a result runs only in a live session
    row["status"] = status
    row.update(session_access(conn, session_id))
    return row


def session_stats(conn: ReadDb, session_id: str, viewer: Viewer) -> dict[str, Any] | None:
    """The stats tab: the session row, tokens per model (with totals), each with its
    ``cost_usd`` (None: no price) and ``cache_hit_ratio`` (``terms.cache_hit_ratio``);
    the same per agent (``agents``: the main agent, then each subagent); tool calls
    per tool with errors, and the files changed."""
    summary = _summary(conn, session_id, viewer)
    if summary is None:
        return None
    row = _row(conn, summary)
    sums = ", ".join(f"sum({name})" for name in TOKEN_FIELDS)
    models = [
        {"model": model, **dict(zip((*TOKEN_FIELDS, "requests"), numbers, strict=True))}
        for model, *numbers in conn.execute(
            f"SELECT model, {sums}, sum(requests) FROM token_usage WHERE session_id = ? GROUP BY model ORDER BY model",
            (session_id,),
        )
    ]
    totals = {name: sum(m[name] for m in models) for name in (*TOKEN_FIELDS, "requests")}
    for m in models:
        m |= {"cost_usd": row["cost_per_model"].get(m["model"]), "cache_hit_ratio": cache_hit_ratio(m)}
    totals["cache_hit_ratio"] = cache_hit_ratio(totals)
    tools = [
        {"tool": tool, "count": count, "errors": errors}
        for tool, count, errors in conn.execute(
            "SELECT tool_name, count, errors FROM tool_calls WHERE session_id = ? ORDER BY count DESC, tool_name",
            (session_id,),
        )
    ]
    files: dict[str, dict[str, Any]] = {}
    for path, kind, n, added, removed in conn.execute(
        "SELECT path, kind, count(*), sum(lines_added), sum(lines_removed)"
        " FROM files_changed WHERE session_id = ? GROUP BY path, kind ORDER BY path, kind",
        (session_id,),
    ):
        f = files.setdefault(path, {"path": path, "changes": 0, "kinds": [], "by_kind": {}, "lines_added": None, "lines_removed": None})
        f["changes"] += n
        f["kinds"].append(kind)
        f["by_kind"][kind] = n
        for key, lines in (("lines_added", added), ("lines_removed", removed)):
            if lines is not None:
                f[key] = (f[key] or 0) + lines
    return {
        "session": row,
        "tokens_by_model": models,
        "tokens_total": totals,
        "agents": [_agent(summary, None, {"agent_type": "main"}), *(_agent(summary, a["agent_id"], a) for a in row["subagents"])],
        "cost_usd": row["cost_usd"],
        "price_source": price_source(),
        "tool_calls": tools,
        "files_changed": list(files.values()),
    }


def _agent(summary: SessionSummary, agent_id: str | None, info: dict[str, Any]) -> dict[str, Any]:
    """One agent's share of the session: ``agent_id`` (None: the main agent), type,
    description, requests, tokens summed over its models, cost and cache-hit ratio."""
    tokens = {name: sum(t[name] for t in summary.tokens(agent_id).values()) for name in (*TOKEN_FIELDS, "requests")}
    costs = [c for c in summary.cost_per_model(agent_id).values() if c is not None]
    return {
        "agent_id": agent_id, "agent_type": info.get("agent_type") or "agent", "description": info.get("description") or "",
        "models": sorted(summary.tokens(agent_id)), **tokens,
        "cost_usd": float(round(sum(costs, Decimal(0)), 8)) if costs else None, "cache_hit_ratio": cache_hit_ratio(tokens),
    }  # fmt: skip
