"""Recall at session start through the real ``kapacitor hook SessionStart``: it
prints the repository's facts as Claude Code's ``hookSpecificOutput`` (the
repository read from the git config, a worktree's too), counts the use, falls
back to the cached copy with the server down, and stays light to import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from capture_helpers import KAPACITOR, free_port, run_hook, wait_for
from kapacitor.capture import gitinfo

FACT = "run the greeter tests with make check-greeter"


def checkout(path, remote="git@github.com:acme/greeter.git"):  # noqa: ANN001
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "remote", "add", "origin", remote], check=True)
    return path


def post_fact(server, text: str, repo: str) -> None:  # noqa: ANN001
    body = json.dumps({"text": text, "repo": repo, "by": "person"}).encode()
    assert server.post("/api/memory/facts", body)[0] == 200


def session_start(cwd, session_id: str = "s-1") -> dict | None:  # noqa: ANN001
    result = run_hook("SessionStart", {"session_id": session_id, "transcript_path": "", "cwd": str(cwd),
                                       "hook_event_name": "SessionStart", "source": "startup"})
    assert result.returncode == 0 and result.stderr == b""
    return json.loads(result.stdout) if result.stdout else None


def api_facts(server, repo: str) -> list[dict]:  # noqa: ANN001
    return server.get(f"/api/memory/facts?repo={repo}")  # type: ignore[no-any-return]


def test_session_start_prints_the_repositorys_and_the_teams_facts(tmp_path, live_server):
    repo = checkout(tmp_path / "greeter")
    post_fact(live_server, FACT, "acme/greeter")
    post_fact(live_server, "we squash-merge", "org")
    post_fact(live_server, "another repository's fact", "acme/other")
    (repo / "src").mkdir()
    printed = session_start(repo / "src")  # a subdirectory of the checkout
    assert printed is not None and set(printed) == {"hookSpecificOutput"}
    output = printed["hookSpecificOutput"]
    assert output["hookEventName"] == "SessionStart"
    lines = output["additionalContext"].splitlines()
    assert lines[1:] == [f"- [note] {FACT}", "- [note, team] we squash-merge"]
    wait_for(lambda: api_facts(live_server, "acme/greeter")[0]["uses"] == 1)  # the use is counted
    assert api_facts(live_server, "acme/other")[0]["uses"] == 0


def test_a_project_without_a_github_remote_recalls_its_directorys_facts(tmp_path, live_server):
    """A directory with no GitHub remote is a project of its own, as in the session
    list: a fact kept for it (its absolute path, given with a trailing slash here)
    is recalled by a session started in it, and not by one in another directory."""
    project, elsewhere = tmp_path / "api-server", tmp_path / "scratch"
    project.mkdir(), elsewhere.mkdir()
    post_fact(live_server, FACT, f"{project}/")
    post_fact(live_server, "we squash-merge", "org")
    [kept] = api_facts(live_server, str(project))
    assert kept["scope"] == str(project)
    printed = session_start(project)
    assert printed is not None
    assert printed["hookSpecificOutput"]["additionalContext"].splitlines()[1:] == [f"- [note] {FACT}", "- [note, team] we squash-merge"]
    wait_for(lambda: api_facts(live_server, str(project))[0]["uses"] == 1)
    assert session_start(elsewhere)["hookSpecificOutput"]["additionalContext"].splitlines()[1:] == ["- [note, team] we squash-merge"]


def test_reading_the_recall_counts_nothing_only_the_hooks_post_does(tmp_path, live_server):
    """A GET (a person browsing the API, /docs "Try it out") changes nothing: the
    same context comes back, the store's head stays, no fact's use is counted."""
    post_fact(live_server, FACT, "acme/greeter")
    head = live_server.get("/healthz")["head"]
    for _ in range(2):
        preview = live_server.get("/api/memory/recall?repo=acme/greeter&session=s-9")
        assert FACT in preview["context"] and preview["facts"][0]["uses"] == 0
    assert live_server.get("/healthz")["head"] == head
    assert api_facts(live_server, "acme/greeter")[0]["uses"] == 0
    session_start(checkout(tmp_path / "greeter"))
    wait_for(lambda: api_facts(live_server, "acme/greeter")[0]["uses"] == 1)  # the hook's POST counts


def test_server_down_uses_the_cached_copy_else_prints_nothing(tmp_path, live_server, monkeypatch):
    repo = checkout(tmp_path / "greeter")
    post_fact(live_server, FACT, "acme/greeter")
    fresh = session_start(repo)
    monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{free_port()}")
    assert session_start(repo) == fresh  # the last copy the server gave
    other = checkout(tmp_path / "other", "https://github.com/acme/never-seen")
    assert session_start(other) is None  # nothing cached for it: nothing printed


def test_repository_is_read_from_the_git_config_of_a_worktree_too(tmp_path):
    main = checkout(tmp_path / "main", "https://github.com/acme/greeter.git")
    subprocess.run(["git", "-C", str(main), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run(["git", "-C", str(main), "worktree", "add", "-q", str(tmp_path / "wt")], check=True)
    assert gitinfo.repository_of(str(tmp_path / "wt")) == "acme/greeter"
    assert gitinfo.repository_of(str(main / "deep" / "er")) == "acme/greeter"
    assert gitinfo.repository_of(str(tmp_path)) is None


@pytest.mark.parametrize("status", [500, 401])
def test_a_refusing_server_falls_back_to_the_cache(tmp_path, status, monkeypatch):
    """(A loopback server of our own answering with an error status.)"""
    from kapacitor.capture import recall_hook

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):  # noqa: ANN002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        recall_hook.save("acme/greeter", "cached context")
        monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{httpd.server_address[1]}")
        assert session_start(checkout(tmp_path / "g"))["hookSpecificOutput"]["additionalContext"] == "cached context"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_session_start_imports_nothing_heavy(tmp_path, live_server):
    repo = checkout(tmp_path / "greeter")
    post_fact(live_server, FACT, "acme/greeter")
    payload = json.dumps({"session_id": "s-2", "transcript_path": "", "cwd": str(repo), "hook_event_name": "SessionStart"})
    result = subprocess.run([sys.executable, "-X", "importtime", KAPACITOR, "hook", "SessionStart"], input=payload.encode(),
                            capture_output=True, env={**os.environ, "KAPACITOR_FOLLOW": "0"})
    modules = {line.split("|")[-1].strip() for line in result.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "kapacitor.capture.recall_hook" in modules and FACT in result.stdout.decode()
    heavy = {"click", "rich", "orjson", "httpx", "mcp", "urllib.request", "urllib.parse", "http.client", "subprocess",
             "kapacitor.memory", "kapacitor.store", "kapacitor.normalize.claude_code"}
    assert not heavy & modules, heavy & modules


def test_the_recall_endpoint_needs_the_token(tmp_path):
    from capture_helpers import Server

    server = Server(tmp_path / "t.db", KAPACITOR_TOKEN="tok").start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            server.get("/api/memory/recall?repo=acme/greeter")
        assert refused.value.code == 401
        refused.value.close()
    finally:
        server.stop()
