"""The overview (``/overview.json``), the developer and repository pages and the
list's totals row: every total equals what the session list (``/sessions.json``,
every page) sums for the same filters, on a store imported from the recorded
transcripts and the bundled demo, on SQLite and on PostgreSQL. And active time:
idle gaps left out, the same whatever order the events are folded in."""

from __future__ import annotations

import asyncio
import json
import random
import re
from urllib.parse import urlencode

import httpx
import pytest
from transcript_builder import Transcript

from conftest import RECORDED, SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.demo import extracted
from kapacitor.projections.repositories import TOKEN_KINDS
from kapacitor.projections.session_summary import IDLE_SECONDS, SessionSummaries
from kapacitor.server import charts, format
from kapacitor.server.app import create_app
from kapacitor.store import open_store
from kapacitor.store.base import NewEvent
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

RECORDED_IDS = {name: s["session_id"] for name, s in json.loads((RECORDED / "sessions.json").read_text()).items()}
EVALS = [("api-fix", "e1", "2026-11-26T10:00:00Z", 2), ("api-fix", "e2", "2026-11-27T10:00:00Z", 5),  # re-evaluated: 5 counts
         ("widgets-hello", "e3", "2026-11-26T11:00:00Z", 3), ("notes-denied", "e4", "2026-11-26T12:00:00Z", 4)]
COUNTED = (*TOKEN_KINDS, "tokens", "tool_calls", "tool_errors", "files_changed")
"""Figures the list's rows carry as whole numbers: their sums must be exact."""


@pytest.fixture(scope="module")
def demo_dir():
    """The demo set, dated as if made now, kept for the module (both stores import it)."""
    with extracted() as found:
        yield found


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, tmp_path, demo_dir):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite://{tmp_path / 'team.db'}"
    store = open_store(url)
    import_paths(store, [*SAMPLE_DIRS, RECORDED.parent / "recorded-2.1.332"])
    projects, resolve = demo_dir
    import_paths(store, [projects], resolve_context=resolve)
    for name, eval_id, at, overall in EVALS:
        sid = RECORDED_IDS[name]
        store.append(f"SessionEval-{sid}", [NewEvent(eval_id, "SessionEvalCompleted", {
            "timestamp": at, "eval_id": eval_id, "scores": [],
            "summary": {"session_id": sid, "overall": overall, "judge": {"backend": "fake", "model": "judge-1"}}})])
    store.close()
    app = create_app(url, run_projections=False)
    app.state.runner.catch_up()
    assert not app.state.runner.failures
    yield app
    app.state.close()


def get(app, url: str, status: int = 200):
    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.get(url, headers={"accept": "text/html"} if ".json" not in url else {})

    response = asyncio.run(fetch())
    assert response.status_code == status, response.text
    return response.json() if response.headers["content-type"].startswith("application/json") else response.text


def listed(app, query: dict[str, str]) -> list[dict]:
    """Every row of the session list for ``query``, page after page."""
    rows, page = [], 1
    while True:
        listing = get(app, "/sessions.json?" + urlencode(query | {"page": page}))
        rows += listing["sessions"]
        if page >= listing["pages"]:
            assert len(rows) == listing["total"]
            return rows
        page += 1


def sums(rows: list[dict]) -> dict[str, float]:
    out = {name: sum(r[name] for r in rows) for name in COUNTED}
    return out | {"sessions": len(rows), "cost_usd": sum(r["cost_usd"] or 0 for r in rows),
                  "active_seconds": sum(r["active_seconds"] for r in rows)}


def assert_equal(figures: dict, expected: dict, what: str) -> None:
    for name in (*COUNTED, "sessions"):
        assert figures[name] == expected[name], (what, name, figures[name], expected[name])
    assert figures["cost_usd"] == pytest.approx(expected["cost_usd"], abs=1e-6), what
    assert figures["active_seconds"] == pytest.approx(expected["active_seconds"], abs=1e-2), what


def test_every_total_equals_what_the_list_sums_for_the_same_filters(app):
    everything = get(app, "/overview.json")
    t = everything["totals"]
    assert t["sessions"] >= 14 and t["tool_errors"] > 0 and t["active_seconds"] > 0 and t["cost_usd"] > 0  # a real picture
    some_user = everything["by_user"][0]["user"]
    some_repo = next(r["repo"] for r in everything["by_repo"] if r["repo_kind"] == "github")
    some_dir = next(r["repo"] for r in everything["by_repo"] if r["repo_kind"] == "directory")
    busiest = max(everything["by_day"], key=lambda d: d["sessions"])["day"]
    cases = [
        {},
        {"repo": some_repo},
        {"repo": some_dir},
        {"user": some_user},
        {"user": some_user, "repo": some_repo},
        {"since": busiest, "until": busiest},
        {"since": busiest, "until": busiest, "tz": "America/Los_Angeles"},
        {"since": busiest, "until": busiest, "tz": "Asia/Kolkata"},  # a zone half an hour off the hour
        {"q": "test"},
        {"user": "nobody@example.com"},
    ]
    for case in cases:
        overview = get(app, "/overview.json?" + urlencode(case))
        query = {k: v for k, v in case.items()} | {"since": overview["since"], "until": overview["until"]}
        rows = listed(app, query)
        expected = sums(rows)
        assert_equal(overview["totals"], expected, case)
        for group in ("by_day", "by_user", "by_repo"):  # each breakdown adds up to the totals
            assert_equal({name: sum(g[name] for g in overview[group]) for name in expected}, expected, (case, group))
        assert sum(d["sessions"] for d in overview["by_day"]) == len(rows)
        for day in overview["by_day"]:  # and each day is the list's day
            one_day = [r for r in rows if r["started"][:10] == day["day"]]
            assert day["sessions"] == len(one_day), (case, day["day"])
            assert day["tokens"] == sum(r["tokens"] for r in one_day)
        for name in TOKEN_KINDS:
            assert sum(m[name] for m in overview["by_model"]) == expected[name], (case, name)
        assert sum(m["cost_usd"] or 0 for m in overview["by_model"]) == pytest.approx(expected["cost_usd"], abs=1e-6)
        scored = {}  # the list's latest eval scores, by day
        for r in rows:
            if r["eval_score"] is not None:
                scored.setdefault(r["started"][:10], []).append(r["eval_score"])
        assert overview["evals_by_day"] == [
            {"day": day, "evals": len(s), "mean_overall": round(sum(s) / len(s), 2)} for day, s in sorted(scored.items())]
    assert get(app, "/overview.json?user=nobody@example.com")["totals"]["sessions"] == 0


def test_the_pages_show_the_same_totals(app):
    overview = get(app, "/overview.json")
    user = overview["by_user"][0]["user"]
    repo = next(r["repo"] for r in overview["by_repo"] if r["repo_kind"] == "github")
    range_ = {"since": overview["since"], "until": overview["until"]}
    mine = get(app, f"/users/{user}.json")
    assert mine["totals"] == get(app, "/overview.json?" + urlencode({"user": user}))["totals"]
    assert mine["sessions"]["total"] == mine["totals"]["sessions"] == overview["by_user"][0]["sessions"]
    theirs = get(app, f"/repos/{repo}.json")
    assert theirs["totals"] == next({k: v for k, v in r.items() if k not in ("repo", "repo_kind")} for r in overview["by_repo"] if r["repo"] == repo)
    assert {s["repo"] for s in theirs["sessions"]["sessions"]} == {repo}
    for url, totals in ((f"/?{urlencode({'user': user} | range_)}", mine["totals"]), ("/overview", overview["totals"]),
                        (f"/users/{user}", mine["totals"]), (f"/repos/{repo}", theirs["totals"])):
        page = get(app, url)
        shown = re.search(r'data-figure="sessions" data-value="(\d+)">([\d,]+)<', page)
        assert shown and int(shown.group(1)) == int(shown.group(2).replace(",", "")) == totals["sessions"], url
        if url != "/overview":
            assert page.count('class="session-row"') == min(50, totals["sessions"]), url  # the sessions, listed
    assert len(overview["evals_by_day"]) >= 1 and sum(d["evals"] for d in overview["evals_by_day"]) == 3
    body = get(app, f"/repos/{repo}?fragment=body")  # what a live refresh fetches
    assert "<html" not in body and f'data-figure="sessions" data-value="{theirs["totals"]["sessions"]}"' in body
    assert body.count('class="session-row"') == theirs["totals"]["sessions"]
    html = get(app, "/overview")
    assert 'id="overview-body" data-live-any' in html
    assert html.count("<svg class=\"bars\"") == 7 and 'data-chart="Mean eval score"' in html and 'role="img"' in html and "<title>" in html
    assert '<table class="breakdown" data-breakdown="model">' in html


def test_unknown_pages_are_404_and_the_shown_names_lead_to_the_real_pages(app):
    """A user's name before ``@`` (short to type) and a directory as the sidebar
    shows it, ``~user/dir``, lead to the real pages, names nobody has are 404, and a
    directory's page never links to GitHub."""
    overview = get(app, "/overview.json")
    for url in ("/users/nobody", "/users/nobody.json", "/repos/acme/no-such", "/repos/acme/no-such.json",
                "/repos//home/nobody/x", "/repos/~nobody/x"):
        assert get(app, url, status=404), url
    user = next(u["user"] for u in overview["by_user"] if "@" in u["user"])
    short = user.split("@")[0]
    assert sum(u["user"].split("@")[0] == short for u in overview["by_user"]) == 1
    assert get(app, f"/users/{short}.json")["totals"] == get(app, f"/users/{user}.json")["totals"]
    assert f"{user}</h1>" in get(app, f"/users/{short}")
    directory = next(r["repo"] for r in overview["by_repo"] if r["repo_kind"] != "github")
    label = format.shortdir(directory)
    assert label != directory
    page = get(app, f"/repos/{label}")
    assert "github.com" not in page and f"<code>{directory}</code>" in page
    assert get(app, f"/repos/{label}.json")["totals"] == get(app, f"/repos/{directory}.json")["totals"]
    timeline = get(app, "/")
    assert f'href="/users/{user.replace("@", "%40")}"' in timeline and f'href="/repos/{directory}"' in timeline
    session = next(s for s in get(app, f"/users/{user}.json")["sessions"]["sessions"])
    head = get(app, f"/sessions/{session['session_id']}")
    assert f'href="/repos/{session["repo"]}"' in head and f'class="user" href="/users/{user.replace("@", "%40")}"' in head


def test_a_person_is_named_one_way_on_every_page(app):
    """Trial 7: the timeline's user column said ``emeka`` where its own filter, the
    session header, the overview, the stats and the CLI said ``emeka@acme.dev``.
    Every page names a user by one rule (``templates/_person.html``): the
    identifier whole, as the JSON has it."""
    overview = get(app, "/overview.json")
    known = {u["user"] for u in overview["by_user"] if u["user"]}
    user = next(u for u in sorted(known) if "@" in u)
    session = get(app, f"/users/{user}.json")["sessions"]["sessions"][0]
    assert session["user"] == user  # the JSON: the identifier whole
    sid = session["session_id"]
    shown = re.compile(r'<(?:a|span) class="user(?: muted)?"[^>]*>([^<]*)</')
    for url in ("/", f"/?user={user}", "/overview", f"/users/{user}", f"/repos/{session['repo']}", f"/sessions/{sid}",
                f"/sessions/{sid}/stats", "/marked", "/search?q=the"):
        names = shown.findall(get(app, url))
        assert set(names) <= known | {"(unknown)"}, (url, set(names) - known)
        if url not in ("/", "/marked", "/search?q=the"):  # (the first page of all, marks, hits: maybe not theirs)
            assert user in names, (url, names)
    assert user in shown.findall(get(app, f"/?user={user}"))


def test_no_session_figure_is_negative_zero(app):
    """A cost difference that rounds away reads 0.0 in every session's stats, never -0.0."""
    stats = json.dumps([get(app, f"/sessions/{s['session_id']}/stats.json") for s in listed(app, {})])
    assert '"unrecorded_cost_usd": 0.0' in stats  # the demo has such sessions
    assert not re.findall(r'"\w+": -0\.0\b', stats)


def test_the_trace_spans_the_session_as_its_header_says(app):
    """One duration rule (``times.seconds_between`` over the session's first and last
    events): the trace's root lasts what the header and the list say."""
    for row in listed(app, {})[:12]:
        sid = row["session_id"]
        root = get(app, f"/sessions/{sid}/trace.json")
        if row["duration_seconds"] is not None:
            assert root["duration_ms"] == pytest.approx(row["duration_seconds"] * 1000), sid
            assert format.duration(row["duration_seconds"]) in get(app, f"/sessions/{sid}/trace")


def test_an_api_error_reads_as_its_message_with_the_raw_json_folded(app):
    overloaded = next(s["session_id"] for s in listed(app, {}) if s["session_id"].startswith("833ab0b6"))
    chat = get(app, f"/sessions/{overloaded}")
    error = re.search(r'<div class="chat-item api-error".*?</div>', chat, re.DOTALL)
    assert error, "the demo's overloaded request"
    shown, folded = error.group(0).split('<details class="raw-error">', 1)
    assert "529 Overloaded (overloaded_error)" in shown and "{" not in shown
    assert "overloaded_error" in folded and "</pre></details>" in folded


def test_a_range_is_checked(app):
    assert "after it ends" in get(app, "/overview.json?since=2026-02-01&until=2026-01-01", status=422)["detail"]
    assert "at most" in get(app, "/overview.json?since=2020-01-01&until=2026-01-01", status=422)["detail"]
    week = get(app, "/overview.json?since=2026-01-01&until=2026-01-07")
    assert [d["day"] for d in week["by_day"]] == [f"2026-01-0{n}" for n in range(1, 8)] and week["totals"]["sessions"] == 0


def test_active_time_leaves_idle_gaps_out_in_any_order(tmp_path):
    t = Transcript("5e55104a-0000-4000-8000-000000000001")
    t.user("first", "2026-11-01T09:00:00.000Z")
    t.text("one", "2026-11-01T09:01:00.000Z", "msg_1", (1, 1, 1, 1))
    t.user("after lunch", "2026-11-01T13:00:00.000Z")  # hours later: idle, not work
    t.text("two", "2026-11-01T13:00:30.000Z", "msg_2", (1, 1, 1, 1))
    t.user("a pause just under the limit", f"2026-11-01T13:{(30 + IDLE_SECONDS) // 60:02d}:{(30 + IDLE_SECONDS) % 60:02d}.000Z")
    t.write(tmp_path / "p" / "-home-dev-src-ledger" / f"{t.session_id}.jsonl")
    store = open_store(f"sqlite://{tmp_path / 's.db'}")
    import_paths(store, [tmp_path / "p"])
    events = list(store.read_all())
    store.close()
    folds = []
    for seed in (None, 1, 2, 3):
        if seed is not None:
            random.Random(seed).shuffle(events)
        summaries = SessionSummaries()
        for event in events:
            summaries.apply(event)
        folds.append(summaries.sessions[t.session_id])
    assert {f.active_seconds() for f in folds} == {60 + 30 + IDLE_SECONDS}
    assert all(f.active_spans == folds[0].active_spans for f in folds) and len(folds[0].active_spans) == 2


def test_a_day_chart_stacks_its_series_and_scales_to_the_busiest_day_or_a_fixed_top():
    days = [{"day": "2026-11-01", "calls": 2, "failed": 1}, {"day": "2026-11-02", "calls": 0, "failed": 0},
            {"day": "2026-11-03", "calls": 4, "failed": 2}]
    chart = charts.day_chart("Tool calls", days, [charts.Series("calls", "calls", "c-calls"), charts.Series("failed", "failed", "c-failed")],
                             format.number)
    assert chart.scale == "max 6 a day" and chart.summary.endswith("the most on Nov 3: 6")
    assert [[(s.css, s.y, s.height) for s in c.segments] for c in chart.columns] == [
        [("c-calls", 66.667, 33.333), ("c-failed", 50.0, 16.667)], [], [("c-calls", 33.333, 66.667), ("c-failed", 0.0, 33.333)]]
    assert chart.columns[1].title == "Nov 2: 0 calls, 0 failed" and (chart.first, chart.last) == ("Nov 1", "Nov 3")
    scores = charts.day_chart("Eval", days, [charts.Series("calls", "score", "c-eval")], format.number, top=5)
    assert scores.scale == "0 to 5" and [s.height for c in scores.columns for s in c.segments] == [40.0, 80.0]
    counted = charts.day_chart("Sessions", [{"day": "2026-11-01", "n": 1}, {"day": "2026-11-02", "n": 2}],
                               [charts.Series("n", "sessions", "c-sessions", "session")], format.number)
    assert [c.title for c in counted.columns] == ["Nov 1: 1 session", "Nov 2: 2 sessions"]
