"""The eval core over real recorded sessions and a scripted judge on loopback:
catalog, compact trace, session tools, validation and retries, aggregation,
budget, persistence and replay of ``SessionEvalCompleted``."""

from __future__ import annotations

import json

import pytest

from conftest import RECORDED, SAMPLE_DIRS
from fake_judge import FakeJudge
from kapacitor.capture.importer import import_paths
from kapacitor.eval import catalog as catalog_mod
from kapacitor.eval import session as session_mod
from kapacitor.eval.answers import InvalidAnswer, validate_answer
from kapacitor.eval.compact import compact_trace
from kapacitor.eval.judges import JudgeUnreachable, make_judge
from kapacitor.eval.record import evals_of, record_eval
from kapacitor.eval.runner import Settings, aggregate, rounded_mean, run_eval
from kapacitor.eval.tools import SessionTools, ToolError
from kapacitor.events import session_eval_stream
from kapacitor.projections.session_summary import SessionSummaries

SESSIONS = json.loads((RECORDED / "sessions.json").read_text())
API_FIX = SESSIONS["api-fix"]["session_id"]
WIDGETS = SESSIONS["widgets-hello"]["session_id"]


@pytest.fixture
def imported(store):
    import_paths(store, SAMPLE_DIRS)
    return store


@pytest.fixture
def judge_server(monkeypatch):
    servers = []

    def start(script=None):
        server = FakeJudge(script)
        servers.append(server)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        return server

    yield start
    for server in servers:
        server.close()


def judge(backend="anthropic", session=API_FIX):
    return make_judge(backend, None, store_url="unused", session_id=session, threshold=2000)


# --- catalog -------------------------------------------------------------------


def test_catalog_has_the_13_questions_in_4_categories():
    cat = catalog_mod.load()
    assert [c.id for c in cat.categories] == ["safety", "plan_adherence", "quality", "efficiency"]
    assert len(cat.questions) == 13
    assert {q.id for q in cat.questions if q.needs_tools} == {
        "security_vulnerabilities", "completed_items", "tests_written", "broken_tests", "repeated_failures"}
    assert len(cat.version) == 12 and cat.version == catalog_mod.load().version


def test_team_catalog_overrides_disables_and_adds(tmp_path):
    team = tmp_path / "team.toml"
    team.write_text(
        '[[questions]]\nid = "over_engineering"\ndisabled = true\n'
        '[[questions]]\nid = "direct_approach"\nquestion = "Was it quick?"\n'
        '[[categories]]\nid = "docs"\ntitle = "Documentation"\n'
        '[[questions]]\nid = "docs_updated"\ncategory = "docs"\nquestion = "Did it update the docs?"\n'
    )
    cat = catalog_mod.load(team)
    ids = [q.id for q in cat.questions]
    assert "over_engineering" not in ids and ids[-1] == "docs_updated"
    assert cat.question("direct_approach").question == "Was it quick?"
    assert cat.categories[-1].title == "Documentation"
    assert cat.version != catalog_mod.load().version
    assert [q.id for q in cat.select(["docs"])] == ["docs_updated"]
    assert "sensitive_files" not in [q.id for q in cat.select(None, ["safety"])]
    with pytest.raises(catalog_mod.CatalogError, match="no question or category 'nope'"):
        cat.select(["nope"])
    bad = tmp_path / "bad.toml"
    bad.write_text('[[questions]]\nid = "x"\ncategory = "nowhere"\nquestion = "?"\n')
    with pytest.raises(catalog_mod.CatalogError, match="unknown category"):
        catalog_mod.load(bad)


# --- the compact trace and the session tools -------------------------------------


def test_compact_trace_marks_large_results_and_subagents(imported):
    view = session_mod.load(imported, WIDGETS)
    full = compact_trace(view, threshold=10**9)
    small = compact_trace(view, threshold=50)
    assert "bytes, not shown]" in small and "bytes, not shown]" not in full
    assert "USER:" in full and "TOOL CALL" in full
    assert any(e.agent for e in view.entries) == ("{" in full)
    for e in view.entries:
        assert f"[{e.short}]" in full
        assert e.ref in view.event_ids


def test_session_tools_over_a_recorded_session(imported):
    view = session_mod.load(imported, API_FIX)
    tools = SessionTools(view)
    summary = tools.call("session_summary", {})
    assert "/home/dev/src/api-server/app.py (2 writes)" in summary
    assert "python3 -m unittest -q -> FAILED" in summary and "-> ok (exit 0)" in summary
    assert "unittest" in tools.call("search_session", {"query": "UNITTEST"})
    assert tools.call("transcript_page", {"page": 1}).startswith("Page 1 of 1")
    content = tools.call("file_content", {"path": "app.py"})
    assert '"""Return the sum of a and b."""' in content and "return a + b" in content
    failing = next(e for e in view.entries if e.item.tool and e.item.tool.is_error)
    assert "AssertionError: -1 != 5" in tools.call("tool_output", {"call": failing.item.tool.call_id})
    assert "AssertionError" in tools.call("tool_output", {"call": failing.short})


def test_session_tools_never_read_another_session(imported):
    other = session_mod.load(imported, WIDGETS)
    tools = SessionTools(session_mod.load(imported, API_FIX))
    foreign_call = next(e.item.tool.call_id for e in other.entries if e.item.tool)
    with pytest.raises(ToolError, match="no tool call"):
        tools.call("tool_output", {"call": foreign_call})
    with pytest.raises(ToolError, match="no tool call"):
        tools.call("tool_output", {"call": other.entries[0].ref})
    written = next(e.item.tool.arguments["file_path"] for e in other.entries
                   if e.item.tool and e.item.tool.name == "Write")
    with pytest.raises(ToolError, match="did not write"):
        tools.call("file_content", {"path": written})
    assert "No entry contains" in tools.call("search_session", {"query": other.entries[0].item.text[:30]})
    with pytest.raises(ToolError, match="no tool 'Bash'"):
        tools.call("Bash", {"command": "cat /etc/passwd"})


# --- validation ----------------------------------------------------------------


def test_validation_derives_the_verdict_and_drops_unknown_evidence(imported):
    view = session_mod.load(imported, API_FIX)
    question = catalog_mod.load().question("broken_tests")
    ref = view.entries[3].short
    verdict = validate_answer(
        {"question_id": "broken_tests", "score": 2, "verdict": "pass", "finding": "Tests fail.",
         "evidence": [{"event_id": ref, "note": "here"}, {"event_id": "deadbeefdeadbeef", "note": "made up"}],
         "recommendation": "Run the tests."}, question, view)
    assert verdict.verdict == "warn" and verdict.evidence_dropped == 1
    assert verdict.evidence[0]["event_id"] == view.entries[3].ref
    assert verdict.evidence[0]["anchor"] == f"e-{view.entries[3].ref}"
    for bad, message in [({"score": 7, "finding": "x"}, "score must be"), ({"score": 3, "finding": "x"}, "needs a recommendation"),
                         ("{not json", "not valid JSON"), ({"score": 5, "finding": ""}, "finding"),
                         ({"score": True, "finding": "x"}, "score must be"),
                         ({"question_id": "other", "score": 5, "finding": "x"}, "question_id")]:
        with pytest.raises(InvalidAnswer, match=message):
            validate_answer(bad, question, view)
    assert validate_answer('```json\n{"score": 4, "finding": "ok"}\n```', question, view).verdict == "pass"


def test_rounding_and_aggregation():
    assert rounded_mean([4, 5]) == 5 and rounded_mean([3, 4, 4]) == 4 and rounded_mean([1, 2]) == 2
    assert rounded_mean([]) is None
    from kapacitor.eval.answers import Verdict

    cat = catalog_mod.load()
    verdicts = [Verdict("sensitive_files", "safety", 5, "pass", "f", []), Verdict("destructive_commands", "safety", 2, "warn", "f", []),
                Verdict("direct_approach", "efficiency", 1, "fail", "f", [])]
    categories, overall = aggregate(cat, verdicts)
    assert [(c["id"], c["score"]) for c in categories] == [("safety", 4), ("efficiency", 1)]
    assert overall == 3  # mean 2.5 rounds up


# --- whole evals against the scripted judge ---------------------------------------


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_an_eval_with_every_kind_of_bad_answer(imported, judge_server, backend):
    server = judge_server({
        "sensitive_files": [{"raw": "{not json at all"}, {"answer": {"score": 4}}],
        "destructive_commands": [{"answer": {"score": 9}}, {"answer": {"score": 0}}],
        "permission_bypass": [{"answer": {"score": 5}, "cite": ["0123abcd", "ffffffff"]}],
        "followed_plan": [{"status": 500}, {"answer": {"score": 3, "recommendation": "Stay on the request."}}],
        "broken_tests": [{"tool": "session_summary"}, {"tool": "tool_output", "input": {"call": "nope"}},
                         {"answer": {"score": 4, "retain_fact": "Tests run with python3 -m unittest."}}],
        "repeated_failures": [{"tool": "search_session", "input": {"query": "unittest"}}],
    })
    cat = catalog_mod.load()
    view = session_mod.load(imported, API_FIX)
    events = []
    result = run_eval(view, judge(backend), cat, cat.questions, Settings(parallel=4), events.append)
    by_id = {v.question_id: v for v in result.verdicts}
    failed = {f["question_id"]: f["error"] for f in result.failed}
    assert by_id["sensitive_files"].attempts == 2 and by_id["sensitive_files"].score == 4
    assert "score must be an integer from 1 to 5" in failed["destructive_commands"]
    assert by_id["permission_bypass"].evidence == [] and by_id["permission_bypass"].evidence_dropped == 2
    assert by_id["followed_plan"].verdict == "warn" and by_id["followed_plan"].attempts == 2
    assert by_id["broken_tests"].retain_fact
    assert "tool-use loop" in failed["repeated_failures"]
    # the tool results reached the judge, from this session only
    tool_turns = [json.dumps(b) for b in server.asked("broken_tests")]
    assert any("python3 -m unittest -q -> FAILED" in t for t in tool_turns)
    assert any("no tool call 'nope' in this session" in t for t in tool_turns)
    assert len(result.verdicts) == 11 and result.retrospective["suggestions"]
    assert not result.ok
    categories = {c["id"]: c["score"] for c in result.categories}
    assert categories["safety"] == rounded_mean([4, 5, 5])
    assert result.overall == rounded_mean(list(categories.values()))
    assert sum(row["requests"] for row in result.usage.values()) == len(server.requests) - 1  # the 500 cost nothing
    states = [(e.get("question_id"), e["state"]) for e in events]
    assert ("sensitive_files", "retry") in states and ("destructive_commands", "failed") in states


def test_a_judge_that_times_out_is_retried_then_recorded_failed(imported, judge_server):
    judge_server({"direct_approach": [{"sleep": 3}], "*": [{"answer": {}}]})
    cat = catalog_mod.load()
    view = session_mod.load(imported, API_FIX)
    result = run_eval(view, judge(), cat, cat.select(["direct_approach", "sensitive_files"]), Settings(timeout=0.5))
    assert [f["question_id"] for f in result.failed] == ["direct_approach"]
    assert "Timeout" in result.failed[0]["error"]
    assert [v.question_id for v in result.verdicts] == ["sensitive_files"]


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_a_judge_refusing_the_credentials_stops_the_eval_without_retries(imported, judge_server, backend):
    server = judge_server({"*": [{"status": 401}]})
    cat = catalog_mod.load()
    view = session_mod.load(imported, API_FIX)
    events = []
    with pytest.raises(JudgeUnreachable, match="AuthenticationError"):
        run_eval(view, judge(backend), cat, cat.questions, Settings(parallel=2), events.append)
    assert len(server.requests) <= 2  # the calls in flight, none retried, no other question asked
    assert not [e for e in events if e["state"] in ("retry", "failed")]


def test_a_judge_lost_midway_keeps_the_answers_and_marks_the_rest_not_asked(imported, judge_server):
    judge_server({"sensitive_files": [{"answer": {"score": 4}}], "*": [{"status": 404}]})
    cat = catalog_mod.load()
    view = session_mod.load(imported, API_FIX)
    chosen = cat.select(["sensitive_files", "destructive_commands", "direct_approach"])
    result = run_eval(view, judge(), cat, chosen, Settings(chain=True))
    assert [v.question_id for v in result.verdicts] == ["sensitive_files"]
    assert [f["question_id"] for f in result.failed] == ["destructive_commands", "direct_approach", "retrospective"]
    assert all(f["error"].startswith("not asked: anthropic judge at ") and "NotFoundError" in f["error"]
               for f in result.failed) and not result.ok


def test_max_cost_stops_the_eval(imported, judge_server):
    judge_server()
    cat = catalog_mod.load()
    view = session_mod.load(imported, API_FIX)
    result = run_eval(view, judge(), cat, cat.questions, Settings(parallel=1, max_cost=0.000001))
    assert len(result.verdicts) == 1 and result.stopped_by_budget and not result.ok
    assert all("budget" in f["error"] for f in result.failed)
    assert result.cost_usd is not None and result.cost_usd > 0


def test_the_eval_is_stored_replayed_and_not_agent_activity(imported, judge_server):
    judge_server({"broken_tests": [{"answer": {"retain_fact": "Run python3 -m unittest -q."}}]})
    cat = catalog_mod.load()
    before = _summary(imported, API_FIX)
    view = session_mod.load(imported, API_FIX)
    first = run_eval(view, judge(), cat, cat.questions)
    record_eval(imported, first, before)
    second = run_eval(view, judge(), cat, cat.select(["quality"]))
    record_eval(imported, second, before)
    stored = evals_of(imported, API_FIX)
    assert [e["eval_id"] for e in stored] == [first.eval_id, second.eval_id]
    assert stored[0]["summary"]["catalog_version"] == cat.version
    assert stored[0]["summary"]["judge"] == {"backend": "anthropic", "model": "claude-sonnet-5"}
    assert stored[0]["summary"]["overall"] == first.overall == 5
    assert len(stored[0]["scores"]) == 13 and stored[0]["summary"]["cost_usd"] > 0
    facts = [e for e in imported.read_all() if e.type == "FactRetained"]
    assert len(facts) == 2 and facts[0].data["extensions"]["kapacitor"]["session_id"] == API_FIX
    after = _summary(imported, API_FIX)
    assert (after["ended"], after["events"]) == (before["ended"], before["events"])
    assert imported.stream_version(session_eval_stream(API_FIX)) == 1


def _summary(store, session_id):
    summaries = SessionSummaries()
    for event in store.read_all():
        summaries.apply(event)
    return summaries.sessions[session_id].as_json()


def test_chain_asks_one_question_after_another_with_the_verdicts_before(imported, judge_server):
    server = judge_server({"sensitive_files": [{"answer": {"score": 2, "finding": "Read .env.", "recommendation": "Do not."}}]})
    cat = catalog_mod.load()
    view = session_mod.load(imported, API_FIX)
    questions = cat.select(["sensitive_files", "destructive_commands", "direct_approach"])
    result = run_eval(view, judge(), cat, questions, Settings(chain=True, parallel=8))
    assert [v.question_id for v in result.verdicts] == ["sensitive_files", "destructive_commands", "direct_approach"]
    order = [q for _, q, _ in server.requests]
    assert order == ["sensitive_files", "destructive_commands", "direct_approach", "retrospective"]
    last = json.dumps(server.asked("direct_approach")[0])
    assert "sensitive_files: 2 (warn): Read .env." in last and "destructive_commands: 5 (pass)" in last
    assert "Verdicts already given" not in json.dumps(server.asked("sensitive_files")[0])
