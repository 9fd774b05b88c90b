"""Full-text search across sessions, over the ``search_index`` read model.

``search`` takes what a person types: every word must occur (in any order), a
"quoted phrase" must occur as written, nothing else is FTS5 syntax (so ``foo-bar``
or ``a.b(c)`` never fail as a query). Hits are ranked by FTS5's bm25 (on
PostgreSQL: ``ts_rank`` of the words as ``phraseto_tsquery``s), filtered
by repository, user and start date through the timeline's table, to the user's
own words (``scope="prompts"``), and by the visibility gate. Each hit has a snippet as ``parts``: (text, is_match) pairs, so
the CLI, the JSON and the page each mark matches their own way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from kapacitor.memory import gate
from kapacitor.store.readdb import ReadDb

_START, _END = "\x02", "\x03"
SNIPPET_TOKENS = 16


class SearchError(ValueError):
    """A query that cannot be searched (empty); the message is for people."""


@dataclass
class Hit:
    session_id: str
    kind: str
    event_id: str
    anchor: str
    position: int
    timestamp: str
    tool: str
    parts: list[tuple[str, bool]]
    title: str = ""
    repo: str = ""
    user: str = ""
    started: str = ""
    link: str = field(default="")

    @property
    def snippet(self) -> str:
        return "".join(text for text, _ in self.parts)

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "parts"}
        out["snippet"], out["highlights"], at = self.snippet, [], 0
        for text, match in self.parts:
            if match:
                out["highlights"].append([at, at + len(text)])
            at += len(text)
        return out


def terms(text: str) -> list[str]:
    """The quoted phrases and bare words a person typed; all are required."""
    found = [phrase or word for phrase, word in re.findall(r'"([^"]+)"|(\S+)', text) if (phrase or word).strip()]
    if not found:
        raise SearchError("type something to search for")
    return found


def fts_query(text: str) -> str:
    """What a person typed as an FTS5 query: each term quoted (so no word is read
    as an operator), all required."""
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms(text))


def _matching(conn: ReadDb, query: str) -> tuple[str, str, str, list[Any], list[Any]]:
    """(condition, snippet SQL, rank SQL, their params) of ``query`` in this database."""
    if conn.dialect == "postgresql":
        from kapacitor.projections.search_index import TSCONFIG, words

        found = terms(query)
        tsquery = " && ".join(f"phraseto_tsquery('{TSCONFIG}', {words('?')})" for _ in found)
        options = f"StartSel={_START}, StopSel={_END}, MaxWords={SNIPPET_TOKENS}, MinWords={SNIPPET_TOKENS // 2}"
        return (f"s.doc @@ ({tsquery})", f"ts_headline('{TSCONFIG}', s.text, ({tsquery}), '{options}')",
                f"ts_rank(s.doc, ({tsquery})) DESC", found, found)
    return ("search_text MATCH ?", f"snippet(search_text, 0, '{_START}', '{_END}', '…', {SNIPPET_TOKENS})",
            "bm25(search_text)", [fts_query(query)], [])


def _parts(snippet: str) -> list[tuple[str, bool]]:
    parts, match = [], False
    for piece in re.split(f"([{_START}{_END}])", snippet):
        if piece == _START:
            match = True
        elif piece == _END:
            match = False
        elif piece:
            parts.append((re.sub(r"\s+", " ", piece), match))
    return parts


SCOPES = ("all", "prompts")
"""What a search looks in: everything a session holds, or only the user's own
words (prompts, queued prompts, bash-mode and slash commands; never context the
client or IDE injected: ``projections/search_index.py``)."""


def search(conn: ReadDb, viewer: gate.Viewer, query: str, *, repo: str = "", user: str = "",
           since: str = "", session_id: str = "", scope: str = "all", limit: int = 50) -> list[Hit]:
    """The best ``limit`` hits for ``query``; ``since`` is a YYYY-MM-DD start date (UTC),
    ``scope`` one of ``SCOPES``. Raises SearchError for an empty query or an unknown scope."""
    if scope not in SCOPES:
        raise SearchError(f"search in {' or '.join(SCOPES)}, not {scope!r}")
    matches, snippet, rank, match_params, query_params = _matching(conn, query)
    clauses, params = [matches], list(match_params)
    if scope == "prompts":
        clauses.append("s.kind = 'prompt'")
    for column, value in (("r.key", repo), ('r."user"', user), ("s.session_id", session_id)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since:
        clauses.append("r.started >= ?")
        params.append(since)
    rows = conn.execute(
        f"SELECT s.session_id, s.kind, s.event_id, s.anchor, s.position, s.timestamp, s.tool,"
        f" {snippet},"
        f' coalesce(r.title, \'\'), coalesce(r.key, \'\'), coalesce(r."user", \'\'), coalesce(r.started, \'\')'
        f" FROM search_text s LEFT JOIN repository_sessions r ON r.session_id = s.session_id"
        f" WHERE {' AND '.join(clauses)} ORDER BY {rank} LIMIT ?",
        [*query_params, *params, *query_params, limit * 2],
    ).fetchall()
    hits = [Hit(sid, kind, eid, anchor, int(pos), ts, tool, _parts(snip), title, key, who, started)
            for sid, kind, eid, anchor, pos, ts, tool, snip, title, key, who, started in rows]
    hits = gate.visible(conn, viewer, hits, lambda h: h.session_id)[:limit]
    for hit in hits:
        hit.link = chat_link(hit.session_id, hit.anchor)
    return hits


def chat_link(session_id: str, anchor: str) -> str:
    """The chat page, scrolled to the item (``#e-<event id>``; chat.js loads slices until it is there)."""
    return f"/sessions/{quote(session_id, safe='')}" + (f"#e-{anchor}" if anchor else "")
