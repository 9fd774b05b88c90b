"""The timeline's sort orders at more than a page of sessions, on SQLite and
PostgreSQL: the sample transcripts imported in several fresh-id copies (so
tokens, cost, tools and files tie across copies), some evaluated with the same
score. For every sort key both ways, with and without filters, the pages walked
one by one (by their Next cursors, back by their Previous ones, and by old page
numbers) hold every matching session once, in the documented order (no value
last either way, ties newest first, then by id), and both backends give the same
order, page for page. Walked again by cursor while a session arrives after every
page read, no session present at the first read is skipped or shown twice."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_DIRS
from kapacitor.access.viewer import LOCAL
from kapacitor.capture.importer import import_paths
from kapacitor.capture.synthetic import copy_text
from kapacitor.events import NewEvent
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.server import queries
from kapacitor.server.queries import Filters
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

COPIES = 30
FIELD = {"repo": "repo", "duration": "duration_seconds", "cost": "cost_usd", "files": "files_changed",
         "tools": "tool_calls", "eval": "eval_score"}


def copies(target) -> None:  # noqa: ANN001
    """``COPIES`` fresh-id copies of every sample transcript under ``target``."""
    for n, source in enumerate(SAMPLE_DIRS):
        for path in sorted(source.rglob("*.jsonl")):
            for copy in range(COPIES):
                out = target / f"{n}-{copy}" / copy_text(str(path.relative_to(source)).encode(), copy).decode()
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(copy_text(path.read_bytes(), copy))


def evaluated(store, session_ids: list[str]) -> None:  # noqa: ANN001
    """Evals of every third session: overall 3 (a tie), 5, or none (a judge without a score)."""
    for n, sid in enumerate(session_ids[::3]):
        overall = (3, 5, 3, None)[n % 4]
        store.append(f"SessionEval-{sid}", [NewEvent(f"eval-{sid}", "SessionEvalCompleted", {
            "timestamp": "2026-11-27T10:00:00Z", "eval_id": f"eval-{sid}", "scores": [],
            "summary": {"session_id": sid, "overall": overall}})])


def orders(url: str, tmp_path) -> dict[str, list[str]]:  # noqa: ANN001
    """(filter, sort) -> the ids of every page in turn, checked on the way."""
    store = open_store(url)
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    try:
        if not (tmp_path / "copies").exists():
            copies(tmp_path / "copies")
        import_paths(store, [tmp_path / "copies"])
        runner.catch_up()
        ids = sorted(sid for (sid,) in runner.conn.execute("SELECT session_id FROM repository_sessions"))
        evaluated(store, ids)
        runner.catch_up()
        assert not runner.failures
        conn = runner.conn
        (busiest,) = conn.execute("SELECT key FROM repository_sessions GROUP BY key ORDER BY count(*) DESC, key LIMIT 1").fetchone()
        out = {}
        lists = {"all": Filters(), "repo": Filters(repo=busiest), "text": Filters(q="e")}
        sorts = ["", *(s for key in queries.SORTS for s in (key, f"-{key}"))]
        for name, chosen in lists.items():
            for sort in sorts:
                rows = walk(conn, Filters(**{**chosen.__dict__, "sort": sort}))
                assert_in_order(rows, sort)
                out[f"{name} {sort}"] = [r["session_id"] for r in rows]
                if name == "all" and sort in ("tokens", "eval"):
                    values = [r[FIELD.get(sort, sort)] for r in rows]
                    assert len(set(values)) < len(values) - 1 and (sort == "tokens" or None in values)  # ties; no value
        assert len(out["all "]) > 2 * queries.PAGE_SIZE and len(out["repo "]) > queries.PAGE_SIZE
        arrived = iter(range(COPIES, 10_000))
        samples = [(source, path) for source in SAMPLE_DIRS for path in sorted(source.rglob("*.jsonl"))]

        def arrive() -> None:  # one more fresh-id copy of a sample transcript: ties with its other copies but in id
            copy = next(arrived)
            source, path = samples[copy % len(samples)]
            out_path = tmp_path / f"arrived-{url.split(':')[0]}" / str(copy) / copy_text(str(path.relative_to(source)).encode(), copy).decode()
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_bytes(copy_text(path.read_bytes(), copy))
            import_paths(store, [out_path])
            runner.catch_up()

        for chosen in lists.values():
            for sort in sorts:
                walk_while_sessions_arrive(conn, Filters(**{**chosen.__dict__, "sort": sort}), arrive)
        return out
    finally:
        runner.close()
        store.close()


def walk(conn, filters: Filters) -> list[dict]:  # noqa: ANN001
    """Every page in turn by its Next cursor: together, each matching session
    exactly once, each page numbered from where it starts; the same pages back
    from the last by Previous, and by page number (old links)."""
    listing = queries.session_list(conn, filters, LOCAL)
    pages = [listing]
    while listing["next"]:
        listing = queries.session_list(conn, Filters(**{**filters.__dict__, "after": listing["next"]}), LOCAL)
        pages.append(listing)
    rows = [r for p in pages for r in p["sessions"]]
    ids = [r["session_id"] for r in rows]
    assert len(ids) == len(set(ids)) == pages[0]["total"], filters  # no session repeated or skipped
    assert [p["start"] for p in pages] == [n * queries.PAGE_SIZE for n in range(len(pages))] and len(pages) == pages[0]["pages"]
    assert pages[0]["prev"] is None and all(p["prev"] and len(p["sessions"]) == queries.PAGE_SIZE for p in pages[1:-1])
    back = [listing]
    while listing["prev"]:
        listing = queries.session_list(conn, Filters(**{**filters.__dict__, "before": listing["prev"]}), LOCAL)
        back.append(listing)
    assert [p["sessions"] for p in back[::-1]] == [p["sessions"] for p in pages]
    assert [p["start"] for p in back[::-1]] == [p["start"] for p in pages]
    by_number = [queries.session_list(conn, Filters(**{**filters.__dict__, "page": n}), LOCAL) for n in range(1, len(pages) + 1)]
    assert [p["sessions"] for p in by_number] == [p["sessions"] for p in pages]
    return rows


def walk_while_sessions_arrive(conn, filters: Filters, arrive) -> None:  # noqa: ANN001
    """Pages by Next cursor, ``arrive()`` adding a session after every read: each
    session matching at the first read shows exactly once, none twice."""
    present = {r["session_id"] for r in walk(conn, filters)}
    listing = queries.session_list(conn, filters, LOCAL)
    seen = [r["session_id"] for r in listing["sessions"]]
    while listing["next"]:
        arrive()
        listing = queries.session_list(conn, Filters(**{**filters.__dict__, "after": listing["next"]}), LOCAL)
        seen += [r["session_id"] for r in listing["sessions"]]
    assert len(seen) == len(set(seen)), filters  # none twice
    assert present <= set(seen), (filters, present - set(seen))  # none of those present skipped


def assert_in_order(rows: list[dict], sort: str) -> None:
    """``rows`` in ``sort``'s documented order, computed here independently."""
    key, descending = (sort.lstrip("-") or "started"), sort.startswith("-") or not sort
    field = FIELD.get(key, key)

    def value(row: dict):  # noqa: ANN202
        v = row[field]
        return "".join(c.lower() if c.isascii() else c for c in v) if key == "title" else v  # SQL lower(): ASCII only

    if key == "started":  # oldest first: the newest-first order read backwards (ties by id, last first)
        newest = sorted(sorted(rows, key=lambda r: r["session_id"]), key=lambda r: r["started"], reverse=True)
        expected = newest if descending else newest[::-1]
    else:
        ties = sorted(rows, key=lambda r: r["session_id"])  # then newest first (a stable sort keeps the id order)
        ties = sorted(ties, key=lambda r: r["started"], reverse=True)
        expected = sorted((r for r in ties if value(r) is not None), key=value, reverse=descending)
        expected += [r for r in ties if value(r) is None]
    assert [r["session_id"] for r in rows] == [r["session_id"] for r in expected], sort
    if key in ("cost", "duration", "eval"):
        values = [value(r) for r in rows]
        assert None not in values[: len([v for v in values if v is not None])]  # no value: last


def test_every_sort_key_walks_every_page_in_the_same_order_on_both_backends(tmp_path, pg_url):  # noqa: F811
    on_sqlite = orders(f"sqlite://{tmp_path / 'a.db'}", tmp_path)
    on_postgres = orders(pg_url, tmp_path)
    assert on_postgres == on_sqlite
