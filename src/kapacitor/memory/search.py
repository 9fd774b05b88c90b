"""Full-text search across sessions, over the ``search_index`` read model.

``search`` takes what a person types: every word must occur (in any order), a
"quoted phrase" must occur as written, nothing else is FTS5 syntax (so ``foo-bar``
or ``a.b(c)`` never fail as a query). Hits are ranked by FTS5's bm25 (on
PostgreSQL: ``ts_rank`` of the words as ``phraseto_tsquery``s), filtered
by repository, user and start date through the timeline's table, to the user's
own words (``scope="prompts"``), and by the visibility gate. Each hit has a
snippet as ``parts``: (text, is_match) pairs, so the CLI, the JSON and the page
each mark matches their own way; both backends cut and mark it alike (FTS5's
``snippet()``; on PostgreSQL ``fts5_snippet``).
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
    """(condition, snippet SQL, rank SQL, the condition's params, the rank's params)
    of ``query`` in this database. On PostgreSQL the snippet SQL is the whole text,
    which ``fts5_snippet`` marks: ``ts_headline`` parses ``foo_bar``, a path or
    ``x.y`` as one token and cannot mark a word inside it, where FTS5 can."""
    if conn.dialect == "postgresql":
        from kapacitor.projections.search_index import TSCONFIG, words

        found = terms(query)
        tsquery = " && ".join(f"phraseto_tsquery('{TSCONFIG}', {words('?')})" for _ in found)
        return f"s.doc @@ ({tsquery})", "s.text", f"ts_rank(s.doc, ({tsquery})) DESC", found, found
    return ("search_text MATCH ?", f"snippet(search_text, 0, '{_START}', '{_END}', '…', {SNIPPET_TOKENS})",
            "bm25(search_text)", [fts_query(query)], [])


_TOKEN = re.compile(r"[^\W_]+")
"""A word as FTS5's unicode61 tokenizer (and ``search_index.words`` on PostgreSQL)
sees it: a run of letters and digits."""


def fts5_snippet(text: str, found: list[str], size: int = SNIPPET_TOKENS) -> str:
    """FTS5's ``snippet()`` (``fts5_aux.c``) in Python, for PostgreSQL: the window
    of ``size`` words of ``text`` scored as FTS5 scores it (1,000 for each term
    ``found`` in it, 1 for each repeat; a window from a sentence's start gets 100
    more, from the text's start 120), centred on its matches, "…" where text was
    cut, each match between the start and end marks (a phrase from its first word
    to its last, overlapping ones as one). Words: runs of letters and digits,
    case-insensitive, as FTS5's unicode61 tokenizer splits them."""
    tokens = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text)]
    if not tokens:
        return text
    words, n = [t[2] for t in tokens], len(tokens)
    matches = []  # (first token, end token (exclusive), term number), in text order
    for number, term in enumerate(found):
        phrase = _TOKEN.findall(term.lower())
        matches += [(i, i + len(phrase), number) for i in range(n - len(phrase) + 1)
                    if phrase and words[i : i + len(phrase)] == phrase]
    matches.sort()

    def score(at: int) -> tuple[int, int]:
        """(score, centred start) of the window from token ``at``."""
        inside = [m for m in matches if at <= m[0] < at + size]
        if not inside:
            return 0, 0
        numbers = [number for _, _, number in inside]
        points = sum(1000 if number not in numbers[:i] else 1 for i, number in enumerate(numbers))
        first, last = inside[0][0], inside[-1][1]
        return points, max(0, min(first - int((size - (last - first)) / 2), n - size))

    def starts_sentence(i: int) -> bool:  # after whitespace after a '.' or ':'
        before = text[: tokens[i][0]]
        return i == 0 or (before[-1:].isspace() and before.rstrip()[-1:] in (".", ":"))

    sentences = [i for i in range(n) if starts_sentence(i)]
    best, start = 0, 0
    for first, _, _ in matches:
        points, centred = score(first)
        if points > best:
            best, start = points, centred
        before = [i for i in sentences if i <= first][-1]
        if n > size and before < first:
            points = score(before)[0] + (120 if before == 0 else 100)
            if points > best:
                best, start = points, before
    stop = min(start + size, n) - 1  # the window's last token
    out, at = ["…" if start else ""], tokens[start][0] if start else 0
    for first, end, _ in matches:
        if not start <= first <= stop or tokens[first][0] < at:
            continue  # outside the window, or inside the previous mark
        last = min(end, stop + 1) - 1
        for other_first, other_end, _ in matches:  # overlapping phrases make one mark
            if first < other_first <= last:
                last = max(last, min(other_end, stop + 1) - 1)
        out += [text[at : tokens[first][0]], _START, text[tokens[first][0] : tokens[last][1]], _END]
        at = tokens[last][1]
    out += [text[at:]] if stop == n - 1 else [text[at : tokens[stop][1]], "…"]
    return "".join(out)


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
    matches, snippet, rank, match_params, rank_params = _matching(conn, query)
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
        [*params, *rank_params, limit * 2],
    ).fetchall()
    hits = [Hit(sid, kind, eid, anchor, int(pos), ts, tool, [(snip, False)], title, key, who, started)
            for sid, kind, eid, anchor, pos, ts, tool, snip, title, key, who, started in rows]
    hits = gate.visible(conn, viewer, hits, lambda h: h.session_id)[:limit]
    found = terms(query) if conn.dialect == "postgresql" else []
    for hit in hits:  # only the hits shown: PostgreSQL's are marked here, from the whole text
        hit.parts = _parts(fts5_snippet(hit.snippet, found) if found else hit.snippet)
        hit.link = chat_link(hit.session_id, hit.anchor)
    return hits


def chat_link(session_id: str, anchor: str) -> str:
    """The chat page, scrolled to the item (``#e-<event id>``; chat.js loads slices until it is there)."""
    return f"/sessions/{quote(session_id, safe='')}" + (f"#e-{anchor}" if anchor else "")
