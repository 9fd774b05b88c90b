"""The JSON API's shapes agree (docs/json-api.md): every JSON GET route writes its
times one way, ISO 8601 to the millisecond with the offset of the ``tz`` asked for
(default UTC), and says 422 for an unknown zone; a session in a list carries the
keys a session's own answer and ``kapacitor sessions --json`` use
(``repository``, ``tokens_total``) beside the ones old scripts read (``repo``,
``tokens``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.responses import HTMLResponse
from test_browser import HELLO, WIDGETS, recorded_context

from conftest import SAMPLE_DIRS, SHARED
from kapacitor.capture.importer import import_paths
from kapacitor.collab import comments, marks
from kapacitor.demo import demo_eval
from kapacitor.eval.record import record_eval
from kapacitor.memory import facts
from kapacitor import times
from kapacitor.json_times import TIME_KEYS, VERBATIM, time_places, zoned, zoned_at
from kapacitor.projections import ownership, sessions
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store import codec
from kapacitor.store.readdb import open_read_db
from kapacitor.server.app import create_app
from test_access import flat

SKIPPED = {
    "/events": "the SSE stream", "/login/oidc": "a redirect", "/login/oidc/callback": "a redirect", "/redoc.js": "a script",
    "/api/prs/{owner}/{repo}/{number}": "asks GitHub (gh)",
    "/sessions/{session_id}/eval/jobs/{job_id}.json": "needs a running job",
    "/sessions/{session_id}/eval/jobs/{job_id}/events": "an SSE stream",
    "/api/sessions/{session_id}/tool-results/{call_id}": "no time in it",
}  # fmt: skip
QUERIES = {"/api/memory/recall": "repo=" + WIDGETS, "/api/search": "q=hello"}
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}([+-]\d\d:\d\d)$")


@pytest.fixture
def app(store, store_path):
    import_paths(store, SAMPLE_DIRS, resolve_context=recorded_context)
    comments.add(store, HELLO, "dev@example.com", "good one", comments.check_target("session"))
    marks.mark(store, HELLO, "dev@example.com", "a clean start")
    facts.retain(store, "run make check", WIDGETS, facts.Provenance(by="person", user="dev@example.com", session_id=HELLO))
    record_eval(store, demo_eval({"session": HELLO, "model": "m", "seconds": 1.0, "answers": {"broken_tests": {"score": 4, "finding": "ok"}},
                                  "retrospective": {"assessment": "fine", "strengths": [], "issues": [], "suggestions": []}}),
                {"repository": WIDGETS, "user": "dev@example.com"})
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    app.state.runner.catch_up()
    yield app
    app.state.close()


def get(app, url: str, status: int = 200):
    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.get(url)

    response = asyncio.run(fetch())
    assert response.status_code == status, (url, response.text[:300])
    return response.json()


def json_routes(app) -> dict[str, str]:
    """Every GET route that answers JSON (not an HTML page), its parameters filled in."""
    fill = {"{session_id}": HELLO, "{key:path}": WIDGETS, "{name}": "dev@example.com"}
    out = {}
    for route in flat(app.routes):
        if "GET" not in getattr(route, "methods", ()) or route.path in SKIPPED or getattr(route, "response_class", None) is HTMLResponse:
            continue
        if not route.path.endswith(".json") and not route.path.startswith("/api/") and route.path != "/healthz":
            continue
        path = route.path
        for name, value in fill.items():
            path = path.replace(name, value)
        assert "{" not in path, f"a JSON route this test cannot fill in: {route.path}"
        out[route.path] = path
    return out


def stamps(value, key: str = "") -> list[str]:
    """Every time in a JSON answer (the serializer's rule), the transcript's own data left out."""
    if isinstance(value, dict):
        return [s for k, v in value.items() if k not in VERBATIM for s in stamps(v, k)]
    if isinstance(value, list):
        return [s for v in value for s in stamps(v, key)]
    if isinstance(value, str) and value and (key in TIME_KEYS or key.endswith("_at")):
        return [value]
    return []


def test_every_json_route_writes_its_times_one_way_in_the_zone_asked(app):
    routes = json_routes(app)
    assert {"/sessions.json", "/repos.json", "/sessions/{session_id}/chat.json", "/api/memory/facts", "/marked.json"} <= set(routes)
    seen = {}
    for route, path in sorted(routes.items()):
        query = QUERIES.get(route, "")
        for tz, offset in (("", "+00:00"), ("Asia/Tokyo", "+09:00")):
            answer = get(app, f"{path}?{'&'.join(filter(None, [query, f'tz={tz}' if tz else '']))}")
            found = stamps(answer)
            wrong = [s for s in found if not STAMP.match(s) or not s.endswith(offset)]
            assert wrong == [], f"{route} (tz={tz or 'none'}): {wrong[:3]}"
            seen[route] = len(found)
        get(app, f"{path}?{query}&tz=Mars/Olympus", status=422)
    timed = {r for r, n in seen.items() if n}
    assert {"/sessions.json", "/repos.json", "/sessions/{session_id}.json", "/sessions/{session_id}/stats.json",
            "/sessions/{session_id}/chat.json", "/sessions/{session_id}/trace.json", "/sessions/{session_id}/eval.json",
            "/api/memory/facts", "/api/sessions/{session_id}/comments", "/api/sessions/{session_id}/marks", "/marked.json"} <= timed, seen


def test_a_listed_session_has_the_keys_of_the_session_s_own_answer(app, store_path):
    listed = next(s for s in get(app, "/sessions.json")["sessions"] if s["session_id"] == HELLO)
    own = get(app, f"/sessions/{HELLO}.json")
    assert listed["repo"] == own["repo"] == WIDGETS and listed["repository"] == own["repository"] == WIDGETS
    assert isinstance(own["tokens"], dict) and listed["tokens"] == listed["tokens_total"] == own["tokens_total"] > 0
    assert own["tokens_total"] == sum(sum(m[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
                                      for m in own["tokens"].values())
    day = f"since={listed['started'][:10]}&until={listed['started'][:10]}"
    for rows in (get(app, "/marked.json")["sessions"], get(app, f"/repos/{WIDGETS}.json?{day}")["sessions"]["sessions"],
                 get(app, f"/users/dev@example.com.json?{day}")["sessions"]["sessions"]):
        row = next(s for s in rows if s["session_id"] == HELLO)
        assert (row["repository"], row["tokens_total"]) == (WIDGETS, own["tokens_total"])
    cli = subprocess.run([sys.executable, "-m", "kapacitor", "--store", f"sqlite://{store_path}", "sessions", "--json"],
                         capture_output=True, text=True, check=True).stdout
    row = next(s for s in json.loads(cli) if s["session_id"] == HELLO)
    assert row["repository"] == own["repository"] and row["tokens"] == own["tokens"]


def test_sessions_json_has_the_keys_and_times_of_the_server_s_answer(app, store_path):
    """``kapacitor sessions --json`` writes a session as ``/sessions/{id}.json`` does:
    the same keys (but the server's ``status``, ``owner``, ``visibility``), the same
    values, its times in the machine's zone (``TZ``) or ``--tz``, in the one form."""
    def listed(*args: str, tz: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "kapacitor", "--store", f"sqlite://{store_path}", "sessions", "--json", *args],
                             capture_output=True, text=True, check=True, env={**os.environ, "TZ": tz}).stdout
        return next(s for s in json.loads(out) if s["session_id"] == HELLO)

    for args, tz, offset in (((), "America/Los_Angeles", "-08:00"), (("--tz", "Asia/Tokyo"), "Europe/Oslo", "+09:00"),
                             (("--tz", "UTC"), "Asia/Tokyo", "+00:00")):
        row = listed(*args, tz=tz)
        own = get(app, f"/sessions/{HELLO}.json?tz={args[1] if args else tz}")
        assert set(own) - set(row) == {"status", "owner", "visibility"} and set(row) <= set(own)
        assert row == {k: own[k] for k in row}
        assert row["tokens_total"] > 0 and row["repo"] == row["repository"] == WIDGETS and row["repo_kind"] == "github"
        found = stamps(row)
        assert found and all(STAMP.match(s) and s.endswith(offset) for s in found), found


def test_times_rewritten_in_the_text_are_those_the_serializer_writes(store):
    """``zoned_at`` at the ``time_places`` the ``sessions`` read model keeps (the
    CLI's: no decoding, no scan) gives what ``zoned`` gives, on every stored
    session row of the recorded histories, on a row with a ``/model`` switch (a
    nested ``timestamp``, across a DST change) and on text made to mislead it;
    the places kept are those of the row's text."""
    import_paths(store, [*SAMPLE_DIRS, *sorted((SHARED / "claude-code" / "recorded-2.1.332").glob("*/projects"))])
    db = open_read_db(store)
    runner = ProjectionRunner(store, db, [ownership.PROJECTION, sessions.PROJECTION])
    runner.catch_up()
    stored = list(sessions.newest_json(db))
    assert len(stored) >= 9 and all(places == time_places(text) and places for places, text in stored)
    rows = [text for _, text in stored]
    switched = codec.loads(rows[0]) | {"model_switches": [{"timestamp": "2026-03-29T01:30:00.250Z", "to": "opus", "source": "/model"}]}
    tricky = [codec.dumps(v).decode() for v in (
        switched,
        {"started": "soon", "ended": "", "created_at": "2026-01-02T03:04:05.678Z", "title": 'x","started":"2026-01-01T00:00:00.000Z'},
        {'odd"started': "2026-01-01T00:00:00.000Z", "list": ["2026-01-01T00:00:00.000Z"], "n": {"last_used": "2026-03-29T01:30:00.5Z"}},
        {"started": "2026-02-30T10:00:00.000Z", "ended": "1890-06-01T10:59:30.500Z", "é_at": "2026-01-01T10:00:00.12345Z",
         "finished": "2026-10-25T01:59:59.999Z", "last_activity": "2026-10-25T02:00:00.000Z"},
    )]
    texts = [*rows, *tricky]
    for tz in (UTC, ZoneInfo("UTC"), ZoneInfo("Europe/Oslo"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe"), None):
        for text in texts:
            (alone,) = zoned_at([(time_places(text), text)], tz)
            assert codec.loads(alone) == zoned(codec.loads(text), tz)
        # many rows a text, joined as an array's items (how the CLI writes them): each comes out as alone
        for size in (1, 3, 500):
            written = list(zoned_at([(time_places(text), text) for text in texts], tz, size=size))
            assert len(written) == -(-len(texts) // size)
            assert ",\n".join(written) == ",\n".join(next(zoned_at([(time_places(t), t)], tz)) for t in texts)
    runner.close()


@pytest.mark.parametrize("tz", [None, UTC, ZoneInfo("UTC"), ZoneInfo("Europe/Oslo"), ZoneInfo("America/Los_Angeles"),
                                ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Pacific/Chatham"),
                                ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/St_Johns")])
def test_a_time_is_written_in_a_zone_as_the_one_conversion_writes_it_across_dst_changes(tz):
    """The serializer's shortcuts (UTC; a zone's offset known for the hour) give
    exactly ``times.iso``, every 7 minutes 30.25 seconds across the year's DST
    changes (Lord Howe's is half an hour), and other stamps as ``times.iso`` has them."""
    moment, end, step = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), timedelta(minutes=7, seconds=30.25)
    while moment < end:
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        assert zoned({"started": stamp}, tz) == {"started": times.iso(stamp, tz)}, stamp
        moment += step
    odd = ["2026-01-01T10:00:00.12345Z", "2026-01-01T10:00:00Z", "2026-01-01T10:00:00+01:00",
           "1890-06-01T10:59:30.500Z"]  # a city's mean time then: an offset in seconds
    if tz is not UTC and getattr(tz, "key", "") != "UTC":  # in UTC a canonical stamp is rewritten as text: the normalizer made it canonical
        odd += ["2026-02-30T10:00:00.000Z", "2026-13-01T10:00:00.000Z", "2026-01-01T10:00:60.000Z", "2026-01-01T10:60:00.000Z"]
    for stamp in odd:
        assert zoned({"ended": stamp}, tz) == {"ended": times.iso(stamp, tz)}


def test_no_zone_changes_its_offset_and_back_within_a_day():
    """What ``json_times._day`` takes for granted: a UTC day with the same offset at
    its start and its end has it all day. A pair of changes less than a day apart
    that undo each other would break that; the IANA database (every zone's
    transitions, read by zoneinfo's pure-Python reader) has none."""
    from zoneinfo import _zoneinfo, available_timezones

    pairs, zones = [], 0
    for key in sorted(available_timezones()):
        zone = _zoneinfo.ZoneInfo.no_cache(key)
        changes, kinds = zone._trans_utc, zone._ttinfos  # kinds[i]: in force from changes[i]
        zones += bool(changes)
        pairs += [(key, changes[i]) for i in range(1, len(changes) - 1)
                  if changes[i + 1] - changes[i] < 86_400 and kinds[i - 1].utcoff == kinds[i + 1].utcoff]
    assert zones > 300 and pairs == []
