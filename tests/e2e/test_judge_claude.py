"""The ``claude`` judge backend end to end: the real Claude Code CLI, headless,
against the fake model; it starts ``kapacitor mcp judge`` over stdio from our
MCP config, calls the session tools, answers with structured output, and the
eval is stored."""

from __future__ import annotations

import json

import pytest

from claude_client import CLAUDE, VERSION, client_env
from conftest import RECORDED, SAMPLE_DIRS
from fake_model import FakeModel
from kapacitor.capture.importer import import_paths
from kapacitor.eval import catalog
from kapacitor.eval.record import evals_of
from kapacitor.eval.service import EvalRequest, evaluate

pytestmark = pytest.mark.e2e
API_FIX = json.loads((RECORDED / "sessions.json").read_text())["api-fix"]["session_id"]


def test_a_claude_judge_calls_our_mcp_tools_and_its_answer_is_stored(store, store_path, monkeypatch):
    if not CLAUDE.exists():
        pytest.fail(f"Claude Code {VERSION} is not installed at {CLAUDE}: run ./scripts/test, which installs it")
    import_paths(store, SAMPLE_DIRS)
    model = FakeModel("judge", {})
    try:
        for key, value in client_env(model.url).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("KAPACITOR_CLAUDE", str(CLAUDE))
        request = EvalRequest(API_FIX, "claude", "claude-sonnet-4-5", catalog.load(), only=["broken_tests"])
        result = evaluate(store, f"sqlite://{store_path}", request)
    finally:
        model.close()
    assert result.failed == [], result.failed
    [verdict] = result.verdicts
    assert (verdict.question_id, verdict.score, verdict.verdict) == ("broken_tests", 5, "pass")
    assert [e["event_id"][:8] for e in verdict.evidence] == ["f297f60e", "4da69c4f"]
    assert result.retrospective["suggestions"] == ["Run the tests before and after a fix."]
    [stored] = evals_of(store, API_FIX)
    assert stored["eval_id"] == result.eval_id and stored["summary"]["judge"]["backend"] == "claude"
    usage = stored["summary"]["usage"]["claude-sonnet-4-5"]
    assert usage["requests"] == 2 and usage["output_tokens"] > 0  # one CLI run per question and the retrospective
    # the judge saw only our tools and structured output, and the tools' answers came back over stdio
    question_requests = [r for r in model.requests if "question_id 'broken_tests'" in json.dumps(r.get("messages", [])[:1])]
    tools = {t["name"] for t in question_requests[0]["tools"]}
    assert tools == {"StructuredOutput", "mcp__kapacitor_judge__session_summary", "mcp__kapacitor_judge__search_session",
                     "mcp__kapacitor_judge__transcript_page", "mcp__kapacitor_judge__tool_output",
                     "mcp__kapacitor_judge__file_content"}
    seen = json.dumps(question_requests[-1]["messages"])
    assert "python3 -m unittest -q -> FAILED" in seen and "AssertionError: -1 != 5" in seen
