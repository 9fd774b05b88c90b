"""Full-text search across sessions, over the ``search_index`` read model.

``search`` takes what a person types: every word must occur (in any order) in
one of its forms ("rate limit" finds "rate limiting": ``word_forms``), a "quoted
phrase" must occur as written up to word forms, nothing else is FTS5 syntax (so
``foo-bar`` or ``a.b(c)`` never fail as a query). Hits with every term exactly
as typed come first, then by FTS5's bm25 (on PostgreSQL ``ts_rank``); filtered
by repository, user and start date through the timeline's table, to the user's
own words (``scope="prompts"``), and by the visibility gate, all in the
database, before ranking. Of a broad query's matches only the newest
``RANKED_WITHIN`` are ranked, and its hits say so. Each hit has a
snippet as ``parts``: (text, is_match) pairs, so the CLI, the JSON and the page
each mark matches their own way; both backends cut and mark it with the same
code (``fts5_snippet``: FTS5's ``snippet()`` in Python, over word forms).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any
from urllib.parse import quote

from kapacitor import times
from kapacitor.memory import gate
from kapacitor.normalize.redact import marker_pattern
from kapacitor.store.readdb import ReadDb
from kapacitor.word_forms import form, forms, spans

_START, _END = "\x02", "\x03"
SNIPPET_TOKENS = 16
RANKED_WITHIN = 2_000
"""A search ranks at most this many matching texts: the newest (the last in the
log) of those its filters and the viewer let through. Ranking reads every match
it ranks, so a broad query took seconds on a 200 MB store (``hello.py`` is in
49,506 of its 133,800 texts); finding the newest ones is cheap in both
databases (FTS5 walks its matches by rowid, newest first). A query with no
more matches than this is ranked whole, as before; with more, each hit says so
(``Hit.ranked_within``), and the page and the CLI tell people to narrow it."""


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
    ranked_within: int | None = None
    """``RANKED_WITHIN`` when more texts matched than a search ranks (the hit is
    the best of the newest ones), else None (every match was ranked)."""

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


@dataclass
class SessionHits:
    """One session's hits under its title, as the /search page lists them."""

    session_id: str
    title: str
    repo: str
    user: str
    started: str
    hits: list[Hit]


def by_session(hits: list[Hit]) -> list[SessionHits]:
    """``hits`` (as ranked) grouped by session: the sessions in the order of their
    best hit, each one's hits in rank order. ``/api/search`` keeps the flat ranked
    list; grouping its hits by ``session_id`` in order of first appearance gives
    these groups."""
    groups: dict[str, SessionHits] = {}
    for hit in hits:
        group = groups.setdefault(hit.session_id, SessionHits(hit.session_id, hit.title, hit.repo, hit.user, hit.started, []))
        group.hits.append(hit)
    return list(groups.values())


def terms(text: str) -> list[str]:
    """The quoted phrases and bare words a person typed; all are required."""
    found = [phrase or word for phrase, word in re.findall(r'"([^"]+)"|(\S+)', text) if (phrase or word).strip()]
    if not found:
        raise SearchError("type something to search for")
    return found


def searched(text: str) -> list[tuple[str, list[str]]]:
    """Each term of ``text`` (``terms``) with its word forms (``word_forms.forms``);
    a term without a letter or digit (``->``) is left out. Raises SearchError when
    no term has one."""
    found = [(term, words) for term in terms(text) if (words := forms(term))]
    if not found:
        raise SearchError("type a word or a number to search for")
    return found


@dataclass
class Matching:
    """How the ``searched`` terms are found in one database: ``every``, the
    condition (with its params) of every match (every term's word forms occur, a
    phrase's in a row); ``tiers``, the conditions of the matches with every term
    exactly as typed, then of those with other word forms only (together:
    ``every``); ``rank`` (with its params), the order within a tier: FTS5's bm25
    (its ``rank``), on PostgreSQL ``ts_rank``, then the newest first; ``newest``,
    a document's place in the log, larger for later ones (the FTS5 ``rowid``,
    documents being indexed in log order; on PostgreSQL the event's
    ``position``); ``row``, what names one document (FTS5's ``rowid``,
    PostgreSQL's ``ctid``); and ``among``, the condition (with its params) of
    the documents named in a list of ``row``."""

    every: tuple[str, list[Any]]
    tiers: list[tuple[str, list[Any]]]
    rank: str
    rank_params: list[Any]
    newest: str
    row: str
    among: Callable[[list[Any]], tuple[str, list[Any]]]


def _matching(conn: ReadDb, found: list[tuple[str, list[str]]]) -> Matching:
    exact = [term for term, _ in found]
    if conn.dialect == "postgresql":
        from kapacitor.projections.search_index import TSCONFIG, words

        as_typed = " && ".join(f"phraseto_tsquery('{TSCONFIG}', {words('?')})" for _ in exact)
        wanted = " & ".join(f"'{word}'" for _, forms_ in found for word in forms_)  # a tsquery literal
        # a phrase's order is checked on the text of its forms: a tsvector keeps
        # positions up to 16,383 and 256 a word, FTS5 every one
        phrases = [" ".join(forms_) for _, forms_ in found if len(forms_) > 1]
        condition = " AND ".join(["s.stemmed @@ ?::tsquery", *["(' ' || s.stems || ' ') LIKE ?"] * len(phrases)])
        params = [wanted, *(f"% {p} %" for p in phrases)]
        return Matching((condition, params),
                        [(f"{condition} AND s.doc @@ ({as_typed})", [*params, *exact]),
                         (f"{condition} AND NOT s.doc @@ ({as_typed})", [*params, *exact])],
                        'ts_rank(s.stemmed, ?::tsquery) DESC, s."position" DESC', [wanted], 's."position"', "s.ctid",
                        lambda rows: ("s.ctid = ANY(?::tid[])", [rows]))  # the GIN index finds them again: a test
    stems = " AND ".join(_phrase("stems", " ".join(forms_)) for _, forms_ in found)
    as_typed = " AND ".join(_phrase("text", term) for term in exact)
    # ``rank`` is bm25 too, but ordering by it lets FTS5 sort the matches itself, by
    # rowid and score: the text and the joined row are read for the hits kept only
    # (``ORDER BY bm25(search_text)`` sorted every match with both). The rowids
    # listed are a test (``+``), not a lookup each; FTS5 ranks only their span.
    return Matching(("search_text MATCH ?", [stems]),
                    [("search_text MATCH ?", [f"({stems}) AND ({as_typed})"]),
                     ("search_text MATCH ?", [f"({stems}) NOT ({as_typed})"])], "rank", [], "s.rowid", "s.rowid",
                    lambda rows: (f"+s.rowid IN ({', '.join('?' * len(rows))}) AND s.rowid BETWEEN ? AND ?",
                                  [*rows, min(rows), max(rows)]))


def _phrase(column: str, text: str) -> str:
    """An FTS5 phrase query of ``text`` in ``column``, quoted: no word is read as an operator."""
    return f'{column} : "' + text.replace('"', '""') + '"'



def fts5_snippet(text: str, found: list[list[str]], size: int = SNIPPET_TOKENS,
                 word: Callable[[str], str] = form) -> str:
    """FTS5's ``snippet()`` (``fts5_aux.c``) in Python, over word forms: the window
    of ``size`` words of ``text`` scored as FTS5 scores it (1,000 for each term
    ``found`` in it, 1 for each repeat; a window from a sentence's start gets 100
    more, from the text's start 120), centred on its matches, "…" where text was
    cut, each match between the start and end marks (a phrase from its first word
    to its last, overlapping ones as one). ``found`` holds each term's word forms
    (``searched``); words and forms as ``word_forms`` makes them. Both backends
    use it (FTS5's own ``snippet()`` marks only the words it indexed, not their
    forms in ``text``). ``word`` makes a word of ``text`` comparable with ``found``
    (``str.lower``: exact words, as FTS5's own ``snippet()`` marks them)."""
    tokens = [(m.start(), m.end(), word(m.group())) for m in spans(text)]
    if not tokens:
        return text
    words, n = [t[2] for t in tokens], len(tokens)
    matches = []  # (first token, end token (exclusive), term number), in text order
    for number, phrase in enumerate(found):
        matches += [(i, i + len(phrase), number) for i in range(n - len(phrase) + 1)
                    if phrase and words[i : i + len(phrase)] == phrase]
    matches.sort()
    firsts = [m[0] for m in matches]

    def score(at: int) -> tuple[int, int]:
        """(score, centred start) of the window from token ``at``."""
        inside = matches[bisect_left(firsts, at) : bisect_left(firsts, at + size)]
        if not inside:
            return 0, 0
        numbers = [number for _, _, number in inside]
        points = sum(1000 if number not in numbers[:i] else 1 for i, number in enumerate(numbers))
        first, last = inside[0][0], inside[-1][1]
        return points, max(0, min(first - int((size - (last - first)) / 2), n - size))

    def starts_sentence(i: int) -> bool:  # after whitespace after a '.' or ':'
        at = end = tokens[i][0]
        while at and text[at - 1].isspace():
            at -= 1
        return i == 0 or (at < end and text[at - 1 : at] in (".", ":"))

    sentences = [i for i in range(n) if starts_sentence(i)]
    best, start = 0, 0
    for first, _, _ in matches:
        points, centred = score(first)
        if points > best:
            best, start = points, centred
        before = sentences[bisect_right(sentences, first) - 1]
        if n > size and before < first:
            points = score(before)[0] + (120 if before == 0 else 100)
            if points > best:
                best, start = points, before
    stop = min(start + size, n) - 1  # the window's last token
    masked = [m.span() for m in marker_pattern().finditer(text)] if "[REDACTED " in text else []
    out, at = ["…" if start else ""], _widened(tokens[start][0], masked, 0) if start else 0
    for first, end, _ in matches:
        if not start <= first <= stop or tokens[first][0] < at or _widened(tokens[first][0], masked, 0) != tokens[first][0]:
            continue  # outside the window, inside the previous mark, or a word of a redaction marker
        last = min(end, stop + 1) - 1
        for other_first, other_end, _ in matches:  # overlapping phrases make one mark
            if first < other_first <= last:
                last = max(last, min(other_end, stop + 1) - 1)
        out += [text[at : tokens[first][0]], _START, text[tokens[first][0] : tokens[last][1]], _END]
        at = tokens[last][1]
    out += [text[at:]] if stop == n - 1 else [text[at : _widened(tokens[stop][1], masked, 1)], "…"]
    return "".join(out)


def _widened(at: int, masked: list[tuple[int, int]], side: int) -> int:
    """``at``, or the start (``side`` 0) or end (1) of the redaction marker it
    falls inside: a snippet never cuts one (the page shows a marker whole as a badge)."""
    for span in masked:
        if span[0] < at < span[1]:
            return span[side]
    return at


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
           since: str = "", tz: tzinfo | None = UTC, session_id: str = "", scope: str = "all",
           limit: int = 50) -> list[Hit]:
    """The best ``limit`` hits for ``query``, of sessions started since ``since``
    (a day, from its start in ``tz``, or a duration: ``times.since_start``);
    ``scope`` one of ``SCOPES``. Raises SearchError for an empty query, an
    unknown scope or a ``since`` that is neither a day nor a duration."""
    if scope not in SCOPES:
        raise SearchError(f"search in {' or '.join(SCOPES)}, not {scope!r}")
    found = searched(query)
    clauses, params = [], []
    if scope == "prompts":
        clauses.append("s.kind = 'prompt'")
    for column, value in (("r.key", repo), ('r."user"', user), ("s.session_id", session_id)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if since:
        clauses.append("r.started >= ?")
        try:
            params.append(times.since_start(since, tz))
        except ValueError as exc:
            raise SearchError(f"since: {exc}") from None
    visible, visible_params = gate.visible_clause(viewer, "r.session_id", "r.key")  # ranked: only what they may see
    if visible:
        clauses.append(visible)
        params += visible_params
    matching, rows = _matching(conn, found), []
    tables = "search_text s LEFT JOIN repository_sessions r ON r.session_id = s.session_id"
    every, every_params = matching.every
    newest = conn.execute(  # FTS5 walks its matches newest first: nothing is ranked here
        f"SELECT {matching.row} FROM {tables} WHERE {' AND '.join([every, *clauses])}"
        f" ORDER BY {matching.newest} DESC LIMIT ?", [*every_params, *params, RANKED_WITHIN + 1],
    ).fetchall()
    if not newest:
        return []
    past = len(newest) > RANKED_WITHIN
    # the kept ones passed the filters: the ranking tests that they are among them
    # (FTS5 would read each text's row to test a filter again), and the viewer's rule
    among, among_params = matching.among([row for (row,) in newest[:RANKED_WITHIN]])
    clauses, params = [among, *([visible] if visible else [])], [*among_params, *visible_params]
    for condition, condition_params in matching.tiers:  # the words as typed first: most searches need one tier
        if len(rows) < limit:
            rows += conn.execute(
                f"SELECT s.session_id, s.kind, s.event_id, s.anchor, s.position, s.timestamp, s.tool, s.text,"
                f' coalesce(r.title, \'\'), coalesce(r.key, \'\'), coalesce(r."user", \'\'), coalesce(r.started, \'\')'
                f" FROM {tables} WHERE {' AND '.join([condition, *clauses])} ORDER BY {matching.rank} LIMIT ?",
                [*condition_params, *params, *matching.rank_params, limit - len(rows)],
            ).fetchall()
    hits = [Hit(sid, kind, eid, anchor, int(pos), ts, tool, [(snip, False)], title, key, who, started,
                ranked_within=RANKED_WITHIN if past else None)
            for sid, kind, eid, anchor, pos, ts, tool, snip, title, key, who, started in rows]
    phrases = [forms_ for _, forms_ in found]
    for hit in hits:  # only the hits shown are cut and marked, from the whole text
        hit.parts = _parts(fts5_snippet(hit.snippet, phrases))
        hit.link = chat_link(hit.session_id, hit.anchor)
    return hits


def ranked_note(hits: list[Hit]) -> str:
    """What the page and the CLI tell people when ``hits`` are the
    best of the newest matches only ("" when every match was ranked)."""
    n = hits[0].ranked_within if hits else None
    return (f"More than {n:,} texts match: these are the best of the newest {n:,}. Add words, or a repository,"
            f" user or since filter, to reach older ones.") if n else ""


def chat_link(session_id: str, anchor: str) -> str:
    """The chat page, scrolled to the item (``#e-<event id>``; chat.js loads slices until it is there)."""
    return f"/sessions/{quote(session_id, safe='')}" + (f"#e-{anchor}" if anchor else "")
