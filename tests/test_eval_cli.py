"""``kapacitor eval`` and ``kapacitor mcp judge`` as a user runs them: the real
command in a subprocess over a real store, the scripted judge on loopback, the
MCP server over stdio with the official SDK's client, and the exact command
line the ``claude`` backend runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anyio
import pytest

from conftest import RECORDED, SAMPLE_DIRS
from fake_judge import FakeJudge
from kapacitor.capture.importer import import_paths
from kapacitor.eval.answers import ANSWER_SCHEMA
from kapacitor.eval.judges import ClaudeJudge, Request
from kapacitor.eval.prompts import SYSTEM
from kapacitor.eval.record import evals_of

SESSIONS = json.loads((RECORDED / "sessions.json").read_text())
API_FIX = SESSIONS["api-fix"]["session_id"]
KAPACITOR = [sys.executable, "-m", "kapacitor"]


@pytest.fixture
def filled(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    return f"sqlite://{store_path}"


@pytest.fixture
def judge_env(monkeypatch):
    server = FakeJudge({"broken_tests": [{"tool": "session_summary"}, {"answer": {"score": 3, "recommendation": "Re-run."}}]})
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
    yield server
    server.close()


def kapacitor(store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KAPACITOR, "--store", store_url, *args], capture_output=True, text=True, timeout=120)


def test_eval_command_stores_an_eval_and_prints_json(filled, judge_env, store):
    done = kapacitor(filled, "eval", API_FIX, "--questions", "quality,sensitive_files", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [s["question_id"] for s in out["scores"]] == ["sensitive_files", "tests_written", "broken_tests", "over_engineering"]
    assert out["summary"]["categories"][1] == {"id": "quality", "title": "Quality", "score": 4, "mean": 4.333,
                                               "questions": 3}
    assert "broken_tests" in done.stderr and "warn" in done.stderr  # per-question progress
    assert [e["eval_id"] for e in evals_of(store, API_FIX)] == [out["eval_id"]]


def test_eval_exit_codes(filled, judge_env):
    judge_env.script["direct_approach"] = [{"raw": "no json"}]
    failed = kapacitor(filled, "eval", API_FIX, "--questions", "direct_approach")
    assert failed.returncode == 1 and "failed" in failed.stderr
    assert kapacitor(filled, "eval", API_FIX, "--questions", "nope").returncode == 2
    assert kapacitor(filled, "eval").returncode == 2
    missing = kapacitor(filled, "eval", "no-such-session")
    assert missing.returncode == 1 and "no session 'no-such-session'" in missing.stderr
    no_key = subprocess.run([*KAPACITOR, "--store", filled, "eval", API_FIX], capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC")})
    assert no_key.returncode == 1
    assert no_key.stderr.strip() == "Error: anthropic judge: no API key: set ANTHROPIC_API_KEY in the environment `kapacitor eval` runs in"
    assert "Traceback" not in missing.stderr + failed.stderr + no_key.stderr


def _without(*prefixes: str, **extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **extra}


@pytest.mark.parametrize(("judge", "env"), [
    pytest.param("openai", _without("OPENAI", OPENAI_BASE_URL="http://127.0.0.1:1/v1", OPENAI_API_KEY="x"), id="refused"),
    pytest.param("claude", _without("KAPACITOR_CLAUDE", KAPACITOR_CLAUDE="/nonexistent/claude"), id="no-executable"),
    pytest.param("anthropic", _without("ANTHROPIC"), id="no-key"),
])
def test_an_unreachable_judge_is_one_line_and_stores_nothing(filled, store, judge, env):
    head = store.head_position()
    done = subprocess.run([*KAPACITOR, "--store", filled, "eval", API_FIX, "--judge", judge], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"Error: {judge} judge: ")
    assert store.head_position() == head and evals_of(store, API_FIX) == []


def test_an_eval_with_no_question_answered_is_not_stored(filled, judge_env, store):
    judge_env.script["*"] = [{"raw": "no json"}]
    done = kapacitor(filled, "eval", API_FIX, "--questions", "sensitive_files,destructive_commands")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert sorted(line.split()[0] for line in done.stderr.splitlines() if " failed: " in line) == [
        "destructive_commands", "sensitive_files"]  # each question's failure, as it happened
    assert done.stderr.strip().splitlines()[-1].startswith(
        "Error: eval not stored: the judge answered no question (sensitive_files: ")
    assert evals_of(store, API_FIX) == []


def test_an_eval_with_some_questions_answered_is_stored_with_the_rest_failed(filled, judge_env, store):
    judge_env.script["destructive_commands"] = [{"raw": "no json"}]
    done = kapacitor(filled, "eval", API_FIX, "--questions", "sensitive_files,destructive_commands", "--json")
    assert done.returncode == 1
    stored = json.loads(done.stdout)
    assert [s["question_id"] for s in stored["scores"]] == ["sensitive_files"]
    assert [f["question_id"] for f in stored["summary"]["failed"]] == ["destructive_commands"]
    assert [e["eval_id"] for e in evals_of(store, API_FIX)] == [stored["eval_id"]]


def test_eval_repo_since_skips_evaluated_sessions(filled, judge_env):
    first = kapacitor(filled, "eval", "--repo", "/home/dev/src/api-server", "--since", "100000d", "--questions", "safety", "--json")
    assert first.returncode == 0, first.stderr
    assert [e["summary"]["session_id"] for e in json.loads(first.stdout)] == [API_FIX]
    again = kapacitor(filled, "eval", "--repo", "/home/dev/src/api-server", "--since", "2000-01-01", "--json")
    assert again.returncode == 0 and json.loads(again.stdout) == []
    assert "All 1 session(s) of /home/dev/src/api-server since 2000-01-01 00:00" in again.stderr
    assert "are evaluated already" in again.stderr


def test_eval_repo_says_why_there_is_nothing_to_evaluate(filled):
    """A repository the store does not hold (a typo in a cron job) fails, one line,
    exit 1; a known one with nothing new since then is "nothing to do", exit 0."""
    unknown = kapacitor(filled, "eval", "--repo", "acme/widgets", "--since", "7d")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.strip() == ("Error: no session of 'acme/widgets' in the store"
                                      " (`kapacitor sessions` lists its repositories and directories)")
    recent = kapacitor(filled, "eval", "--repo", "/home/dev/src/api-server", "--since", "1h")
    assert recent.returncode == 0 and recent.stderr.startswith("None of the 1 session(s) of /home/dev/src/api-server started since ")
    bad = kapacitor(filled, "eval", "--repo", "/home/dev/src/api-server", "--since", "yesterday")
    assert bad.returncode == 2 and "neither a day (YYYY-MM-DD) nor a duration back from now (12h, 7d, 2w)" in bad.stderr


def test_mcp_judge_serves_the_session_tools_over_stdio(filled):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "kapacitor", "--store", filled, "mcp", "judge", "--session", API_FIX])

    async def talk() -> tuple[list[str], str, bool]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = [t.name for t in (await session.list_tools()).tools]
            summary = await session.call_tool("session_summary", {})
            wrong = await session.call_tool("tool_output", {"call": "toolu_elsewhere"})
            return names, summary.content[0].text, wrong.is_error

    names, summary, wrong_is_error = anyio.run(talk)
    assert names == ["session_summary", "search_session", "transcript_page", "tool_output", "file_content"]
    assert "python3 -m unittest -q -> FAILED" in summary
    assert wrong_is_error


def test_mcp_judge_refuses_an_unknown_session(filled):
    done = kapacitor(filled, "mcp", "judge", "--session", "nope")
    assert done.returncode == 1 and "no session 'nope'" in done.stderr


def test_the_claude_backend_command_line_and_mcp_config():
    judge = ClaudeJudge("sonnet", "sqlite:///tmp/x.db", "sess-1", 1500, executable="/bin/claude")
    with_tools = judge.command(Request(SYSTEM, "prompt", ANSWER_SCHEMA, tools=object()))  # type: ignore[arg-type]
    config = {"mcpServers": {"kapacitor_judge": {"type": "stdio", "command": sys.executable, "args": [
        "-m", "kapacitor", "--store", "sqlite:///tmp/x.db", "mcp", "judge", "--session", "sess-1", "--threshold", "1500"], "alwaysLoad": True}}}
    assert with_tools == [
        "/bin/claude", "-p", "--output-format", "json", "--json-schema", json.dumps(ANSWER_SCHEMA),
        "--model", "sonnet", "--system-prompt", SYSTEM, "--tools", "", "--setting-sources", "",
        "--settings", '{"disableAllHooks": true}', "--strict-mcp-config", "--no-session-persistence",
        "--mcp-config", json.dumps(config), "--allowedTools", "mcp__kapacitor_judge",
    ]
    without = judge.command(Request(SYSTEM, "prompt", ANSWER_SCHEMA))
    assert without == with_tools[:-4]
