"""``kapacitor mcp`` over stdio (the official SDK's client), against the real
``kapacitor serve`` holding the recorded sessions: every tool answers with the
recorded data, and a failure is an MCP tool error with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

import anyio
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from test_browser import recorded_context

from capture_helpers import KAPACITOR, Server, free_port, wait_for
from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.store import open_store

API_FIX = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"
WIDGETS = "708f24f2-dc3e-4588-a43d-59d69a508ed0"
TOOLS = {"remember", "recall", "search_sessions", "session_recap", "session_errors", "get_transcript",
         "get_tool_result", "pr_sessions"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The recorded sessions (with the GitHub remotes they had) behind the real
    server, and a fake ``gh`` on its PATH that knows PR acme/api-server#7 (branch main)."""
    tmp = tmp_path_factory.mktemp("mcp")
    db = tmp / "live.db"
    store = open_store(f"sqlite://{db}")
    import_paths(store, SAMPLE_DIRS, resolve_context=recorded_context)
    store.close()
    gh = tmp / "bin" / "gh"
    gh.parent.mkdir()
    pr = {"number": 7, "title": "Fix add", "state": "MERGED", "headRefName": "main"}
    gh.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(pr)}\nEOF\n")
    gh.chmod(0o755)
    server = Server(db, KAPACITOR_TOKEN="secret-token", PATH=f"{gh.parent}{os.pathsep}{os.environ['PATH']}").start()
    wait_for(lambda: server.get("/healthz")["lag"] == 0)
    yield server
    server.stop()


def call_all(server_url: str, calls: list[tuple[str, dict]], cwd: str, session: str = "",
             token: str = "secret-token") -> tuple[set[str], list]:
    """Start ``kapacitor mcp``, list its tools and make ``calls``: (tool names, results)."""
    env = {**os.environ, "KAPACITOR_SERVER": server_url, "KAPACITOR_TOKEN": token,
           "CLAUDE_CODE_SESSION_ID": session}

    async def run() -> tuple[set[str], list]:
        async with Client(StdioServerParameters(command=KAPACITOR, args=["mcp"], env=env, cwd=cwd), read_timeout_seconds=60) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            results = [await client.call_tool(name, args) for name, args in calls]
            return names, results

    return anyio.run(run)


def api_get(server: Server, path: str) -> object:
    request = urllib.request.Request(server.url + path, headers={"Authorization": "Bearer secret-token"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def text(result) -> str:  # noqa: ANN001
    return "".join(block.text for block in result.content)


def test_every_tool_answers_from_the_recorded_sessions(server, tmp_path):
    repo = tmp_path / "api-server"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "remote", "add", "origin", "https://github.com/acme/api-server.git"], cwd=repo, check=True)
    names, results = call_all(server.url, [
        ("remember", {"fact": "the api-server tests run with python3 -m unittest -q", "category": "testing"}),
        ("recall", {}),
        ("recall", {"query": "unittest"}),
        ("search_sessions", {"query": "does_not_exist.txt"}),
        ("session_recap", {}),
        ("session_errors", {"session_id": WIDGETS}),
        ("get_transcript", {"limit": 3}),
        ("get_tool_result", {"session_id": WIDGETS, "call_id": "CALL"}),
        ("pr_sessions", {"pr": "acme/api-server#7"}),
    ], str(repo), session=API_FIX)
    assert names == TOOLS
    remembered, recalled, queried, searched, recap, errors, transcript, missing, pr = results
    assert not any(r.is_error for r in results if r is not missing), [text(r) for r in results if r.is_error]
    assert "Remembered as fact" in text(remembered) and "(acme/api-server)" in text(remembered)
    # recall counts and lists what the API sees; the fact links to the session the server was started in
    [fact] = api_get(server, "/api/memory/facts?repo=acme/api-server")
    assert fact["session_id"] == API_FIX and fact["by"] == "agent"
    assert "python3 -m unittest -q" in text(recalled) and fact["fact_id"] in text(queried)
    hits = json.loads(text(searched))
    assert {h["session_id"] for h in hits} == {WIDGETS, "922a15d3-3e4d-471a-9a7e-754f15615295"}
    recap = json.loads(text(recap))  # the current session by default
    assert recap["session_id"] == API_FIX and [t["result"] for t in recap["tests"]] == ["failed", "passed"]
    assert [f["path"] for f in recap["files"]] == ["/home/dev/src/api-server/app.py"]
    [error] = json.loads(text(errors))
    assert error["tool"] == "Bash" and "does_not_exist.txt" in error["error"]
    assert "test_add fails, please fix add()" in text(transcript) and "next page: start=3" in text(transcript)
    assert missing.is_error and "no tool call 'CALL'" in text(missing)
    pr = json.loads(text(pr))
    assert pr["branch"] == "main" and [(s["session_id"], s["files"]) for s in pr["sessions"]] == [
        (API_FIX, ["/home/dev/src/api-server/app.py"])]


def test_tool_errors_say_what_went_wrong(server, tmp_path):
    _, results = call_all(server.url, [
        ("session_recap", {}),  # no current session
        ("session_recap", {"session_id": "no-such-session"}),
        ("remember", {"fact": "   "}),
        ("pr_sessions", {"pr": "not a pr"}),
    ], str(tmp_path))
    assert all(r.is_error for r in results)
    messages = [text(r) for r in results]
    assert "give a session_id" in messages[0]
    assert "no session 'no-such-session'" in messages[1]
    assert "a fact needs some text" in messages[2]
    assert "OWNER/REPO#NUMBER" in messages[3]
    down = f"http://127.0.0.1:{free_port()}"
    _, [result] = call_all(down, [("recall", {})], str(tmp_path))
    assert result.is_error and "is not reachable" in text(result)


def test_search_takes_since_as_the_cli_does_and_the_server_logs_no_http_call(server, tmp_path):
    """``search_sessions(since=...)`` takes a day or a duration (``times.since_start``,
    through ``/api/search``); and the MCP server's stderr, which Claude Code keeps as
    its MCP log, holds no line per HTTP call (it did: httpx at INFO)."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import stdio_client

    env = {**os.environ, "KAPACITOR_SERVER": server.url, "KAPACITOR_TOKEN": "secret-token"}
    params = StdioServerParameters(command=KAPACITOR, args=["mcp"], env=env, cwd=str(tmp_path))
    log = tmp_path / "mcp.log"

    async def run() -> list:
        with log.open("w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return [await session.call_tool("search_sessions", {"query": "does_not_exist.txt", "since": since})
                        for since in ("100000d", "2000-01-01", "1h", "yesterday")]

    long_ago, day, hour, bad = anyio.run(run)
    assert {h["session_id"] for h in json.loads(text(long_ago))} == {WIDGETS, "922a15d3-3e4d-471a-9a7e-754f15615295"}
    assert json.loads(text(day)) == json.loads(text(long_ago)) and json.loads(text(hour)) == []
    assert bad.is_error and "neither a day (YYYY-MM-DD) nor a duration" in text(bad)
    assert "HTTP Request" not in log.read_text()
