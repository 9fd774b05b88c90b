"""Shared memory end to end with the real Claude Code CLI: ``kapacitor setup``
(hooks and the MCP server) into a temporary HOME, the real ``kapacitor serve``,
the fake model.

Session A calls the ``remember`` tool of ``kapacitor mcp``; session B, started
in another clone of the same GitHub repository, is told the fact at its start:
by the SessionStart hook's output and in the request the model receives.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from capture_helpers import KAPACITOR, Server, wait_for
from claude_client import CLAUDE, VERSION, finish, git_repo, start
from fake_model import FakeModel

pytestmark = pytest.mark.e2e
FACT = "run the greeter tests with make check-greeter; plain pytest skips the fixtures"


def facts_of(server: Server, repo: str) -> list[dict]:
    return server.get(f"/api/memory/facts?repo={repo}")  # type: ignore[return-value]


def test_a_fact_remembered_in_one_session_is_recalled_at_the_start_of_the_next(tmp_path, isolated_home):
    if not CLAUDE.exists():
        pytest.fail(f"Claude Code {VERSION} is not installed at {CLAUDE}: run ./scripts/test, which installs it")
    server = Server(tmp_path / "live.db").start()
    try:
        subprocess.run([KAPACITOR, "setup", "--server", server.url], check=True, capture_output=True)
        assert "kapacitor" in json.loads((isolated_home / ".claude.json").read_text())["mcpServers"]
        first = git_repo(tmp_path / "a" / "greeter")
        fake = FakeModel("remember", {})
        try:
            session_a = finish(start("remember how the greeter tests run", first, fake.url, "--dangerously-skip-permissions"))
            tools = {t["name"] for r in fake.requests for t in r.get("tools") or []}
            assert "mcp__kapacitor__remember" in tools, sorted(tools)
        finally:
            fake.close()
        [fact] = wait_for(lambda: facts_of(server, "acme/greeter"))
        assert fact["text"] == FACT and fact["category"] == "testing" and fact["by"] == "agent"
        assert fact["session_id"] == session_a and fact["user"] == "dev@example.com"

        second = tmp_path / "b" / "greeter"
        subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True)
        subprocess.run(["git", "remote", "set-url", "origin", "https://github.com/acme/greeter.git"], cwd=second, check=True)
        fake = FakeModel("recall", {})
        try:
            proc = start("how do I run the tests?", second, fake.url, "--dangerously-skip-permissions")
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-2000:]
            sent = json.dumps([r for r in fake.requests if r.get("tools")])
        finally:
            fake.close()
        assert FACT in sent  # the model was told the fact
        printed = [json.loads(line) for line in out.splitlines() if "hook" in line and FACT in line]
        assert printed, "the SessionStart hook's output is not in the client's stream"
        hook_output = json.loads(next(m["output"] for m in printed if m.get("output")))
        assert hook_output["hookSpecificOutput"]["hookEventName"] == "SessionStart"
        assert FACT in hook_output["hookSpecificOutput"]["additionalContext"]
        wait_for(lambda: facts_of(server, "acme/greeter")[0]["uses"] == 1)  # the use is counted
    finally:
        server.stop()
