"""End to end with the real Claude Code CLI: ``kapacitor setup`` into a temporary
HOME, scripted sessions against the fake model, the real ``kapacitor serve``.

(a) the session is on the server while it runs (read through the JSON API while
    the fake model holds the client mid-session);
(b) with the server down for the whole session, ``kapacitor sync`` afterwards
    delivers it all: the events equal an import of the finished transcripts;
(c) the server killed (-9) mid-session and restarted later: nothing is lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from capture_helpers import KAPACITOR, Server, imported_events, live_events, state_dir, wait_for
from claude_client import CLAUDE, VERSION, finish, git_repo, start
from fake_model import FakeModel
from kapacitor.store import open_store

pytestmark = pytest.mark.e2e
PROMPT = "create greet.py, run it and get it reviewed"
SKIP_PERMISSIONS = "--dangerously-skip-permissions"


@pytest.fixture
def client(isolated_home):
    if not CLAUDE.exists():
        pytest.fail(f"Claude Code {VERSION} is not installed at {CLAUDE}: run ./scripts/test, which installs it")
    yield isolated_home
    for lock in (state_dir() / "sessions").glob("*.follow.lock"):  # no follower outlives its test
        try:
            os.kill(int(lock.read_text()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def followers_done() -> bool:
    for lock in (state_dir() / "sessions").glob("*.follow.lock"):
        try:
            pid = int(lock.read_text())
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z":
                return False
        except (OSError, ValueError):
            continue
    return True


def setup(server_url: str) -> None:
    subprocess.run([KAPACITOR, "setup", "--server", server_url], check=True, capture_output=True)


def transcripts(home: Path) -> Path:
    return home / ".claude" / "projects"


def session_id_of(home: Path) -> str:
    [main] = transcripts(home).glob("*/*.jsonl")
    return main.stem


def chat(server: Server, session_id: str) -> list[dict]:
    try:
        return server.get(f"/sessions/{session_id}/chat.json")  # type: ignore[return-value]
    except OSError:
        return []


def tools(items: list[dict]) -> list[dict]:
    return [item["tool"] for item in items if item.get("kind") == "tool"]


def mid_session_complete(items: list[dict]) -> bool:
    """The prompt, the four tool calls before the hold with their results, the
    subagent with its own tool call and answer."""
    calls = tools(items)
    names = [c["name"] for c in calls]
    agent = next((c for c in calls if c["name"] in ("Agent", "Task")), None)
    return (
        any(i.get("kind") == "prompt" and PROMPT in i.get("text", "") for i in items)
        and names[:4] == ["Write", "Bash", agent["name"] if agent else "Agent", "Bash"]
        and all("result" in c for c in calls[:4])
        and calls[3].get("is_error") is True
        and bool(agent and agent.get("subagent"))
        and [c["name"] for c in tools(agent["subagent"]["items"])] == ["Read"]
        and any(i.get("kind") == "text" and "no problems" in i.get("text", "") for i in agent["subagent"]["items"])
    )


@pytest.fixture
def greeter(tmp_path, client):
    """The "session" scenario started with the hooks sending to a live server,
    held by the fake model at the turn named "middle"."""
    server = Server(tmp_path / "live.db").start()
    fake = FakeModel("session", {"CWD": str(tmp_path / "work" / "greeter")})
    setup(server.url)
    repo = git_repo(tmp_path / "work" / "greeter")
    proc = start(PROMPT, repo, fake.url, SKIP_PERMISSIONS)
    try:
        wait_for(lambda: fake.is_holding("middle"), timeout=90)
        yield server, fake, repo, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        fake.close()
        server.stop()


def test_a_session_is_on_the_server_while_it_runs(tmp_path, client, greeter):
    server, fake, repo, proc = greeter
    session_id = session_id_of(client)
    items = wait_for(lambda: mid_session_complete(chat(server, session_id)) and chat(server, session_id))
    assert not any(c["name"] == "Read" for c in tools(items))  # what the held turn will do is not there yet
    fake.release("middle")
    wait_for(lambda: fake.is_holding("late"), timeout=60)
    wait_for(lambda: any(c["name"] == "Read" and "result" in c for c in tools(chat(server, session_id))))
    fake.release("late")
    assert finish(proc) == session_id
    assert finish(start("/compact", repo, fake.url, SKIP_PERMISSIONS, resume=session_id)) == session_id
    wait_for(followers_done)
    server.stop()
    assert live_events(server.store_path) == imported_events([transcripts(client)], tmp_path / "imported.db")
    live, imported = session_row(server.store_path), session_row(tmp_path / "imported.db")
    assert without_hooks(live) == without_hooks(imported)  # started, ended, duration, events, tokens, cost: every figure
    assert live.get("hook_events", 0) > 0 and imported.get("hook_events") == 0
    store = open_store(f"sqlite://{server.store_path}")
    hooks = {e.data["hook_event_name"] for e in store.read_all() if e.type == "HookReceived"}
    assert {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure", "Stop",
            "SubagentStart", "SubagentStop", "PreCompact", "SessionEnd"} <= hooks
    types = {e.type for e in store.read_all()}
    assert {"ContextCompacted", "SubagentStarted", "SubagentCompleted", "SessionEnded"} <= types, types
    store.close()


def session_row(db: Path) -> dict:
    """The one session of a store, as ``kapacitor sessions --json`` shows it."""
    done = subprocess.run([KAPACITOR, "--store", f"sqlite://{db}", "sessions", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    return row


def without_hooks(row: dict) -> dict:
    """A session row less what only live capture's hooks can say."""
    return {k: v for k, v in row.items() if k != "hook_events"}


def test_b_server_down_for_the_whole_session_then_sync(tmp_path, client):
    server = Server(tmp_path / "live.db")
    fake = FakeModel("denied", {"CWD": str(tmp_path / "work" / "notes")})
    try:
        setup(server.url)  # nothing listens there yet
        repo = git_repo(tmp_path / "work" / "notes")
        session_id = finish(start("write my todo list and archive the old notes", repo, fake.url, "--permission-mode", "default"))
        finish(start("fail this request", repo, fake.url, "--permission-mode", "default", resume=session_id), ok=False)
        wait_for(followers_done)
        down = subprocess.run([KAPACITOR, "sync"], capture_output=True, text=True)
        assert down.returncode == 1 and "still spooled" in down.stderr
        server.start()
        synced = subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True)
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)[0]["spooled_bytes_left"] == 0
    finally:
        fake.close()
        server.stop()
    assert live_events(server.store_path) == imported_events([transcripts(client)], tmp_path / "imported.db")
    assert without_hooks(session_row(server.store_path)) == without_hooks(session_row(tmp_path / "imported.db"))
    store = open_store(f"sqlite://{server.store_path}")
    events = store.read_all()
    denied = [e for e in events if e.type == "InterruptResolved" and e.data["outcome"] == "denied"]
    results = [e.data["result"][:80] for e in events if e.type == "ToolResultReceived"]
    assert len(denied) == 2, results
    assert any(e.type == "ApiErrorOccurred" for e in events)
    assert [e.data["hook_event_name"] for e in events if e.type == "HookReceived"].count("SessionStart") == 2
    store.close()


def test_c_server_killed_mid_session_and_restarted_loses_nothing(tmp_path, client, greeter):
    server, fake, _, proc = greeter
    server.stop(signal.SIGKILL)
    fake.release("middle")  # the Read call and its hooks happen while the server is dead
    wait_for(lambda: fake.is_holding("late"), timeout=60)
    server.start()
    fake.release("late")
    session_id = finish(proc)
    wait_for(followers_done)
    assert (state_dir() / "sessions" / f"{session_id}.spool").stat().st_size == 0
    server.stop()
    assert live_events(server.store_path) == imported_events([transcripts(client)], tmp_path / "imported.db")


def test_the_plugin_passes_the_real_clients_validation(client):
    plugin = Path(__file__).resolve().parents[2] / "plugin"
    result = subprocess.run([str(CLAUDE), "plugin", "validate", str(plugin)], capture_output=True, text=True,
                            env={**os.environ, "IS_SANDBOX": "1"}, timeout=60)
    assert result.returncode == 0 and "Validation passed" in result.stdout, result.stdout + result.stderr
