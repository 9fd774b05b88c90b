"""A broad search ranks only the newest ``search.RANKED_WITHIN`` matching texts
and says so; a query with no more matches than that is ranked whole, as before.
The newest matches are counted after the filters and the viewer, so neither a
filter nor the visibility rule drops a hit the viewer may see, and the note
never counts texts they may not see. On SQLite and PostgreSQL, through the
search function, ``/api/search``, the ``/search`` page and ``kapacitor search``.

``RANKED_WITHIN`` (2,000) is lowered to a few texts so that a small store has
broad queries."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from click.testing import CliRunner
from transcript_builder import Transcript

from kapacitor.access import accounts
from kapacitor.access.viewer import Viewer
from kapacitor.capture.importer import import_paths
from kapacitor.cli import cli
from kapacitor.memory import search
from kapacitor.server.app import create_app
from kapacitor.store import open_store
from test_prompt_search import store_url  # noqa: F401  (fixture: SQLite and PostgreSQL)
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

OLD = "5ea7c400-0000-4000-8000-00000000000a"
NEW = "5ea7c400-0000-4000-8000-00000000000b"
QUOKKA_OLD = "quokka quokka quokka"
"""The best text for ``quokka`` (bm25 and ts_rank), and the oldest."""
WOMBAT_OLD = "a long prompt about many other things that mentions a wombat once among all these words"
"""The worst text for ``wombat``, the only one its owner (bob) may see."""


@pytest.fixture
def app(store_url, tmp_path):  # type: ignore[no-untyped-def]
    """OLD (in repository ledger, bob's) imported before NEW (atlas, alice's): its
    texts are older in the log whatever their times say."""
    old = Transcript(OLD)
    old.user(QUOKKA_OLD, "2026-09-01T10:00:00.000Z")
    old.user(WOMBAT_OLD, "2026-09-01T10:00:01.000Z")
    new = Transcript(NEW, cwd="/home/dev/src/atlas")
    for i in range(4):
        new.user(f"then the quokka ran past a long list of other words, step {i}", f"2026-09-02T10:00:0{i}.000Z")
    for i in range(3):
        new.user(f"wombat wombat {i}", f"2026-09-02T11:00:0{i}.000Z")
    store = open_store(store_url)
    for t in (old, new):
        t.write(tmp_path / t.session_id / "-home-dev-src" / f"{t.session_id}.jsonl")
        import_paths(store, [tmp_path / t.session_id])
    store.close()
    app = create_app(store_url, run_projections=False)
    app.state.runner.catch_up()
    db = app.state.db
    for user, session_id in (("bob", OLD), ("alice", NEW)):
        accounts.add_user(db, user)
        accounts.claim_session(db, session_id, user)  # private: the default
    yield app
    app.state.close()


def found(app, query: str, viewer: Viewer | None = None, **kw) -> list[search.Hit]:  # type: ignore[no-untyped-def]
    return search.search(app.state.db, viewer, query, **kw)


def texts(hits: list[search.Hit]) -> list[str]:
    return [h.snippet for h in hits]


def fetch(app, url: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.get(url)

    return asyncio.run(go())


def test_a_query_with_no_more_matches_than_are_ranked_is_ranked_whole(app, monkeypatch):
    monkeypatch.setattr(search, "RANKED_WITHIN", 10**6)
    whole = found(app, "quokka")
    assert len(whole) == 5 and texts(whole)[0] == QUOKKA_OLD  # the best is the oldest
    monkeypatch.setattr(search, "RANKED_WITHIN", 5)  # exactly as many as match
    assert [(h.session_id, h.event_id, h.parts) for h in found(app, "quokka")] == \
        [(h.session_id, h.event_id, h.parts) for h in whole]
    assert {h.ranked_within for h in found(app, "quokka")} == {None}
    assert search.ranked_note(whole) == ""
    assert all(h["ranked_within"] is None for h in fetch(app, "/api/search?q=quokka").json())


def test_a_broad_query_ranks_the_newest_matches_only_and_says_so(app, monkeypatch):
    monkeypatch.setattr(search, "RANKED_WITHIN", 3)
    hits = found(app, "quokka")
    assert texts(hits) and QUOKKA_OLD not in texts(hits)  # older than the newest three
    newest = sorted(h.position for h in found(app, "quokka", limit=50))
    assert len(newest) == 3 and min(newest) > max(h.position for h in found(app, "quokka", session_id=OLD))
    assert {h.ranked_within for h in hits} == {3}
    note = search.ranked_note(hits)
    assert note.startswith("More than 3 texts match: these are the best of the newest 3.")

    api = fetch(app, "/api/search?q=quokka").json()
    assert [h["snippet"] for h in api] == texts(hits) and {h["ranked_within"] for h in api} == {3}
    page = fetch(app, "/search?q=quokka")
    assert page.status_code == 200 and "the best of the newest 3" in page.text
    assert "the best of the newest" not in fetch(app, "/search?q=wombat+once").text


def test_the_cli_says_when_it_ranked_the_newest_matches_only(app, store_url, monkeypatch):
    monkeypatch.setattr(search, "RANKED_WITHIN", 3)

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--store", store_url, "search", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "the best of the newest 3" in run("quokka")
    assert "the best of the newest" not in run("quokka", "--repo", found(app, "quokka", session_id=OLD)[0].repo)
    assert {h["ranked_within"] for h in json.loads(run("quokka", "--json"))} == {3}


def test_the_newest_matches_are_counted_after_the_filters(app, monkeypatch):
    monkeypatch.setattr(search, "RANKED_WITHIN", 3)
    repo = found(app, "quokka", session_id=OLD)[0].repo
    hits = found(app, "quokka", repo=repo)  # the newer matches elsewhere do not push it out
    assert texts(hits) == [QUOKKA_OLD] and hits[0].ranked_within is None
    assert texts(found(app, "quokka", since="2026-09-01")) == texts(found(app, "quokka"))


def test_the_newest_matches_are_those_the_viewer_may_see_and_none_of_theirs_is_dropped(app, monkeypatch):
    monkeypatch.setattr(search, "RANKED_WITHIN", 2)
    bob, alice = Viewer("bob"), Viewer("alice")
    # alice's three wombat texts rank above bob's one and are newer: bob still gets his,
    # and is not told that more than two texts match (he may see one)
    hits = found(app, "wombat", bob, limit=1)
    assert texts(hits) == [WOMBAT_OLD] and hits[0].ranked_within is None
    assert [h.ranked_within for h in found(app, "wombat", alice)] == [2, 2]
    assert {h.session_id for h in found(app, "wombat", alice, limit=50)} == {NEW}
    assert found(app, "wombat", Viewer("nobody")) == []
    assert found(app, "wombat", Viewer()) == []  # anonymous: nothing is public
    accounts.set_session_visibility(app.state.db, OLD, "public")
    assert texts(found(app, "wombat", Viewer())) == [WOMBAT_OLD]
    monkeypatch.setattr(search, "RANKED_WITHIN", 10**6)
    assert texts(found(app, "wombat", bob, limit=1)) == [WOMBAT_OLD]  # as ranking every match
