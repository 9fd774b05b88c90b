"""The ingest API on the real server (``kapacitor serve`` on a 127.0.0.1 port):
hooks deliver live, a server that was down gets everything via the next hook and
``kapacitor sync``, bad requests get a clear 4xx and leave the store untouched,
and the bearer token is enforced."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time

from capture_helpers import (
    KAPACITOR,
    WIDGETS_DIR,
    LiveSession,
    Server,
    imported_events,
    live_events,
    run_hook,
    spooled,
    state_dir,
    wait_for,
)
from kapacitor.capture.aside import pending
from kapacitor.server.ingest import MAX_BODY
from kapacitor.store import open_store

URL = "/api/ingest/sessions/{}/batches"


def chat(server: Server, session_id: str) -> list[dict]:
    try:
        return server.get(f"/sessions/{session_id}/chat.json")  # type: ignore[return-value]
    except OSError:
        return []


def test_hooks_deliver_live_and_equal_import(tmp_path, live_server):
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 10)
    assert run_hook("UserPromptSubmit", live.payload("UserPromptSubmit", prompt="create hello.py and run it")).returncode == 0
    assert spooled(live.session_id) == []
    assert wait_for(lambda: "create hello.py and run it" in json.dumps(chat(live_server, live.session_id)))
    live.write_main(10)
    live.write_subagents()
    run_hook("SessionEnd", live.payload("SessionEnd", reason="other"))
    assert spooled(live.session_id) == []
    live_server.stop()
    assert live_events(live_server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")
    types = [e.type for e in open_store(f"sqlite://{live_server.store_path}").read_stream(f"AgentSession-{live.session_id}")]
    assert types.count("HookReceived") == 2 and types[-1] == "SessionEnded"


def test_server_down_then_sync_delivers_everything_in_order(tmp_path, monkeypatch):
    server = Server(tmp_path / "live.db")
    monkeypatch.setenv("KAPACITOR_SERVER", server.url)
    live = LiveSession(tmp_path / "projects")
    cuts = [len(live.source_main) * i // 4 for i in range(5)]
    for start, stop in zip(cuts, cuts[1:], strict=False):
        live.write_main(start, stop)
        run_hook("PostToolUse", live.payload("PostToolUse"))
    live.write_subagents()
    run_hook("Stop", live.payload("Stop"))
    assert len(spooled(live.session_id)) == 5
    down = subprocess.run([KAPACITOR, "sync"], capture_output=True, text=True)
    assert down.returncode == 1 and "still spooled" in down.stderr and "Traceback" not in down.stderr
    server.start()
    try:
        result = subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        [row] = json.loads(result.stdout)
        assert row["session_id"] == live.session_id and row["batches_sent"] == 5 and row["spooled_bytes_left"] == 0
        assert (state_dir() / "sessions" / f"{live.session_id}.spool").stat().st_size == 0
    finally:
        server.stop()
    assert live_events(server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")
    store = open_store(f"sqlite://{server.store_path}")
    hooks = [e.data["hook_event_name"] for e in store.read_all() if e.type == "HookReceived"]
    assert hooks == ["PostToolUse"] * 4 + ["Stop"]  # delivered in the order they fired


def test_next_hook_drains_the_spool_first(tmp_path, monkeypatch):
    server = Server(tmp_path / "live.db")
    monkeypatch.setenv("KAPACITOR_SERVER", server.url)
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 5)
    run_hook("PreToolUse", live.payload("PreToolUse", tool_use_id="a"))
    server.start()
    try:
        live.write_main(5, 8)
        run_hook("PostToolUse", live.payload("PostToolUse", tool_use_id="a"))
        assert (state_dir() / "sessions" / f"{live.session_id}.spool").stat().st_size == 0
        store = open_store(f"sqlite://{server.store_path}")
        hooks = [e.data["hook_event_name"] for e in store.read_all() if e.type == "HookReceived"]
        assert hooks == ["PreToolUse", "PostToolUse"]
        lines = [e.metadata["source"]["line"] for e in store.read_all() if "raw" in e.metadata or "raw_b64" in e.metadata]
        assert lines == sorted(lines) and set(lines) == {i for i in range(8) if live.source_main[i].strip()}
    finally:
        server.stop()


def test_bad_requests_get_4xx_and_never_touch_the_store(tmp_path, live_server):
    sid = "5e5510n-1"
    good = json.dumps({"v": 1, "session_id": sid, "hook": {"event": "Stop", "at": "2026-01-01T00:00:00Z", "payload": {"session_id": sid}}}).encode()
    assert live_server.post(URL.format(sid), good) == (200, {"added": 1, "skipped": 0})
    assert live_server.post(URL.format(sid), good) == (200, {"added": 0, "skipped": 1})  # a replay
    head = live_server.get("/healthz")["head"]  # type: ignore[index]
    cases = [
        (URL.format(sid), b"not json", 400, "not JSON"),
        (URL.format("other-session"), good, 422, "posted to 'other-session'"),
        (URL.format("bad%20id"), good, 400, "invalid session id"),
    ]
    for path, body, status, message in cases:
        code, answer = live_server.post(path, body)
        assert code == status and message in answer["detail"], (path, code, answer)
    status_line, answer = post_huge(live_server, URL.format(sid), MAX_BODY + 1)
    assert b" 413 " in status_line and b"limit" in answer
    assert live_server.get("/healthz")["head"] == head  # type: ignore[index]


def post_huge(server: Server, path: str, size: int) -> tuple[bytes, bytes]:
    """Announce a ``size``-byte body, send its first MB, read the answer (a server
    that reads it all before answering would make this time out)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        sock.sendall(head.encode() + b"{" + b" " * (1 << 20))
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    status_line, _, rest = response.partition(b"\r\n")
    return status_line, rest.partition(b"\r\n\r\n")[2]


def test_token_is_required_when_the_server_has_one(tmp_path, monkeypatch):
    server = Server(tmp_path / "live.db", KAPACITOR_TOKEN="t0ps3cret").start()
    try:
        body = json.dumps({"v": 1, "session_id": "s-1", "transcripts": []}).encode()
        assert server.post(URL.format("s-1"), body)[0] == 401
        assert server.post(URL.format("s-1"), body, {"Authorization": "Bearer nope"})[0] == 401
        assert server.post(URL.format("s-1"), body, {"Authorization": "Bearer t0ps3cret"})[0] == 200
        payload = {"session_id": "s-1", "transcript_path": str(tmp_path / "s-1.jsonl"), "cwd": str(tmp_path)}
        run_hook("Stop", payload, KAPACITOR_SERVER=server.url)  # no token: kept in the spool, in order
        assert len(spooled("s-1")) == 1 and pending("s-1") == []
        synced = subprocess.run([KAPACITOR, "sync"], capture_output=True, text=True,
                                env={**os.environ, "KAPACITOR_SERVER": server.url})
        assert synced.returncode == 1 and "answered HTTP 401: missing or wrong bearer token" in synced.stderr
        assert "refuses this machine's token" in synced.stderr  # and the fix (capture/refusals.py)
        run_hook("Stop", payload, KAPACITOR_SERVER=server.url, KAPACITOR_TOKEN="t0ps3cret")
        assert spooled("s-1") == []
        assert os.path.exists(state_dir() / "capture.log") and "401" in (state_dir() / "capture.log").read_text()
    finally:
        server.stop()


def test_a_batch_the_server_refuses_for_good_is_set_aside_and_does_not_block_the_rest(tmp_path, live_server):
    live = LiveSession(tmp_path / "projects")
    spool = state_dir() / "sessions" / f"{live.session_id}.spool"
    spool.parent.mkdir(parents=True)
    refused = b'{"v": 99, "session_id": "%s"}' % live.session_id.encode()  # e.g. from a newer client
    spool.write_bytes(refused + b"\n")
    live.write_main(0, 6)
    run_hook("Stop", live.payload("Stop"))
    assert spool.stat().st_size == 0
    aside = state_dir() / "sessions" / f"{live.session_id}.aside"
    assert f"refused for good, set aside in {aside}: HTTP 400" in (state_dir() / "capture.log").read_text()
    [kept] = [json.loads(line) for line in aside.read_bytes().splitlines()]
    assert kept["batch"] == json.loads(refused) and "unsupported batch version" in kept["reason"]
    store = open_store(f"sqlite://{live_server.store_path}")
    assert [e.data["hook_event_name"] for e in store.read_all() if e.type == "HookReceived"] == ["Stop"]
    store.close()
    synced = subprocess.run([KAPACITOR, "sync"], capture_output=True, text=True)
    assert synced.returncode == 0, synced.stderr  # everything deliverable was delivered
    assert "refused for good" in synced.stdout and "unsupported batch version" in synced.stdout and str(aside) in synced.stdout
    [row] = json.loads(subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True, check=True).stdout)
    assert [b["reason"] for b in row["set_aside"]] == [kept["reason"]] and row["spooled_bytes_left"] == 0


def test_a_server_too_slow_to_answer_costs_one_hook_a_second_then_none(tmp_path, live_server):
    """The store's write lock held elsewhere (a long import, say): ingest waits for
    it. The first hook gives up after 1 s and spools; the next ones, within the
    back-off, spool without trying; sync delivers all once the server answers."""
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 5)
    blocker = sqlite3.connect(live_server.store_path, timeout=1)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        run_hook("PreToolUse", live.payload("PreToolUse", tool_use_id="a"))
        assert time.monotonic() - started >= 1.0  # it waited its second (the lock is held until `finally`: the
        live.write_main(5, 10)  # server answers no sooner, and a hook that waited for it would still be waiting)
        run_hook("PostToolUse", live.payload("PostToolUse", tool_use_id="a"))
        assert len(spooled(live.session_id)) == 2
        log = (state_dir() / "capture.log").read_text()
        assert log.count("no answer within 1 s") == 1 and "spooled without trying" in log  # the second did not try
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert subprocess.run([KAPACITOR, "sync"], capture_output=True).returncode == 0
    assert not (state_dir() / "server-slow").exists()
    store = open_store(f"sqlite://{live_server.store_path}")
    hooks = [e.data["hook_event_name"] for e in store.read_all() if e.type == "HookReceived"]
    assert hooks == ["PreToolUse", "PostToolUse"]  # the first one once, though it reached the server twice
    store.close()


def test_sync_forgets_finished_sessions_after_a_while(tmp_path, live_server):
    done, live = LiveSession(tmp_path / "a"), LiveSession(tmp_path / "b", "922a15d3-3e4d-471a-9a7e-754f15615295", WIDGETS_DIR)
    done.write_all()
    run_hook("SessionEnd", done.payload("SessionEnd"))
    live.write_main(0, 3)
    run_hook("Stop", live.payload("Stop"))
    sessions = state_dir() / "sessions"
    fresh = json.loads(subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True, check=True).stdout)
    assert not any(r["forgotten"] for r in fresh)  # ended, but only just
    week_ago = time.time() - 8 * 86400
    for path in [*(tmp_path / "a").rglob("*.jsonl"), *(tmp_path / "b").rglob("*.jsonl")]:
        os.utime(path, (week_ago, week_ago))
    rows = {r["session_id"]: r for r in json.loads(subprocess.run([KAPACITOR, "sync", "--json"], capture_output=True, text=True, check=True).stdout)}
    assert rows[done.session_id]["forgotten"] and not rows[live.session_id]["forgotten"]  # that one has not ended
    assert sorted(p.name for p in sessions.iterdir() if p.name.startswith(done.session_id)) == [
        f"{done.session_id}.follow.lock", f"{done.session_id}.lock"]
    assert (sessions / f"{live.session_id}.json").exists()
