"""Days and weeks on the real server: every route that takes a day (``since``,
``until``) answers an impossible calendar date with a 422 like any other bad
value, never a 500; weeks are ISO 8601 weeks on SQLite and on PostgreSQL; and an
eval is counted in the week (``/evals``) and on the day (``/overview``) its
session started, whenever it was run."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date, timedelta

import pytest
from fastapi.routing import APIRoute

from capture_helpers import Server, wait_for
from conftest import RECORDED
from kapacitor.capture.importer import import_paths
from kapacitor.server.app import create_app
from kapacitor.store import open_store
from kapacitor.store.base import NewEvent
from kapacitor.store.readdb import open_read_db
from test_access import flat
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

DAY_PARAMS = {"since", "until", "from", "to"}
IMPOSSIBLE = ("2026-13-45", "2026-02-30", "2026-99-01", "2026-00-10", "garbage", "2026-1-1")
FILL = {"name": "emeka@acme.dev", "key": "acme/infra"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    return request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite://{tmp_path / 'days.db'}"


def day_routes(tmp_path) -> dict[str, set[str]]:
    """The GET paths of the app with a day among their query parameters, and those parameters."""
    app = create_app(f"sqlite://{tmp_path / 'routes.db'}", run_projections=False)
    try:
        found = {}
        for route in flat(app.routes):
            if isinstance(route, APIRoute) and "GET" in route.methods:
                params = {p.alias for p in route.dependant.query_params}
                for dep in route.dependant.dependencies:
                    params |= {p.alias for p in dep.query_params}
                if params & DAY_PARAMS:
                    found[route.path] = params & DAY_PARAMS
        return found
    finally:
        app.state.close()


def status_of(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def test_an_impossible_day_is_a_422_on_every_route_that_takes_a_day(tmp_path):
    paths = day_routes(tmp_path)
    assert {"/", "/sessions.json", "/overview", "/overview.json", "/users/{name}", "/search", "/api/search"} <= set(paths)
    server = Server(tmp_path / "empty.db").start()
    try:
        for path, params in paths.items():
            url = server.url + path.replace("{name}", FILL["name"]).replace("{key:path}", FILL["key"]).replace("{key}", FILL["key"])
            good, _ = status_of(f"{url}?since=2026-02-28&until=2026-03-01&q=x")
            assert good in (200, 404), (path, good)  # a real day is fine (a user or repository may not exist)
            for param in params:
                for day in IMPOSSIBLE:
                    status, body = status_of(f"{url}?{param}={day}&q=x")
                    if status == good == 404 and not path.endswith(".json"):
                        continue  # a page finds its developer or repository (none here) before it reads its form
                    assert status == 422, (path, param, day, status)
                    assert param in body and "Traceback" not in body, (path, body[:300])
    finally:
        server.stop()


def test_weeks_are_iso_8601_weeks_on_both_backends(store_url):
    store = open_store(store_url)
    db = open_read_db(store)
    try:
        day, checked = date(2024, 12, 20), 0
        while day < date(2027, 1, 12):
            for stamp in (f"{day}T00:00:00.000Z", f"{day}T23:59:59.999Z"):
                (week,) = db.execute(f"SELECT {db.week(repr(stamp))}").fetchone()  # the SQL repeats its argument
                year, number, _ = day.isocalendar()
                assert week == f"{year}-W{number:02d}", (stamp, week)
                checked += 1
            day += timedelta(days=1)
        assert db.execute(f"SELECT {db.week(repr(''))}").fetchone()[0] is None
        assert checked > 1400
    finally:
        db.close()
        store.close()


def test_an_eval_counts_in_the_week_and_on_the_day_its_session_started(store_url, tmp_path):
    """Two evals of one session run weeks later (a batch ``eval --since``): both count
    in the session's own ISO week on /evals, and on its day on /overview."""
    sessions = json.loads((RECORDED / "sessions.json").read_text())
    sid = sessions["notes-denied"]["session_id"]
    store = open_store(store_url)
    import_paths(store, [RECORDED / "projects" / "-home-dev-notes"])
    for eval_id, at, overall in (("e1", "2027-01-01T10:00:00Z", 2), ("e2", "2027-01-09T10:00:00Z", 4)):
        store.append(f"SessionEval-{sid}", [NewEvent(eval_id, "SessionEvalCompleted", {
            "timestamp": at, "eval_id": eval_id, "scores": [],
            "summary": {"session_id": sid, "overall": overall, "judge": {"backend": "fake", "model": "judge-1"}}})])
    store.close()
    server = Server(store_url).start()
    try:
        wait_for(lambda: status_of(f"{server.url}/evals.json")[1].count('"week"') == 1, timeout=60)  # caught up
        status, body = status_of(f"{server.url}/sessions/{sid}.json")
        assert status == 200
        started = json.loads(body)["started"]
        year, number, _ = date.fromisoformat(started[:10]).isocalendar()
        weeks = json.loads(status_of(f"{server.url}/evals.json")[1])["weeks"]
        assert [(w["week"], w["evals"], w["mean_overall"]) for w in weeks] == [(f"{year}-W{number:02d}", 2, 3.0)]
        span = f"since={started[:10]}&until={started[:10]}&tz=UTC"
        by_day = json.loads(status_of(f"{server.url}/overview.json?{span}")[1])["evals_by_day"]
        assert by_day == [{"day": started[:10], "evals": 1, "mean_overall": 4.0}]  # the session's latest eval
    finally:
        server.stop()
