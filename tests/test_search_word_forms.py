"""Search matches word forms ("subtracting" finds "subtracts"), on the real
recordings (``recorded`` and ``recorded-2.1.332``), on SQLite and PostgreSQL:
the right sessions, identifiers, paths, phrases and error strings still found,
hits with the words as typed first, and both backends answering the same hits
with the same snippets. A store built by the previous version of the read model
rebuilds it on first use."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from capture_helpers import KAPACITOR
from conftest import SAMPLE_DIRS, SHARED
from kapacitor.capture.importer import import_paths
from kapacitor.memory import search
from kapacitor.projections import search_index
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner, checkpoints
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from test_store_postgres import admin_url  # noqa: F401  (fixture)

RECORDINGS = SAMPLE_DIRS + sorted(p / "projects" for p in (SHARED / "claude-code" / "recorded-2.1.332").iterdir()
                                  if (p / "projects").is_dir())
FIX_ADD = {"56d0e3a4-49a6-4882-8732-25313eede8cc", "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"}
"""The two sessions that fix ``add()`` (interactive and ``-p``): "test_add fails", "it subtracts"."""
NOTES = {"374abc41-4ebd-4e92-bafc-5100ff3314ff", "97617f62-6fd5-442d-bb39-3ca75bd8c3e3",
         "fdcca338-f109-4fd8-9c0d-7e81118dba9e"}
"""The three "write my todo list to todo.md and archive the old notes" sessions."""

WORD_FORMS = {  # query: the sessions it finds, none of which holds the query's words as typed
    "subtracting": FIX_ADD,  # "it subtracts", "subtracted instead of adding"
    "tests failing": FIX_ADD,  # "test_add fails", "Run the unit tests"
    '"running the tests"': FIX_ADD,  # "Let me run the tests first."
    "archiving notes": NOTES,  # "archive the old notes"
}
AS_BEFORE = [  # identifiers, paths, file names, phrases and error strings still found
    "test_add", "add()", "todo.md", "does_not_exist.txt", "/home/dev/src/widgets/hello.py", "src/widgets",
    "hello.py", '"No such file or directory"', '"File has not been read yet"', '"hello from fake claude"',
    "app.py", "a - b", "Exit code 1", "SUBAGENT_REVIEW", "new_string",
]
BOTH = list(WORD_FORMS) + AS_BEFORE + ["subtracts", "subtracted", "reviewers", "permissions needed", "created",
                                      "-> ->", "run", '"run the test"', "rejected", "café"]


class Answers(dict):  # type: ignore[type-arg]
    """Every query's hits on a backend, built when first asked for: (session,
    event, kind, parts) in rank order."""

    def __init__(self, tmp_path_factory, request):  # type: ignore[no-untyped-def]
        super().__init__()
        self.tmp_path_factory, self.request = tmp_path_factory, request

    def __missing__(self, backend: str) -> dict[str, list]:  # type: ignore[type-arg]
        url = (f"sqlite://{self.tmp_path_factory.mktemp('s') / 'events.db'}" if backend == "sqlite"
               else self.request.getfixturevalue("pg_url"))
        store = open_store(url)
        try:
            import_paths(store, RECORDINGS)
            runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
            try:
                runner.catch_up()
                assert not runner.failures
                self[backend] = {q: hits(runner.conn, q) for q in BOTH}
                return self[backend]
            finally:
                runner.close()
        finally:
            store.close()


@pytest.fixture(scope="module")
def answers(tmp_path_factory, request) -> Answers:  # type: ignore[no-untyped-def]
    return Answers(tmp_path_factory, request)


def new_database(admin_url: str) -> Iterator[str]:
    """A URL naming a fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"kapacitor_words_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg_url(admin_url):  # type: ignore[no-untyped-def]  # noqa: F811  (one database for the module's tests)
    yield from new_database(admin_url)


@pytest.fixture
def fresh_pg_url(admin_url):  # type: ignore[no-untyped-def]  # noqa: F811
    yield from new_database(admin_url)


def hits(conn, query: str) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    try:
        return [(h.session_id, h.event_id, h.kind, tuple(h.parts)) for h in search.search(conn, None, query, limit=500)]
    except search.SearchError as exc:
        return [("error", str(exc))]


def sessions(found: list[tuple]) -> set[str]:  # type: ignore[type-arg]
    return {hit[0] for hit in found}


def marked(found: list[tuple]) -> set[str]:  # type: ignore[type-arg]
    return {text.lower() for *_, parts in found for text, match in parts if match}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_word_forms_find_the_sessions_that_use_another_form(answers, backend):
    for query, expected in WORD_FORMS.items():
        found = answers[backend][query]
        assert sessions(found) == expected, query
        exact = [w.lower() for w in search.terms(query) for w in w.split()]
        as_typed = [hit for hit in found if set(exact) <= {w for m in marked([hit]) for w in m.split()}]
        assert not as_typed, query  # the words as typed were never found together: word forms found them
    assert {"subtracts", "subtracted"} <= marked(answers[backend]["subtracting"])
    assert {"test", "tests", "fails", "fail"} <= marked(answers[backend]["tests failing"])
    assert {"run the tests"} <= marked(answers[backend]['"running the tests"'])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_identifiers_paths_phrases_and_error_strings_are_still_found(answers, backend):
    for query in AS_BEFORE:
        found = answers[backend][query]
        assert found and all(any(match for _, match in parts) for *_, parts in found), query  # each hit marks a match
    assert sessions(answers[backend]["test_add"]) == FIX_ADD
    assert sessions(answers[backend]["todo.md"]) == NOTES
    assert "does_not_exist.txt" in marked(answers[backend]["does_not_exist.txt"])
    assert "home/dev/src/widgets/hello.py" in marked(answers[backend]["/home/dev/src/widgets/hello.py"])
    assert "no such file or directory" in marked(answers[backend]['"No such file or directory"'])
    assert answers[backend]["-> ->"] == [("error", "type a word or a number to search for")]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_hits_with_the_words_as_typed_come_first(answers, backend):
    for query, exact in (("subtracts", "subtracts"), ("subtracted", "subtracted"), ("created", "created")):
        found = answers[backend][query]
        shown = [{t.lower() for t, match in parts if match} for *_, parts in found]
        as_typed = [exact in words for words in shown]
        assert any(as_typed) and not all(as_typed), query  # both kinds are found
        assert as_typed == sorted(as_typed, reverse=True), query  # the words as typed first


def test_both_backends_find_the_same_hits_with_the_same_snippets(answers):
    on_sqlite, on_postgres = answers["sqlite"], answers["postgresql"]
    for query in BOTH:
        assert sorted(on_postgres[query]) == sorted(on_sqlite[query]), query
    assert sum(map(len, on_sqlite.values())) > 200


VERSION_2 = {  # the table as version 2 (before word forms) made it
    "sqlite": "CREATE VIRTUAL TABLE search_text USING fts5(text, session_id UNINDEXED, kind UNINDEXED,"
              " event_id UNINDEXED, anchor UNINDEXED, position UNINDEXED, timestamp UNINDEXED, tool UNINDEXED)",
    "postgresql": "CREATE TABLE search_text (text TEXT NOT NULL, session_id TEXT NOT NULL, kind TEXT NOT NULL,"
                  ' event_id TEXT NOT NULL, anchor TEXT NOT NULL, "position" BIGINT NOT NULL, "timestamp" TEXT NOT NULL,'
                  " tool TEXT NOT NULL, doc tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED)",
}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_of_the_previous_version_rebuilds_the_index_on_first_use(tmp_path, request, backend):
    """Version 2 (no word forms) as the last release left it: its table, filled,
    its checkpoint at the head. The first ``kapacitor search`` rebuilds it."""
    url = f"sqlite://{tmp_path / 'events.db'}" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")
    store = open_store(url)
    import_paths(store, RECORDINGS)
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    runner.catch_up()
    with runner.conn.transaction():
        runner.conn.execute("DROP TABLE search_text")
        runner.conn.execute(VERSION_2[backend])
        runner.conn.execute("INSERT INTO search_text (text, session_id, kind, event_id, anchor, position, timestamp, tool)"
                            " VALUES ('it subtracts', 's', 'text', 'e', 'e', 1, '', '')")
        runner.conn.execute("UPDATE projection_checkpoints SET version = 2 WHERE name = 'search_index'")
    runner.close()
    store.close()
    done = subprocess.run([KAPACITOR, "--store", url, "search", "subtracting", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "'search_index' is rebuilt from the start of the log (version 3, was 2)" in done.stderr
    assert {hit["session_id"] for hit in json.loads(done.stdout)} == FIX_ADD
    store = open_store(url)
    db = open_read_db(store)
    try:
        assert checkpoints(db)["search_index"].version == search_index.PROJECTION.version == 3
    finally:
        db.close()
        store.close()

