"""The eval on the server: the read model, the job queue and its SSE progress, the
tab, reviews and agreement, the list's score column (in-process over a real
store); then the tab and the Run eval button in real Chromium against the real
server, with the scripted judge on loopback."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from browser import start_server
from conftest import RECORDED, SAMPLE_DIRS
from fake_judge import FakeJudge
from kapacitor.capture.importer import import_paths
from kapacitor.eval.config import EvalConfig
from kapacitor.eval.jobs import RESTARTED, EvalWorker
from kapacitor.server.app import create_app
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

SESSIONS = json.loads((RECORDED / "sessions.json").read_text())
API_FIX = SESSIONS["api-fix"]["session_id"]
NOTES = SESSIONS["notes-denied"]["session_id"]


@pytest.fixture
def judge(monkeypatch):
    server = FakeJudge({"broken_tests": [{"answer": {"score": 2, "recommendation": "Leave the tests green."}}]})
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    yield server
    server.close()


@pytest.fixture
def app(store, store_path, judge):
    import_paths(store, SAMPLE_DIRS)
    app = create_app(f"sqlite://{store_path}", run_projections=False, eval_config=EvalConfig(judge="anthropic"))
    app.state.runner.catch_up()
    yield app
    app.state.close()


def call(app, method: str, url: str, status: int = 200, **kwargs):
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.request(method, url, **kwargs)

    response = asyncio.run(go())
    assert response.status_code == status, response.text
    return response


def run_job(app, session_id: str, **form) -> dict:
    job = call(app, "POST", f"/sessions/{session_id}/eval/run", data=form).json()
    app.state.eval_worker.run_job(job["job_id"])
    app.state.runner.catch_up()
    return job


def test_run_eval_without_a_key_says_where_the_key_goes_not_the_exception_class(app, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    state = call(app, "GET", run_job(app, API_FIX)["json"]).json()
    assert state["state"] == "failed"
    assert state["error"] == ("anthropic judge: no API key on the server: set ANTHROPIC_API_KEY in the environment of"
                              " `kapacitor serve` and restart it (or run `kapacitor eval SESSION` where the key is set)")


def test_run_eval_job_streams_progress_and_fills_the_tab(app):
    before = call(app, "GET", f"/sessions/{API_FIX}.json").json()
    job = run_job(app, API_FIX)
    state = call(app, "GET", job["json"]).json()
    assert state["state"] == "done" and state["eval_id"]
    events = call(app, "GET", job["events"]).text
    assert events.count("event: progress") == len(state["progress"]) and "event: done" in events
    assert '"question_id": "broken_tests", "score": 2, "verdict": "warn"' in events
    [stored] = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json()
    assert stored["eval_id"] == state["eval_id"] and len(stored["scores"]) == 13
    after = call(app, "GET", f"/sessions/{API_FIX}.json").json()
    assert (after["ended"], after["events"], after["status"]) == (before["ended"], before["events"], before["status"])
    page = call(app, "GET", f"/sessions/{API_FIX}/eval", headers={"accept": "text/html"}).text
    assert 'data-question="broken_tests"' in page and "Leave the tests green." in page
    assert f"/sessions/{API_FIX}?upto=" in page and f"/sessions/{API_FIX}/trace#node=" in page
    assert "Run eval" in page and "A focused session." in page
    assert page.count('class="review-form"') == page.count('name="csrf"') == 13  # a signed-in browser's review carries it
    listing = call(app, "GET", "/sessions.json?sort=eval").json()
    assert listing["sessions"][0]["session_id"] == API_FIX and listing["sessions"][0]["eval_score"] == stored["summary"]["overall"]
    assert all(s["eval_score"] is None for s in listing["sessions"][1:])


def test_evidence_links_open_the_cited_chat_item(app):
    run_job(app, API_FIX)
    [stored] = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json()
    evidence = stored["scores"][0]["evidence"][0]
    chat = call(app, "GET", f"/sessions/{API_FIX}?upto={evidence['chat_index']}", headers={"accept": "text/html"}).text
    assert f'id="{evidence["anchor"]}"' in chat
    trace = call(app, "GET", f"/sessions/{API_FIX}/trace.json").json()
    assert evidence["trace_node"] in json.dumps(trace)


def test_reviews_compare_and_agreement(app):
    run_job(app, API_FIX)
    run_job(app, API_FIX, questions="quality")
    newest, oldest = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json()
    url = f"/sessions/{API_FIX}/eval/{oldest['eval_id']}/reviews"
    call(app, "POST", url, 303, data={"question_id": "broken_tests", "agree": "false", "comment": "tests pass at the end", "name": "ana"})
    call(app, "POST", url, 303, data={"question_id": "sensitive_files", "agree": "true", "name": "ana"})
    call(app, "POST", url, 303, data={"question_id": "broken_tests", "agree": "true", "name": "bo"})
    call(app, "POST", url, 404, data={"question_id": "nope", "agree": "true"})
    reviewed = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json()[1]
    broken = next(s for s in reviewed["scores"] if s["question_id"] == "broken_tests")
    assert [(r["reviewer"], r["agree"]) for r in broken["reviews"]] == [("ana", False), ("bo", True)]
    overview = {q["question_id"]: q for q in call(app, "GET", "/evals.json").json()["questions"]}
    assert overview["broken_tests"]["agreement"] == 0.5 and overview["sensitive_files"]["agreement"] == 1.0
    assert overview["broken_tests"]["answers"] == 2 and overview["over_engineering"]["reviews"] == 0
    assert "50%" in call(app, "GET", "/evals", headers={"accept": "text/html"}).text
    compare = call(app, "GET", f"/sessions/{API_FIX}/eval/compare?a={oldest['eval_id']}&b={newest['eval_id']}",
                   headers={"accept": "text/html"}).text
    assert 'data-question="sensitive_files"' in compare and 'data-question="tests_written"' in compare


def test_empty_evals_and_memory_pages_say_how_to_fill_them(app):
    """No eval and no fact yet: each page says where they come from (the
    commands named are the real ones), instead of empty tables."""
    page = lambda url: call(app, "GET", url, headers={"accept": "text/html"}).text  # noqa: E731
    evals = page("/evals")
    for said in ("No evals yet", "Run eval", "kapacitor eval SESSION", "kapacitor eval --repo OWNER/REPO --since 7d",
                 "KAPACITOR_AUTO_EVAL=1", "server's environment"):
        assert said in evals
    assert "Per question" not in evals
    memory = page("/memory")
    for said in ("No facts for the team yet", 'kapacitor memory add "TEXT" --repo org', "<code>remember</code>",
                 "kapacitor mcp", "retained facts"):
        assert said in memory
    assert "--repo acme/api" in page("/memory/acme/api")
    assert "No facts match “zzz”." in page("/memory?q=zzz")
    run_job(app, API_FIX)
    assert "Per question" in page("/evals") and "No evals yet" not in page("/evals")


def test_the_read_model_replays_from_the_log(app):
    from kapacitor.projections.evals import PROJECTION
    from kapacitor.projections.runner import reset

    run_job(app, API_FIX)
    [stored] = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json()
    url = f"/sessions/{API_FIX}/eval/{stored['eval_id']}/reviews"
    call(app, "POST", url, 303, data={"question_id": "broken_tests", "agree": "false", "name": "ana"})
    before = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json(), call(app, "GET", "/evals.json").json()
    reset(app.state.runner.conn, PROJECTION)
    assert call(app, "GET", f"/sessions/{API_FIX}/eval.json").json() == []
    app.state.runner.catch_up()
    after = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json(), call(app, "GET", "/evals.json").json()
    assert after == before and before[1]["question_weeks"]


def test_every_eval_read_path_is_gated_by_the_session(app):
    for method, url in [("GET", "/sessions/nope/eval.json"), ("GET", "/sessions/nope/eval"),
                        ("POST", "/sessions/nope/eval/run"), ("GET", "/sessions/nope/eval/jobs/x.json"),
                        ("GET", "/sessions/nope/eval/jobs/x/events")]:
        call(app, method, url, 404)
    job = run_job(app, API_FIX)
    call(app, "GET", f"/sessions/{NOTES}/eval/jobs/{job['job_id']}.json", 404)  # a job of another session


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh store on each backend (PostgreSQL: a database of its own)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'events.db'}"
    return request.getfixturevalue("pg_url")


def test_a_job_survives_a_restart_or_is_marked_failed(store_url, judge):
    store = open_store(store_url)
    import_paths(store, SAMPLE_DIRS)
    url = store_url
    worker = EvalWorker(store, url, open_read_db(store), EvalConfig())
    queued, running = worker.submit(API_FIX), worker.submit(NOTES)
    worker._update(running, state="running", worker="a-server-that-died")  # as if the server died while it ran
    worker.close()
    again = EvalWorker(store, url, open_read_db(store), EvalConfig(), poll=0.05)
    assert again.job(running)["state"] == "failed" and again.job(running)["error"] == RESTARTED
    again.start()  # the queued job runs when the worker starts again
    try:
        deadline = time.monotonic() + 60
        while again.job(queued)["state"] != "done" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert again.job(queued)["state"] == "done" and again.job(queued)["eval_id"]
    finally:
        again.close()
        store.close()


def test_workers_of_two_servers_on_postgresql_share_the_queue(pg_url, judge):  # noqa: F811
    store = open_store(pg_url)
    import_paths(store, SAMPLE_DIRS)
    first = EvalWorker(store, pg_url, open_read_db(store), EvalConfig())
    job_id = first.submit(API_FIX)
    second = EvalWorker(store, pg_url, open_read_db(store), EvalConfig())
    try:
        assert first._claim() == job_id and second._claim() is None  # claimed once
        third = EvalWorker(store, pg_url, open_read_db(store), EvalConfig())  # a server starting meanwhile
        third.close()
        assert first.job(job_id)["state"] == "running"  # its worker lives: left alone
        first.run_job(job_id)
        assert second.job(job_id)["state"] == "done" and second.job(job_id)["eval_id"]
        orphan = second.submit(NOTES)
        assert second._claim() == orphan
    finally:
        first.close()
        second.close()  # dies with a running job
    try:
        again = EvalWorker(store, pg_url, open_read_db(store), EvalConfig())
        assert again.job(orphan)["state"] == "failed" and again.job(orphan)["error"] == RESTARTED
        again.close()
    finally:
        store.close()


def test_run_eval_on_a_postgresql_store(pg_url, judge):  # noqa: F811
    store = open_store(pg_url)
    import_paths(store, SAMPLE_DIRS)
    store.close()
    app = create_app(pg_url, run_projections=False, eval_config=EvalConfig(judge="anthropic"))
    try:
        app.state.runner.catch_up()
        job = run_job(app, API_FIX)
        state = call(app, "GET", job["json"]).json()
        assert state["state"] == "done" and state["eval_id"] and state["progress"]
        events = call(app, "GET", job["events"]).text
        assert events.count("event: progress") == len(state["progress"]) and "event: done" in events
        assert '"question_id": "broken_tests", "score": 2, "verdict": "warn"' in events
        [stored] = call(app, "GET", f"/sessions/{API_FIX}/eval.json").json()
        assert stored["eval_id"] == state["eval_id"] and len(stored["scores"]) == 13
    finally:
        app.state.close()


def test_auto_eval_queues_each_session_that_ends(store_url, judge):
    from kapacitor.events import NewEvent, agent_session_stream

    store = open_store(store_url)
    import_paths(store, SAMPLE_DIRS)
    worker = EvalWorker(store, store_url, open_read_db(store), EvalConfig(auto=True))
    worker.queue_ended_sessions()  # the first look starts at the head: history is not evaluated
    assert worker.conn.execute("SELECT count(*) FROM eval_jobs").fetchone()[0] == 0
    ended = NewEvent("e2e-ended-1", "SessionEnded", {"timestamp": "2026-11-29T10:00:00Z", "reason": "exit"})
    store.append(agent_session_stream(API_FIX), [ended])
    worker.queue_ended_sessions()
    worker.queue_ended_sessions()
    rows = worker.conn.execute("SELECT session_id, reason, state FROM eval_jobs").fetchall()
    assert rows == [(API_FIX, "auto", "queued")]
    worker.close()
    store.close()


def test_each_person_may_have_so_many_evals_queued_or_running(store_url, judge):
    """Run eval counts the jobs each person has queued or running (``max_jobs``,
    here 2): one more is 429 with a one-line reason, another person is not held
    up by it, and a job that ends frees a place. Auto-eval's jobs count for nobody."""
    from kapacitor.access import accounts
    from test_access import make_users

    store = open_store(store_url)
    import_paths(store, SAMPLE_DIRS)
    store.close()
    tokens = make_users(store_url)
    app = create_app(store_url, run_projections=False, auth=True, eval_config=EvalConfig(judge="anthropic", max_jobs=2))
    try:
        app.state.runner.catch_up()
        accounts.set_session_visibility(app.state.db, API_FIX, "org")

        def run(user: str, status: int = 200) -> httpx.Response:
            return call(app, "POST", f"/sessions/{API_FIX}/eval/run", status, headers={"Authorization": f"Bearer {tokens[user]}"})

        app.state.eval_worker.submit(API_FIX, "auto")
        first = run("alice").json()
        run("alice")
        refused = run("alice", 429).json()
        assert refused == {"detail": "alice has 2 evals queued or running already (at most 2 at once):"
                                     " run this one when one of them has finished"}
        run("bob")  # his own count
        app.state.eval_worker.run_job(first["job_id"])
        assert call(app, "GET", first["json"], headers={"Authorization": f"Bearer {tokens['alice']}"}).json()["state"] == "done"
        run("alice")  # the place it freed
        run("alice", 429)
        assert app.state.eval_worker.active("alice") == 2 and app.state.eval_worker.active("bob") == 1
    finally:
        app.state.close()


def test_two_clicks_at_once_cannot_both_take_a_persons_last_place(store_url, judge):
    """Counting and queueing are one transaction: of eight submits at once by one
    person with room for two, exactly two are queued, on either backend."""
    from concurrent.futures import ThreadPoolExecutor

    from kapacitor.eval.jobs import TooManyJobs

    store = open_store(store_url)
    import_paths(store, SAMPLE_DIRS)
    worker = EvalWorker(store, store_url, open_read_db(store), EvalConfig(max_jobs=2))

    def submit(_: int) -> bool:
        try:
            worker.submit(API_FIX, person="carol")
            return True
        except TooManyJobs:
            return False

    try:
        with ThreadPoolExecutor(8) as pool:
            queued = list(pool.map(submit, range(8)))
        assert queued.count(True) == 2 and worker.active("carol") == 2
    finally:
        worker.close()
        store.close()


def test_the_cap_on_evals_is_configured_like_the_rest_of_the_eval(monkeypatch, tmp_path):
    from kapacitor.eval import config

    monkeypatch.delenv("KAPACITOR_EVAL_MAX_JOBS", raising=False)
    assert config.load_config().jobs_per_person == config.MAX_JOBS == 5
    monkeypatch.setattr(config, "config_file", lambda: tmp_path / "config.toml")
    (tmp_path / "config.toml").write_text("[eval]\nmax_jobs = 3\n")
    assert config.load_config().jobs_per_person == 3
    monkeypatch.setenv("KAPACITOR_EVAL_MAX_JOBS", "7")
    assert config.load_config().jobs_per_person == 7


_KEEP_PROGRESS = """
document.addEventListener("DOMContentLoaded", () => {
  const log = document.querySelector(".eval-job-log");
  if (log) new MutationObserver(() => sessionStorage.setItem("eval-progress", log.textContent))
    .observe(log, {childList: true});
});
"""


def test_the_tab_and_the_run_button_in_chromium(tmp_path, page, judge):
    url = f"sqlite://{tmp_path / 'events.db'}"
    store = open_store(url)
    import_paths(store, SAMPLE_DIRS)
    store.close()
    server = start_server(url, tmp_path / "home", env={"KAPACITOR_JUDGE": "anthropic", "ANTHROPIC_BASE_URL": judge.url,
                                                      "ANTHROPIC_API_KEY": "sk-ant-fake"})
    try:
        page.goto(f"{server.url}/sessions/{API_FIX}/eval")
        assert page.locator(".eval-none").is_visible()
        # The progress lines live until the tab reloads at the end (soon, on a quiet
        # machine): keep what the log showed where the reload cannot wipe it.
        page.add_init_script(_KEEP_PROGRESS)
        page.reload()
        page.click("[data-eval-run]")
        page.wait_for_selector("[data-eval-overall]", timeout=60_000)  # done: the tab reloads with the eval
        progress = page.evaluate("sessionStorage.getItem('eval-progress')") or ""
        assert "broken_tests" in progress and "retrospective" in progress, progress  # progress over SSE
        verdict = page.locator('[data-question="broken_tests"] .badge')
        assert verdict.inner_text() == "WARN"  # the tab's verdicts are capitals (its own rule, inside .eval-tab)
        assert page.locator('[data-eval-category="quality"]').inner_text() in "1234"
        page.locator('[data-question="broken_tests"] a.ev-trace').first.click()
        page.wait_for_selector(".tnode.selected")
        page.goto(f"{server.url}/sessions/{API_FIX}/eval")
        href = page.locator('[data-question="broken_tests"] a.ev-chat').first.get_attribute("href")
        page.locator('[data-question="broken_tests"] a.ev-chat').first.click()
        anchor = href.split("#")[1]
        page.wait_for_selector(f"#{anchor}")
        assert page.locator(f"#{anchor}").is_visible()
        page.goto(f"{server.url}/?sort=eval")
        assert page.locator(".session-row").first.get_attribute("data-session") == API_FIX
        assert page.dialogs == []
    finally:
        assert "Traceback" not in server.stop()


def test_run_eval_in_a_signed_in_browser_queues_one_and_says_why_the_next_is_refused(tmp_path, context):
    """Bob, signed in by the login form in real Chromium on a team server whose
    judge is slow, clicks Run eval: queued (the POST carries the page's CSRF
    token). His server allows one eval per person at a time (``KAPACITOR_EVAL_MAX_JOBS=1``),
    so his next click says why it is refused, in the tab, in one line."""
    from types import SimpleNamespace

    from playwright.sync_api import expect
    from test_comments_browser import signed_in

    from test_access import BOB_SESSION, Team

    slow = FakeJudge({"*": [{"sleep": 5}]})
    env = {"KAPACITOR_JUDGE": "anthropic", "ANTHROPIC_BASE_URL": slow.url, "ANTHROPIC_API_KEY": "sk-ant-fake",
           "KAPACITOR_EVAL_MAX_JOBS": "1"}
    team = None
    try:
        team = Team(tmp_path, **env)
        page = signed_in(context, SimpleNamespace(server=team.server, tokens=team.tokens), "bob")
        page.goto(f"{team.server.url}/sessions/{BOB_SESSION}/eval")
        state = page.locator(".eval-job-state")
        page.click("[data-eval-run]")
        expect(state).to_have_text("Running…")
        page.reload()
        page.click("[data-eval-run]")
        expect(state).to_have_text("Could not start the eval: bob has 1 eval queued or running already (at most 1 at once):"
                                   " run this one when one of them has finished.")
        expect(page.locator("[data-eval-run]")).to_be_enabled()
        assert [e for e in page.errors if "status of 429" not in e] == []  # the refusal itself, logged by Chromium
        page.close()
    finally:
        if team is not None:
            team.close()
        slow.close()
