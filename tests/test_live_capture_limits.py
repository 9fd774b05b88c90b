"""Live capture at its limits, on the real server on loopback with the real hook,
follower and ``kapacitor sync``: a 63 MB transcript line (a 30 MB tool output)
and a hook payload carrying that output reach the store, and the hook never
makes the agent wait for them."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time

from capture_helpers import (
    KAPACITOR,
    LiveSession,
    capture_log,
    imported_events,
    live_events,
    run_hook,
    spooled,
    state_dir,
    wait_for,
)
from kapacitor.capture.spool import held_batch, send_lock
from kapacitor.store import open_store
from redaction_corpus import GHP

OUTPUT_LINES = 360_000  # ~30 MB of tool output; the transcript line holds it twice (content and toolUseResult)


def huge_tool_result(session_id: str, output: str) -> bytes:
    record = {
        "parentUuid": None, "isSidechain": False, "type": "user", "uuid": "7f0c5b1e-0000-4000-8000-00000000b16",
        "sessionId": session_id, "timestamp": "2026-05-01T10:00:00.000Z", "cwd": "/home/dev/src/widgets",
        "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_huge", "content": output}]},
        "toolUseResult": {"stdout": output, "stderr": "", "interrupted": False},
    }
    return json.dumps(record).encode() + b"\n"


def test_a_63_mb_line_reaches_the_store_and_no_hook_waits_for_it(tmp_path, live_server):
    live = LiveSession(tmp_path / "projects")
    output = "".join(f"line {i}: build output with \"quotes\", a tab\tand /home/dev/src/widgets/f_{i}.py\n" for i in range(OUTPUT_LINES))
    huge = huge_tool_result(live.session_id, output)
    assert len(huge) > 63_000_000
    live.write_main(0, 8)
    with live.main.open("ab") as handle:
        handle.write(huge)
    live.write_main(8)
    payload = live.payload("PostToolUse", tool_name="Bash", tool_use_id="toolu_huge", tool_response={"stdout": output})
    started = time.monotonic()
    assert run_hook("PostToolUse", payload, KAPACITOR_FOLLOW="1", KAPACITOR_FOLLOW_IDLE="30").returncode == 0
    hook_seconds = time.monotonic() - started
    assert hook_seconds < 5, hook_seconds  # it spooled the 30 MB payload and left both to the follower

    store = open_store(f"sqlite://{live_server.store_path}")

    def huge_result_stored() -> bool:
        return any(e.metadata.get("raw", "").encode() == huge.rstrip(b"\n") for e in store.read_all() if e.type == "ToolResultReceived")

    wait_for(huge_result_stored, timeout=240, interval=1)
    wait_for(lambda: any(e.type == "HookReceived" for e in store.read_all()), timeout=120, interval=1)
    [hook] = [e for e in store.read_all() if e.type == "HookReceived"]
    assert hook.data["extensions"]["claude_code"]["tool_response"]["stdout"] == output
    store.close()
    run_hook("SessionEnd", live.payload("SessionEnd", reason="other"))
    synced = subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stderr
    assert spooled(live.session_id) == [] and not (state_dir() / "sessions" / f"{live.session_id}.aside").exists()
    live_server.stop()
    assert live_events(live_server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


def test_a_huge_hook_payload_is_masked_off_the_agents_path_and_later_batches_do_not_wait(tmp_path, live_server):
    """The hook hands a 30 MB payload to a detached process and returns at once; a
    small hook fired right after it is stored at once, while the huge payload
    is still being masked, which is stored when done; and no byte of the
    secret in the output is ever written under the client's state dir (the
    spool, the held batch, the log), checked all along by a watcher."""
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 8)
    lines = [f"line {i}: build output with \"quotes\", a tab\tand /home/dev/src/widgets/f_{i}.py\n" for i in range(OUTPUT_LINES)]
    lines[OUTPUT_LINES // 2] = f"export GITHUB_TOKEN={GHP}\n"
    output = "".join(lines)
    secret = GHP.encode()
    leaks: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for path in state_dir().rglob("*"):
                try:
                    if path.is_file() and secret in path.read_bytes():
                        leaks.append(path.name)
                except OSError:
                    continue  # renamed or removed meanwhile
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        started = time.monotonic()
        huge = live.payload("PostToolUse", tool_name="Bash", tool_use_id="toolu_huge", tool_response={"stdout": output})
        assert run_hook("PostToolUse", huge, KAPACITOR_FOLLOW="1", KAPACITOR_FOLLOW_IDLE="30").returncode == 0
        huge_seconds = time.monotonic() - started
        small = live.payload("PostToolUse", tool_name="Bash", tool_use_id="toolu_small", tool_response={"stdout": "ok\n"})
        started = time.monotonic()
        assert run_hook("PostToolUse", small, KAPACITOR_FOLLOW="1", KAPACITOR_FOLLOW_IDLE="30").returncode == 0
        small_seconds = time.monotonic() - started
        assert huge_seconds < 5 and small_seconds < 5, (huge_seconds, small_seconds)
        masking = [b["held"] for b in spooled(live.session_id) if "held" in b and held_batch(live.session_id, b["held"]) is None]

        store = open_store(f"sqlite://{live_server.store_path}")
        stored_at_once = [e.data["extensions"]["claude_code"]["tool_use_id"] for e in store.read_all() if e.type == "HookReceived"]
        assert masking and stored_at_once == ["toolu_small"]  # it did not wait behind the payload being masked

        def both_hooks() -> list:
            hooks = [e for e in store.read_all() if e.type == "HookReceived"]
            return hooks if len(hooks) == 2 else []

        first, second = wait_for(both_hooks, timeout=240, interval=1)
        store.close()
        assert first.data["extensions"]["claude_code"]["tool_response"]["stdout"] == "ok\n"
        stored = second.data["extensions"]["claude_code"]["tool_response"]["stdout"]
        [marker] = set(re.findall(r"\[REDACTED [^\]]*\]", stored))
        assert GHP not in stored and stored == output.replace(GHP, marker)
        run_hook("SessionEnd", live.payload("SessionEnd", reason="other"))
        synced = subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True, timeout=300)
        assert synced.returncode == 0, synced.stderr
    finally:
        stop.set()
        watcher.join()
    assert leaks == []
    sessions = state_dir() / "sessions"
    assert spooled(live.session_id) == [] and not list(sessions.glob(f"{live.session_id}.held-*"))
    live_server.stop()
    assert live_events(live_server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


def test_a_hook_does_not_wait_for_the_send_lock_while_a_large_batch_is_uploaded(tmp_path, live_server):
    """While the detached process uploads a huge hook payload's masked batch
    (seconds) it holds the session's send lock; a hook fired then spools its
    payload at once, without waiting its second for the lock (it waited, then
    spooled), and logs why; nothing is lost and the batches are stored in the
    spool's order."""
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 8)
    output = "".join(f"line {i}: build output with \"quotes\", a tab\tand /home/dev/src/widgets/f_{i}.py\n" for i in range(OUTPUT_LINES))
    huge = live.payload("PostToolUse", tool_name="Bash", tool_use_id="toolu_huge", tool_response={"stdout": output})
    assert run_hook("PostToolUse", huge).returncode == 0

    def masked() -> bool:
        return any("held" in b and held_batch(live.session_id, b["held"]) for b in spooled(live.session_id))

    def lock_taken() -> bool:
        with send_lock(live.session_id, 0) as free:
            return not free

    wait_for(masked, timeout=240, interval=0.01)
    wait_for(lock_taken, timeout=60, interval=0.005)  # the detached process delivers it now: seconds of upload
    small = live.payload("PostToolUse", tool_name="Bash", tool_use_id="toolu_small", tool_response={"stdout": "ok\n"})
    assert run_hook("PostToolUse", small).returncode == 0
    log = "\n".join(capture_log())
    assert f"session {live.session_id}: process " in log
    assert "is uploading a large batch: spooled the hook's payload without waiting for the send lock" in log
    store = open_store(f"sqlite://{live_server.store_path}")

    def both_hooks() -> list:
        hooks = [e for e in store.read_all() if e.type == "HookReceived"]
        return hooks if len(hooks) == 2 else []

    wait_for(lambda: not lock_taken(), timeout=240, interval=0.05)
    synced = subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stderr
    first, second = wait_for(both_hooks, timeout=60, interval=0.5)
    store.close()
    assert [first.data["extensions"]["claude_code"]["tool_use_id"], second.data["extensions"]["claude_code"]["tool_use_id"]] == [
        "toolu_huge", "toolu_small"]  # the spool's order
    assert spooled(live.session_id) == []
