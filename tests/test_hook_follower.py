"""The transcript follower, started detached by the real hook: lines reach the
server within a second with no hook firing, it survives kill -9 (a new one
resumes from the saved offsets), it shares offsets with the hooks (no line sent
twice, none skipped) and it stops after SessionEnd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from capture_helpers import (
    KAPACITOR,
    LiveSession,
    free_port,
    imported_events,
    interruptible,
    line_positions,
    live_events,
    run_hook,
    spooled,
    state_dir,
    wait_for,
)
from kapacitor.capture.hook import HOOK_BUDGET
from kapacitor.store import open_store

FOLLOW = {"KAPACITOR_FOLLOW": "1", "KAPACITOR_FOLLOW_IDLE": "20"}


def follower_pid(session_id: str) -> int | None:
    """The live follower's pid (it writes it into its lock file), else None."""
    try:
        pid = int((state_dir() / "sessions" / f"{session_id}.follow.lock").read_text())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (OSError, ValueError):
        return None
    return pid if b"kapacitor.capture.follower" in command and state != "Z" else None


def stored_lines(db, session_id: str) -> set[int]:
    store = open_store(f"sqlite://{db}")
    try:
        return {e.metadata["source"]["line"] for e in store.read_all()
                if e.stream == f"AgentSession-{session_id}" and ("raw" in e.metadata or "raw_b64" in e.metadata)}
    finally:
        store.close()


@pytest.fixture
def cleanup():
    sessions: list[str] = []
    yield sessions
    for sid in sessions:
        if pid := follower_pid(sid):
            os.kill(pid, signal.SIGKILL)


def test_follower_streams_without_hooks_and_survives_kill_9(tmp_path, live_server, cleanup):
    live = LiveSession(tmp_path / "projects")
    cleanup.append(live.session_id)
    live.write_main(0, 3)
    run_hook("SessionStart", live.payload("SessionStart", source="startup"), **FOLLOW)
    first = wait_for(lambda: follower_pid(live.session_id))
    want = {i for i in range(len(live.source_main)) if live.source_main[i].strip()}
    for stop in (8, 14, 20):  # a long turn: lines, no hooks (only the follower can deliver them; how fast is a
        live.write_main(stop - 6 if stop > 8 else 3, stop)  # figure for a benchmark, not a wall-time assert that flakes)
        wait_for(lambda stop=stop: {i for i in want if i < stop} <= stored_lines(live_server.store_path, live.session_id), timeout=60)
    os.kill(first, signal.SIGKILL)
    live.write_main(20, 30)  # written while no follower runs
    run_hook("UserPromptSubmit", live.payload("UserPromptSubmit", prompt="go on"), **FOLLOW)  # wakes a new one
    second = wait_for(lambda: follower_pid(live.session_id))
    assert second != first
    live.write_main(30)
    live.write_subagents()
    wait_for(lambda: want <= stored_lines(live_server.store_path, live.session_id))
    run_hook("SessionEnd", live.payload("SessionEnd", reason="other"), **FOLLOW)
    wait_for(lambda: follower_pid(live.session_id) is None)  # it stops after SessionEnd
    live_server.stop()
    assert live_events(live_server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


def test_follower_and_hooks_together_send_each_line_once(tmp_path, monkeypatch, cleanup):
    """Server down: every batch lands in the spool, so the spool shows exactly what
    the hooks and the follower read between them."""
    monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{free_port()}")
    live = LiveSession(tmp_path / "projects")
    cleanup.append(live.session_id)
    run_hook("SessionStart", live.payload("SessionStart"), **FOLLOW)
    wait_for(lambda: follower_pid(live.session_id))
    total = len(live.source_main)

    def hook(i: int) -> int:
        live.write_main(i * total // 12, (i + 1) * total // 12)
        time.sleep(0.05)
        return run_hook("PostToolUse", live.payload("PostToolUse", tool_use_id=f"t{i}"), **FOLLOW).returncode

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(hook, range(12))) == {0}
    run_hook("SessionEnd", live.payload("SessionEnd"), **FOLLOW)
    wait_for(lambda: follower_pid(live.session_id) is None)
    sent = [(line["o"], line["n"]) for b in spooled(live.session_id) for t in b["transcripts"] for line in t["lines"]]
    assert sorted(sent) == sent
    assert sent == line_positions(live.main)


def test_kapacitor_watch_follows_a_transcript_until_idle(tmp_path, live_server):
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 5)
    watch = subprocess.Popen([KAPACITOR, "watch", str(live.main), "--idle", "2"], stderr=subprocess.PIPE)
    try:
        want = {i for i, line in enumerate(live.source_main[:5]) if line.strip()}
        wait_for(lambda: want <= stored_lines(live_server.store_path, live.session_id))
        live.write_main(5)
        live.write_subagents()
        want = {i for i, line in enumerate(live.source_main) if line.strip()}
        wait_for(lambda: want <= stored_lines(live_server.store_path, live.session_id))
        assert watch.wait(timeout=15) == 0  # idle for 2 s: done
    finally:
        if watch.poll() is None:
            watch.kill()
        watch.communicate()
    live_server.stop()
    assert live_events(live_server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


def test_a_backlog_beyond_one_hooks_budget_is_caught_up_by_the_follower(tmp_path, live_server, cleanup):
    """A long session resumed after setup: the hook reads its budget and leaves the
    rest to the follower it starts."""
    session_id = "b1a5b1a5-0000-4000-8000-000000000001"
    cleanup.append(session_id)
    main = tmp_path / "projects" / "-work" / f"{session_id}.jsonl"
    main.parent.mkdir(parents=True)
    record = {"type": "user", "sessionId": session_id, "cwd": str(tmp_path), "timestamp": "2026-01-01T00:00:00Z",
              "message": {"role": "user", "content": "x" * 300}}
    main.write_text("".join(json.dumps({**record, "uuid": f"u-{i}"}) + "\n" for i in range(3000)))
    assert main.stat().st_size > 2 * HOOK_BUDGET
    payload = {"session_id": session_id, "transcript_path": str(main), "cwd": str(tmp_path)}
    run_hook("PostToolUse", payload)  # no follower yet: see what one hook reads
    state = json.loads((state_dir() / "sessions" / f"{session_id}.json").read_text())
    assert HOOK_BUDGET - 1000 < state["offsets"][str(main)][0] <= HOOK_BUDGET
    run_hook("PostToolUse", payload, **FOLLOW)
    wait_for(lambda: stored_lines(live_server.store_path, session_id) == set(range(3000)))


def test_kapacitor_watch_without_arguments_follows_recent_transcripts(tmp_path, live_server, monkeypatch):
    config = tmp_path / "claude"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    live = LiveSession(config / "projects")
    live.write_main(0, 8)
    watch = subprocess.Popen([KAPACITOR, "watch", "--idle", "30"], stderr=subprocess.PIPE, preexec_fn=interruptible)
    try:
        want = {i for i, line in enumerate(live.source_main[:8]) if line.strip()}
        wait_for(lambda: want <= stored_lines(live_server.store_path, live.session_id))
        assert watch.poll() is None  # a daemon: it keeps watching
    finally:
        watch.send_signal(signal.SIGINT)
        watch.communicate(timeout=10)
