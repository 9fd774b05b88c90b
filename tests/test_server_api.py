"""The JSON API in-process (httpx over the ASGI app) on a real store filled by
importing the sample transcripts; read models built by the app's own runner."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest

from conftest import RECORDED, SAMPLE_DIRS
from kapacitor.access.viewer import LOCAL
from kapacitor.capture.importer import import_paths
from kapacitor.capture.synthetic import copy_text
from kapacitor.projections.session_summary import TOKEN_FIELDS
from kapacitor.server import queries
from kapacitor.server.app import create_app

SESSIONS = json.loads((RECORDED / "sessions.json").read_text())
WIDGETS = "/home/dev/src/widgets"


@pytest.fixture
def app(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    app.state.runner.catch_up()
    assert not app.state.runner.failures
    yield app
    app.state.close()


def get(app, url: str, status: int = 200, headers: dict | None = None):
    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.get(url, headers=headers)

    response = asyncio.run(fetch())
    assert response.status_code == status, response.text
    return response.json() if response.headers["content-type"].startswith("application/json") else response.text


def test_sessions_json_lists_every_sample_session_newest_first(app):
    listing = get(app, "/sessions.json")
    ids = [s["session_id"] for s in listing["sessions"]]
    assert sorted(ids) == sorted({s["session_id"] for s in SESSIONS.values()} | {"56d0e3a4-49a6-4882-8732-25313eede8cc"})
    started = [s["started"] for s in listing["sessions"]]
    assert started == sorted(started, reverse=True) and listing["total"] == len(ids)


def test_filters_scope_the_list(app):
    by_repo = get(app, "/sessions.json?repo=" + WIDGETS)["sessions"]
    assert {s["session_id"] for s in by_repo} == {s["session_id"] for s in SESSIONS.values() if s["cwd"] == WIDGETS}
    first = max(by_repo, key=lambda s: len(s["title"]))
    assert [s["session_id"] for s in get(app, "/sessions.json?q=" + first["title"][-14:].upper())["sessions"]] == [first["session_id"]]
    assert len(get(app, "/sessions.json?q=hello.py")["sessions"]) == 2
    assert get(app, "/sessions.json?q=" + first["session_id"])["total"] == 1
    assert get(app, "/sessions.json?user=nobody@example.com")["total"] == 0
    day = first["started"][:10]
    assert first["session_id"] in {s["session_id"] for s in get(app, f"/sessions.json?since={day}&until={day}")["sessions"]}
    assert get(app, "/sessions.json?until=2000-01-01")["total"] == 0
    get(app, "/sessions.json?since=yesterday", status=422)


def test_pages_split_the_list(app, monkeypatch):
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    pages = [get(app, f"/sessions.json?page={n}") for n in (1, 2, 3)]
    assert [p["pages"] for p in pages] == [3, 3, 3]
    ids = [s["session_id"] for p in pages for s in p["sessions"]]
    assert len(ids) == len(set(ids)) == 5


def test_repos_json_groups_sessions_by_directory_without_a_github_remote(app):
    repos = {r["key"]: r for r in get(app, "/repos.json")}
    assert set(repos) == {s["cwd"] for s in SESSIONS.values()} | {"/home/sam/work/repo"}
    assert repos[WIDGETS]["sessions"] == 2 and repos[WIDGETS]["kind"] == "directory"
    listing = get(app, "/sessions.json")["sessions"]
    for key, repo in repos.items():
        mine = [s for s in listing if s["repo"] == key]
        assert repo["tokens"] == sum(s["tokens"] for s in mine)
        assert repo["tool_calls"] == sum(s["tool_calls"] for s in mine)


@pytest.mark.parametrize("truth_file", [RECORDED / "truth.json", RECORDED / "interactive" / "truth.json"])
def test_stats_tokens_equal_what_the_api_reported(app, truth_file):
    for sid, models in json.loads(truth_file.read_text()).items():
        stats = get(app, f"/sessions/{sid}/stats.json")
        assert {m["model"]: {k: m[k] for k in (*TOKEN_FIELDS, "requests")} for m in stats["tokens_by_model"]} == models
        assert stats["tokens_total"]["output_tokens"] == sum(m["output_tokens"] for m in models.values())
        assert stats["price_source"] and stats["session"]["session_id"] == sid


def test_session_json_and_its_pages(app):
    sid = SESSIONS["widgets-hello"]["session_id"]
    row = get(app, f"/sessions/{sid}.json")
    assert row["cwd"] == WIDGETS and row["status"] in ("idle", "ended") and row["repo"] == WIDGETS
    for url in (f"/sessions/{sid}", f"/sessions/{sid}/trace", f"/sessions/{sid}/stats"):
        page = get(app, url)
        assert sid in page and 'class="active"' in page
    stats = get(app, f"/sessions/{sid}/stats?fragment=1")
    assert "<html" not in stats and "Tool calls" in stats


def test_unknown_session_is_404(app):
    assert get(app, "/sessions/no-such-session.json", status=404) == {"detail": "no such session 'no-such-session'"}
    page = get(app, "/sessions/no-such-session/stats", status=404, headers={"accept": "text/html"})
    assert "404: no such session &#39;no-such-session&#39;" in page and 'id="repo-list"' in page


def test_a_bad_filter_is_a_one_line_error_beside_the_form(app):
    """The page keeps its form and says what is wrong where the list was (422); the JSON twin is FastAPI's 422."""
    page = get(app, "/?since=yesterday&q=hello", status=422, headers={"accept": "text/html"})
    assert "Nothing to show: since: &#39;yesterday&#39; is not a day: YYYY-MM-DD, please." in page
    assert 'id="filters"' in page and 'name="q" type="search" value="hello"' in page  # the form, with the good values
    page = get(app, "/?until=2026-02-30", status=422, headers={"accept": "text/html"})  # on no calendar: not a 500
    assert "Nothing to show: until: &#39;2026-02-30&#39; is not a calendar day (day is out of range for month)." in page
    assert get(app, "/sessions.json?page=0", status=422)["detail"][0]["loc"] == ["query", "page"]
    page = get(app, "/?sort=bogus&page=0", status=422, headers={"accept": "text/html"})
    assert "<li>sort: unknown sort &#39;bogus&#39;; one of started, title, repo," in page
    assert "<li>page: Input should be greater than or equal to 1</li>" in page and 'id="filters"' in page
    assert "pattern" not in page and "^(" not in page
    backwards = "since=2026-11-30&until=2026-11-01"
    assert get(app, f"/sessions.json?{backwards}", status=422) == {"detail": "the range starts (2026-11-30) after it ends (2026-11-01)"}
    page = get(app, f"/?{backwards}", status=422, headers={"accept": "text/html"})
    assert "Nothing to show: the range starts (2026-11-30) after it ends (2026-11-01)." in page
    assert 'href="?since=2026-11-01&amp;until=2026-11-30"' in page  # swap from and to
    assert "unknown sort '-';" in get(app, "/sessions.json?sort=-", status=422)["detail"][0]["msg"]
    assert get(app, "/sessions.json?sort=-cost")["sessions"]


def test_search_since_is_a_day_or_a_duration_as_on_the_command_line(app):
    everything = get(app, "/api/search?q=hello")
    assert everything and get(app, "/api/search?q=hello&since=100000d") == everything
    todos = "922a15d3-3e4d-471a-9a7e-754f15615295"  # started 2026-11-25T20:58:26Z: the 26th in Tokyo
    assert todos in {h["session_id"] for h in get(app, "/api/search?q=hello&since=2026-11-26&tz=Asia/Tokyo")}
    assert todos not in {h["session_id"] for h in get(app, "/api/search?q=hello&since=2026-11-26")}
    assert get(app, "/api/search?q=hello&since=1h") == []
    [problem] = get(app, "/api/search?q=hello&since=yesterday", status=422)["detail"]
    assert problem["loc"] == ["query", "since"]
    assert "'yesterday' is neither a day (YYYY-MM-DD) nor a duration back from now (12h, 7d, 2w)" in problem["msg"]
    page = get(app, "/search?q=hello&since=garbage", status=422, headers={"accept": "text/html"})
    assert "is neither a day (YYYY-MM-DD) nor a duration" in page and 'name="q" type="search" value="hello"' in page


def test_healthz_reports_the_lag(app):
    health = get(app, "/healthz")
    assert health["ok"] and health["lag"] == 0 and health["head"] > 0


def test_openapi_documents_every_json_twin(app):
    paths = get(app, "/openapi.json")["paths"]
    for path in ("/sessions.json", "/repos.json", "/sessions/{session_id}.json", "/sessions/{session_id}/trace.json", "/sessions/{session_id}/stats.json", "/events"):
        assert path in paths


def test_chat_and_trace_json_and_the_chat_slices(app):
    sid = SESSIONS["widgets-hello"]["session_id"]
    items = get(app, f"/sessions/{sid}/chat.json")
    assert items and any("create hello.py and run it" in json.dumps(item) for item in items)
    tree = get(app, f"/sessions/{sid}/trace.json")
    assert tree["kind"] == "session" and tree["children"]
    first = get(app, f"/sessions/{sid}/chat?start=0&limit=2")
    assert f'hx-get="/sessions/{sid}/chat?start=2"' in first and "<html" not in first
    rest = get(app, f"/sessions/{sid}/chat?start=2&limit=100000")
    assert "hx-get" not in rest
    get(app, f"/sessions/{sid}/chat?start=-1", status=422)


def test_live_streams_are_capped(app):
    app.state.hub.max_subscribers = 0
    answer = get(app, "/events", status=503)
    assert "live streams are open already" in json.dumps(answer)
    hub = app.state.hub
    hub.max_subscribers = 2
    first, second = hub.subscribe(LOCAL), hub.subscribe(LOCAL)
    assert first is not None and second is not None and hub.subscribe(LOCAL) is None
    hub.unsubscribe(first)
    assert hub.subscribe(LOCAL) is not None


HELLO = "708f24f2-dc3e-4588-a43d-59d69a508ed0"  # has a subagent


def twin_of(session_id: str, target) -> str:
    """A copy of a sample session (fresh ids) whose id starts with the same 8
    characters as ``session_id``; returns its id."""
    source = next(p for d in SAMPLE_DIRS for p in d.rglob(f"{session_id}.jsonl"))
    fresh = copy_text(session_id.encode(), 7).decode()
    twin = session_id[:8] + fresh[8:]
    out = target / source.parent.name / f"{twin}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(copy_text(source.read_bytes(), 7).replace(fresh.encode(), twin.encode()))
    return twin


@pytest.mark.parametrize("key", list(queries.SORTS))
def test_every_column_sorts_both_ways_and_the_json_twin_follows(app, key):
    field = {"repo": "repo", "duration": "duration_seconds", "cost": "cost_usd", "files": "files_changed",
             "tools": "tool_calls", "eval": "eval_score"}.get(key, key)
    for sort, descending in ((key, False), (f"-{key}", True)):
        rows = get(app, f"/sessions.json?sort={sort}")["sessions"]
        values = [s[field] for s in rows]
        known = [v for v in values if v is not None]
        assert values[: len(known)] == known  # no value (no eval, no price): last either way
        keys = [v.lower() for v in known] if key == "title" else known
        assert keys == sorted(keys, reverse=descending), (sort, values)
        assert len(set(keys)) > 1 or key in ("eval", "user")  # the samples differ in all but these
        page = get(app, f"/?sort={sort}", headers={"accept": "text/html"})
        assert [s["session_id"] for s in rows] == re.findall(r'data-session="([^"]+)"', page)
        direction = "descending" if descending else "ascending"
        assert re.search(rf'data-sort="{key}" aria-sort="{direction}"', page)
    assert "aria-sort" not in get(app, "/?sort=tokens", headers={"accept": "text/html"}).split('data-sort="cost"')[1].split("</th>")[0]
    get(app, "/sessions.json?sort=price", status=422)


def test_a_short_id_finds_its_session_and_an_ambiguous_one_lists_them(app, tmp_path):
    assert [s["session_id"] for s in get(app, f"/sessions.json?q={HELLO[:6]}")["sessions"]] == [HELLO]
    assert get(app, f"/sessions.json?q={HELLO[:6].upper()}")["total"] == 1
    assert get(app, f"/sessions.json?q={HELLO[:5]}")["total"] == 0  # too short to be an id: a title search
    twin = twin_of(HELLO, tmp_path)
    import_paths(app.state.store, [tmp_path])
    app.state.runner.catch_up()
    listing = get(app, f"/sessions.json?q={HELLO[:8]}")
    assert {s["session_id"] for s in listing["sessions"]} == {HELLO, twin} and listing["id_matches"] == 2
    page = get(app, f"/?q={HELLO[:8]}", headers={"accept": "text/html"})
    assert f"2 sessions whose id starts with <code>{HELLO[:8]}</code>" in page
    longer = next(n for n in range(9, 36) if HELLO[:n] != twin[:n])
    assert [s["session_id"] for s in get(app, f"/sessions.json?q={HELLO[:longer]}")["sessions"]] == [HELLO]
    assert get(app, f"/sessions.json?q={HELLO}")["total"] == 1


def test_stats_split_tokens_and_cost_by_model_and_by_agent(app):
    stats = get(app, f"/sessions/{HELLO}/stats.json")
    total = stats["tokens_total"]
    read, fresh, written = total["cache_read_input_tokens"], total["input_tokens"], total["cache_creation_input_tokens"]
    assert read and total["cache_hit_ratio"] == read / (fresh + read + written)
    assert sum(m["cost_usd"] for m in stats["tokens_by_model"]) == pytest.approx(stats["cost_usd"])
    main, *subagents = stats["agents"]
    assert main["agent_id"] is None and [a["agent_id"] for a in subagents] == [a["agent_id"] for a in stats["session"]["subagents"]]
    assert subagents and all(a["requests"] for a in stats["agents"])
    for name in (*TOKEN_FIELDS, "requests"):
        assert sum(a[name] for a in stats["agents"]) == total[name]
    assert sum(a["cost_usd"] for a in stats["agents"]) == pytest.approx(stats["cost_usd"])
    page = get(app, f"/sessions/{HELLO}/stats", headers={"accept": "text/html"})
    assert 'data-section="agents"' in page and f"{100 * total['cache_hit_ratio']:.1f}%" in page
    assert page.count('title="cache hit: cache read / (in + cache read + cache write)') >= 2


def test_files_changed_count_each_kind_of_change(app):
    """"1 create, 4 edits", not "create, edit ×5" (which reads as five edits)."""
    stats = get(app, f"/sessions/{HELLO}/stats.json")
    page = get(app, f"/sessions/{HELLO}/stats", headers={"accept": "text/html"})
    assert stats["files_changed"]
    for f in stats["files_changed"]:
        assert sum(f["by_kind"].values()) == f["changes"] and sorted(f["by_kind"]) == f["kinds"]
        words = ", ".join(f"{n} {kind if n == 1 else kind + 's'}" for kind, n in f["by_kind"].items())
        assert f"<td>{words}</td>" in page
    assert "×" not in page.split('class="plain files"')[1]


def test_without_auth_a_session_has_no_visibility_control(app):
    """No --auth: no owners, no admins, nobody else: who may see it is moot."""
    for path in (f"/sessions/{HELLO}", f"/sessions/{HELLO}/head"):
        page = get(app, path, headers={"accept": "text/html"})
        assert 'class="visibility"' not in page and "owner and admins" not in page


def test_the_trace_draws_each_node_on_the_sessions_time_axis(app):
    page = get(app, f"/sessions/{HELLO}/trace", headers={"accept": "text/html"})
    bars = [(float(left), float(width)) for left, width in re.findall(r'style="left: ([\d.]+)%; width: ([\d.]+)%"', page)]
    tree = get(app, f"/sessions/{HELLO}/trace.json")
    assert bars[0] == (0.0, 100.0) and len(bars) > 10  # the session itself spans the axis
    assert all(left + width <= 100.01 for left, width in bars)
    assert len({left for left, _ in bars}) > 5  # turns and calls start at different times
    assert f"{tree['duration_ms'] / 1000:.1f} s" in page.split('class="taxis"')[1][:200]


def test_every_path_the_readme_names_for_the_dashboard_answers_a_get(app):
    """Every route the README's ``kapacitor serve`` section names (pages, JSON
    twins, the comments and marks API) exists and answers a GET with real ids;
    writes are named with their method (``PUT /api/...``) and are not in it."""
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### `kapacitor serve`: the dashboard"):]
    section = section[:section.index("\n### ", 10)]
    named = sorted(set(re.findall(r"`(/[^`\s]*)`", section)))
    assert "/sessions.json" in named and "/api/sessions/{id}/comments" in named
    session = SESSIONS["api-fix"]["session_id"]
    listed = get(app, "/sessions.json")["sessions"]
    user = listed[0]["user"]
    repo = next(r["key"] for r in get(app, "/repos.json") if r["sessions"])
    values = {"{id}": session, "{session_id}": session, "{name}": user, "{key}": repo, "{owner/repo}": repo}
    for path in named:
        if path == "/events":  # the SSE stream never ends: its documented GET is enough
            assert "get" in get(app, "/openapi.json")["paths"]["/events"]
            continue
        url = re.sub(r"\{[^}]+\}", lambda m: values[m.group(0)], path)
        get(app, url)  # 200, or the assertion names the path's status
