"""The read models are the same on SQLite and PostgreSQL: the sample transcripts
imported into each store, every projection run by the runner in the store's own
database, every read-model table compared row for row; then the dashboard's
queries and the CLI on a ``postgresql://`` store."""

from __future__ import annotations

import json
import subprocess

import pytest

from capture_helpers import KAPACITOR
from conftest import RECORDED, SAMPLE_DIRS
from kapacitor.access.viewer import LOCAL, Viewer
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent
from kapacitor.memory import facts, search
from kapacitor.projections import comments, evals, marks
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.projections.search_index import DOC_COLUMNS
from kapacitor.server import queries
from kapacitor.server.queries import Filters
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from kapacitor.word_forms import WORD
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

TABLES = sorted({t for p in PROJECTIONS for t in p.tables})
COLUMNS = {"search_text": ", ".join(f'"{c}"' for c in DOC_COLUMNS)}
"""Compared columns where the backends differ (PostgreSQL's search table adds its tsvector)."""
API_FIX = json.loads((RECORDED / "sessions.json").read_text())["api-fix"]["session_id"]


def eval_and_memory_events(store) -> None:  # type: ignore[no-untyped-def]
    """What ``kapacitor eval``, memory and people append, with fixed ids: an eval with
    scores, a review, a judge's fact, its guidance, a person's fact superseded,
    a recall; two comments (one edited, one retracted), two marks (one taken back)."""
    verdict = {"question_id": "q1", "category": "safety", "score": 4, "verdict": "pass"}
    store.append(f"SessionEval-{API_FIX}", [
        NewEvent("ev1", "SessionEvalCompleted", {
            "timestamp": "2026-11-25T21:00:00Z", "eval_id": "ev1",
            "scores": [verdict, {**verdict, "question_id": "q2", "score": 1, "verdict": "fail"}],
            "summary": {"session_id": API_FIX, "overall": 3, "judge": {"backend": "fake", "model": "judge-1"},
                        "retrospective": {"assessment": "fine", "suggestions": ["Run the tests before editing."]}}},
            {"eval": {"session_id": API_FIX}}),
        NewEvent("rv1", "EvalVerdictReviewed", {"timestamp": "2026-11-26T08:00:00Z", "eval_id": "ev1",
                                                "question_id": "q2", "agree": False, "reviewer": "lead"}),
    ])
    store.append("AgentMemory-org-lead", [
        NewEvent("f1", "FactRetained", {"fact": "Squash merges only.", "retained_at": "2026-11-26T09:00:00Z",
                                        "extensions": {"kapacitor": {"fact_id": "fact000001", "scope": "org",
                                                                     "provenance": {"by": "person", "user": "lead"}}}}),
        NewEvent("f2", "FactSuperseded", {"fact_id": "fact000001", "superseded_by": "fact000002",
                                          "superseded_at": "2026-11-26T10:00:00Z"}),
        NewEvent("f3", "FactsRecalled", {"fact_ids": ["fact000001"], "recalled_at": "2026-11-26T11:00:00Z"}),
    ])
    store.append(f"SessionComments-{API_FIX}", [
        NewEvent("c1", "CommentAdded", {"timestamp": "2026-11-26T12:00:00Z", "comment_id": "c1", "author": "lead",
                                        "text": "Note the **test first**.", "target": {"kind": "session", "anchor": ""}}),
        NewEvent("c2", "CommentAdded", {"timestamp": "2026-11-26T12:01:00Z", "comment_id": "c2", "author": "ana",
                                        "text": "here", "target": {"kind": "chat", "anchor": "some-event"}}),
        NewEvent("c3", "CommentRetracted", {"timestamp": "2026-11-26T12:02:00Z", "comment_id": "c2", "author": "ana"}),
        NewEvent("c4", "CommentEdited", {"timestamp": "2026-11-26T12:03:00Z", "comment_id": "c1", "author": "lead",
                                         "text": "Note the **test first**, then the fix."}),
        NewEvent("c5", "CommentEdited", {"timestamp": "2026-11-26T12:04:00Z", "comment_id": "c1", "author": "ana",
                                         "text": "not hers to edit"}),
    ])
    store.append(f"SessionMarks-{API_FIX}", [
        NewEvent("m1", "SessionMarked", {"timestamp": "2026-11-26T13:00:00Z", "author": "lead", "reason": "TDD"}),
        NewEvent("m2", "SessionMarked", {"timestamp": "2026-11-26T13:01:00Z", "author": "ana"}),
        NewEvent("m3", "SessionUnmarked", {"timestamp": "2026-11-26T13:02:00Z", "author": "lead", "marked_by": "ana"}),
    ])


def built(url: str, batch_size: int) -> dict[str, list[tuple]]:
    """Every read-model table after importing the samples (and eval and memory
    events) and catching up."""
    store = open_store(url)
    try:
        import_paths(store, SAMPLE_DIRS)
        eval_and_memory_events(store)
        runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS, batch_size=batch_size)
        try:
            runner.catch_up()
            assert not runner.failures, runner.failures
            return {t: sorted(tuple(map(_plain, row)) for row in runner.conn.execute(f'SELECT {COLUMNS.get(t, "*")} FROM "{t}"')) for t in TABLES}
        finally:
            runner.close()
    finally:
        store.close()


def _plain(value):  # type: ignore[no-untyped-def]
    return json.loads(value) if isinstance(value, str) and value.startswith(("{", "[")) else value


@pytest.mark.parametrize("batch_size", [1000, 7])
def test_every_read_model_is_the_same_on_both_backends(tmp_path, pg_url, batch_size):  # noqa: F811
    on_sqlite = built(f"sqlite://{tmp_path / 'a.db'}", batch_size)
    on_postgres = built(pg_url, batch_size)
    for table in TABLES:
        assert on_postgres[table] == on_sqlite[table], table
    assert len(on_sqlite["sessions"]) >= 5
    assert on_sqlite["evals"] and on_sqlite["eval_reviews"] and len(on_sqlite["facts"]) == 2 and on_sqlite["search_text"]
    assert [(c[0], c[5], c[8] != "") for c in on_sqlite["comments"]] == [  # c1 edited by its author only, c2 retracted
        ("c1", "Note the **test first**, then the fix.", False), ("c2", "here", True)]
    assert [m[:3] for m in on_sqlite["session_marks"]] == [(API_FIX, "lead", "TDD")]


def test_the_dashboard_queries_agree_on_both_backends(tmp_path, pg_url):  # noqa: F811
    answers = []
    for url in (f"sqlite://{tmp_path / 'a.db'}", pg_url):
        built(url, 1000)
        store = open_store(url)
        db = open_read_db(store)
        try:
            from kapacitor.access.accounts import ensure_schema

            ensure_schema(db)
            listing = queries.session_list(db, Filters(q="HELLO.PY"), LOCAL)  # case-insensitive on both
            first = listing["sessions"][0]["session_id"]
            answers.append({
                "listing": [s["session_id"] for s in listing["sessions"]],
                "repos": queries.repositories(db, LOCAL),
                "users": queries.users(db, LOCAL),
                "stats": queries.session_stats(db, first, LOCAL),
                "hidden": queries.session_list(db, Filters(), Viewer("nobody"))["total"],
                "search": sorted((h.session_id, h.event_id, h.kind) for h in search.search(db, None, "hello.py")),
                "search hidden": search.search(db, Viewer("nobody"), "hello"),
                "by eval": [s["session_id"] for s in queries.session_list(db, Filters(sort="eval"), LOCAL)["sessions"]][:1],
                "sorted": {sort: [s["session_id"] for s in queries.session_list(db, Filters(sort=sort), LOCAL)["sessions"]]
                           for key in queries.SORTS for sort in (key, f"-{key}")},
                "short id": queries.session_list(db, Filters(q=first[:6].upper()), LOCAL),
                "eval overview": evals.overview(db),
                "facts": [f.as_json() for f in facts.rows(db)],
                "comments": comments.session_comments(db, API_FIX),
                "marked": marks.marked(db, LOCAL),
                "marked hidden": marks.marked(db, Viewer("nobody")),
                "marked listing": queries.session_list(db, Filters(marked=True), LOCAL)["sessions"],
            })
        finally:
            db.close()
            store.close()
    sqlite_answer, postgres_answer = answers
    assert sqlite_answer["search"] and not sqlite_answer["search hidden"] and sqlite_answer["facts"]
    assert sqlite_answer["eval overview"]["questions"] and sqlite_answer["by eval"] == [API_FIX]
    assert [c["comment_id"] for c in sqlite_answer["comments"]] == ["c1"] and not sqlite_answer["marked hidden"]
    assert [(s["session_id"], len(s["marks"])) for s in sqlite_answer["marked"]] == [(API_FIX, 1)]
    assert [(s["session_id"], s["marks"]) for s in sqlite_answer["marked listing"]] == [(API_FIX, 1)]
    assert postgres_answer == sqlite_answer
    assert len(sqlite_answer["listing"]) == 2 and sqlite_answer["hidden"] == 0
    assert sqlite_answer["short id"]["id_matches"] == 1 and len(sqlite_answer["sorted"]["-cost"]) >= 5


COMPOUND = ("Before anything else we open src/kapacitor/memory/search.py and call parse_args from the foo_bar"
            " module, then x.y and hello.py run: some more words after that.\nA new sentence follows with"
            " foo-bar, FOO_BAR again and a long tail of words so that the window has to be cut somewhere.")
SEARCHED = ["foo_bar", "hello.py", "search.py", "x.y", "parse_args", "memory/search", '"foo bar"', "foo",
            "foo module", "bar foo", "sentence", "tail cut", "def", "README.md", "test", "the", "error"]


def test_search_snippets_mark_the_same_words_on_both_backends(tmp_path, pg_url):  # noqa: F811
    """PostgreSQL's snippets are cut and marked as FTS5 cuts and marks them, also
    inside compound tokens (``foo_bar``, a path, ``x.y``) ``ts_headline`` cannot split."""
    session = "5e55104e-0000-4000-8000-00000000c0de"
    answers = []
    for url in (f"sqlite://{tmp_path / 'a.db'}", pg_url):
        store = open_store(url)
        store.append(f"AgentSession-{session}", [NewEvent("compound-prompt", "UserMessageReceived", {
            "timestamp": "2026-11-29T10:00:00.000Z", "content": COMPOUND}, {"source": {"session_id": session}})])
        store.close()
        built(url, 1000)
        store = open_store(url)
        db = open_read_db(store)
        try:
            answers.append({q: sorted((h.event_id, h.kind, tuple(h.parts)) for h in search.search(db, None, q, limit=1000))
                            for q in SEARCHED})
        finally:
            db.close()
            store.close()
    on_sqlite, on_postgres = answers
    marked = {q: [[m for m, match in parts if match] for _, _, parts in on_sqlite[q]] for q in SEARCHED}
    assert marked["foo_bar"] == [["foo-bar", "FOO_BAR"]] and marked["parse_args"] == [["parse_args"]]
    assert marked["memory/search"] == [["memory/search"]] and marked["x.y"] == [["x.y"]]
    assert len(marked["hello.py"]) > 10 and marked["bar foo"] == [["foo", "bar", "FOO", "BAR"]]
    for query in SEARCHED:
        assert on_postgres[query] == on_sqlite[query], query


def test_the_python_snippet_cuts_and_marks_as_fts5s_own(tmp_path):
    """``fts5_snippet`` (both backends' snippets) given the exact words cuts and
    marks every document as FTS5's ``snippet()`` does, for every query above."""
    url = f"sqlite://{tmp_path / 'a.db'}"
    store = open_store(url)
    store.append("AgentSession-5e55104e-0000-4000-8000-00000000c0de", [NewEvent("compound-prompt", "UserMessageReceived", {
        "timestamp": "2026-11-29T10:00:00.000Z", "content": COMPOUND}, {"source": {"session_id": "5e55104e-0000-4000-8000-00000000c0de"}})])
    store.close()
    built(url, 1000)
    store = open_store(url)
    db = open_read_db(store)
    compared = 0
    try:
        for query in SEARCHED:
            exact = [[w.lower() for w in WORD.findall(term)] for term in search.terms(query)]
            for text, native in db.execute(
                    "SELECT text, snippet(search_text, 0, char(2), char(3), '…', ?) FROM search_text WHERE search_text MATCH ?",
                    (search.SNIPPET_TOKENS, " AND ".join(f'text : "{" ".join(words)}"' for words in exact))).fetchall():
                assert search.fts5_snippet(text, exact, word=str.lower) == native, (query, text[:80])
                compared += 1
    finally:
        db.close()
        store.close()
    assert compared > 50


def test_the_cli_works_on_a_postgresql_store(pg_url):  # noqa: F811
    def run(*args: str) -> str:
        done = subprocess.run([KAPACITOR, "--store", pg_url, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("import", *map(str, SAMPLE_DIRS))
    sessions = json.loads(run("sessions", "--json"))
    assert len(sessions) >= 5 and all(s["tokens"] for s in sessions)
    status = json.loads(run("projections", "status", "--json"))
    assert {row["name"] for row in status} == {p.name for p in PROJECTIONS}
    run("projections", "rebuild")
    assert all(row["lag"] == 0 for row in json.loads(run("projections", "status", "--json")))
    run("users", "add", "ana", "--admin")
    token = json.loads(run("tokens", "create", "--user", "ana", "--json"))
    assert token["user"] == "ana" and json.loads(run("tokens", "list", "--json"))[0]["user"] == "ana"
