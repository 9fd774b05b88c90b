"""Nothing captured is stranded on a developer's machine: batches the server
refused are retried by themselves once the cause is gone, spools of sessions no
hook will wake again are delivered by another session's follower, and a full
disk or a crashed writer never costs a line. All through the real hook,
follower and ``kapacitor sync`` against the real ``kapacitor serve`` on loopback."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from collections import Counter

from capture_helpers import (
    KAPACITOR,
    WIDGETS_DIR,
    LiveSession,
    Server,
    capture_log,
    free_port,
    imported_events,
    live_events,
    run_hook,
    spooled,
    state_dir,
    wait_for,
)
from test_hook import down  # noqa: F401  (fixture)
from test_hook_follower import FOLLOW, cleanup, follower_pid  # noqa: F401  (fixture)

from kapacitor.capture import aside, client_config
from kapacitor.capture.client_config import ClientConfig
from kapacitor.capture.spool import spool_append
from kapacitor.store import open_store

OTHER = "922a15d3-3e4d-471a-9a7e-754f15615295"


def hooks_stored(db) -> list[str]:  # noqa: ANN001
    """The hook events in the store, in the order they arrived."""
    store = open_store(f"sqlite://{db}")
    try:
        return [e.data["hook_event_name"] for e in store.read_all() if e.type == "HookReceived"]
    finally:
        store.close()


def sync(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KAPACITOR, "sync", *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


def test_a_batch_refused_for_a_bad_token_arrives_by_itself_once_the_token_is_fixed(tmp_path, monkeypatch, cleanup):  # noqa: F811
    """A team server; the client's token was revoked. The hook's batch is
    refused (401) and set aside, the agent not held up. The token is replaced
    (`kapacitor setup` writes the config file): the next hook's batch is stored
    as the hook returns, and the set-aside one arrives with nobody running
    anything (the follower's sweep sees the config changed). Every event once,
    the same as an import of the transcripts."""
    server = Server(tmp_path / "live.db", None, KAPACITOR_TOKEN="team-token").start()
    try:
        client_config.save(ClientConfig(server.url, "revoked-token"))
        live = LiveSession(tmp_path / "projects")
        cleanup.append(live.session_id)
        live.write_main(0, 8)
        run_hook("UserPromptSubmit", live.payload("UserPromptSubmit", prompt="first, while the token is bad"), **FOLLOW)
        refused = aside.pending(live.session_id)
        assert [e.reason[:8] for e in refused] == ["HTTP 401"] and spooled(live.session_id) == []
        assert hooks_stored(server.store_path) == [] and wait_for(lambda: follower_pid(live.session_id))
        time.sleep(1.0)  # the follower sweeps with the bad token: not due, nothing retried
        assert len(aside.pending(live.session_id)) == 1 and hooks_stored(server.store_path) == []

        client_config.save(ClientConfig(server.url, "team-token"))  # the token is replaced
        live.write_main(8, 16)
        run_hook("PostToolUse", live.payload("PostToolUse", tool_use_id="toolu_live"), **FOLLOW)
        assert "PostToolUse" in hooks_stored(server.store_path)  # live: not held behind the set-aside batch
        wait_for(lambda: not aside.pending(live.session_id) and "UserPromptSubmit" in hooks_stored(server.store_path),
                 timeout=20)
        assert any("was delivered (the client's server or token changed)" in line for line in capture_log())

        live.write_main(16)
        live.write_subagents()
        run_hook("SessionEnd", live.payload("SessionEnd", reason="other"), **FOLLOW)
        wait_for(lambda: follower_pid(live.session_id) is None, timeout=20)
        assert (state_dir() / "sessions" / f"{live.session_id}.aside").stat().st_size == 0  # emptied once all done
    finally:
        server.stop()
    assert Counter(hooks_stored(server.store_path)) == {"UserPromptSubmit": 1, "PostToolUse": 1, "SessionEnd": 1}
    assert live_events(server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


def test_sync_lists_set_aside_batches_and_retry_sends_them_now(tmp_path, monkeypatch):
    """The server's token was fixed on the server, the client unchanged: nothing
    says the cause is gone, so the batch waits for its back-off; `sync --json`
    lists it with reason, age, size, attempts and next retry; `doctor` warns
    with the count and the oldest's age; `sync --retry` sends it now. A batch
    that is refused again counts an attempt and doubles its wait."""
    port = free_port()
    server = Server(tmp_path / "live.db", port, KAPACITOR_TOKEN="old-server-token").start()
    monkeypatch.setenv("KAPACITOR_SERVER", server.url)
    monkeypatch.setenv("KAPACITOR_TOKEN", "new-token")
    try:
        live = LiveSession(tmp_path / "projects")
        live.write_main(0, 6)
        run_hook("Stop", live.payload("Stop"))
        other = state_dir() / "sessions" / f"{OTHER}.spool"  # and a batch no server version takes
        other.write_bytes(b'{"v": 99, "session_id": "%s"}\n' % OTHER.encode())
        (state_dir() / "sessions" / f"{OTHER}.json").write_text(json.dumps({"session_id": OTHER}))
        server.stop()
        server = Server(tmp_path / "live.db", port, KAPACITOR_TOKEN="new-token").start()

        rows = {r["session_id"]: r for r in json.loads(sync("--json").stdout)}
        assert rows[live.session_id]["retried"] == [] and hooks_stored(server.store_path) == []  # not due yet
        [batch] = rows[live.session_id]["set_aside"]
        assert batch["reason"].startswith("HTTP 401") and batch["attempts"] == 0 and 0 <= batch["age_s"] < 60
        assert batch["bytes"] > 1000 and batch["path"].endswith(f"{live.session_id}.aside")
        assert abs(aside.epoch(batch["next_retry"]) - aside.epoch(batch["at"]) - aside.FIRST_WAIT) < 1
        [never] = rows[OTHER]["set_aside"]
        assert "unsupported batch version" in never["reason"]

        doctor = json.loads(subprocess.run([KAPACITOR, "doctor", "--json"], capture_output=True, text=True).stdout)
        [check] = [c for c in doctor if c["name"] == "set aside"]
        assert check["status"] == "warn" and check["detail"].startswith("2 batch(es) of 2 session(s)")
        assert "ago" in check["detail"] and "kapacitor sync --retry" in check["fix"]
        text = sync()
        assert text.returncode == 0 and "Set aside" in text.stdout and "kapacitor sync --retry" in text.stdout

        rows = {r["session_id"]: r for r in json.loads(sync("--retry", "--json").stdout)}
        assert [(t["outcome"], t["why"]) for t in rows[live.session_id]["retried"]] == [("sent", "asked to (--retry)")]
        assert rows[live.session_id]["set_aside"] == [] and hooks_stored(server.store_path) == ["Stop"]
        assert [t["outcome"] for t in rows[OTHER]["retried"]] == ["rejected"]
        [again] = rows[OTHER]["set_aside"]
        assert again["attempts"] == 1 and aside.epoch(again["next_retry"]) > time.time() + aside.FIRST_WAIT
        doctor = json.loads(subprocess.run([KAPACITOR, "doctor", "--json"], capture_output=True, text=True).stdout)
        assert [c["detail"][:28] for c in doctor if c["name"] == "set aside"] == ["1 batch(es) of 1 session(s) "]
    finally:
        server.stop()


def test_retries_back_off_doubling_up_to_a_day_unless_config_or_server_version_changed():
    at = "2026-01-01T00:00:00.000000Z"
    entry = aside.SetAside("p", 0, 10, {"at": at, "reason": "HTTP 413", "config": "c1", "version": "0.1.0"})
    start = aside.epoch(at)
    assert entry.why_due("c1", "0.1.0", start + aside.FIRST_WAIT - 1) == ""
    assert entry.why_due("c1", "0.1.0", start + aside.FIRST_WAIT) == "its back-off ran out"
    assert entry.why_due("c2", "0.1.0", start) == "the client's server or token changed"
    assert entry.why_due("c1", "0.2.0", start) == "the server's version changed (0.1.0 -> 0.2.0)"
    assert entry.why_due("c1", "", start) == ""  # the server's version unknown: no reason to think it changed
    waits = []
    for attempts in range(12):
        entry.attempts = attempts
        waits.append(entry.next_retry() - entry.last)
    assert waits[:4] == [300, 600, 1200, 2400] and max(waits) == aside.MOST_WAIT == waits[-1]


def test_a_session_that_ended_while_the_server_was_down_is_delivered_by_another_sessions_follower(
        tmp_path, monkeypatch, cleanup):  # noqa: F811
    """Session A ran and ended while the server was down: its spool holds it
    all and no hook of A will ever run again. The server comes back; session B
    starts: B's follower delivers A's spool (no `kapacitor sync`)."""
    server = Server(tmp_path / "live.db")
    monkeypatch.setenv("KAPACITOR_SERVER", server.url)
    ended = LiveSession(tmp_path / "a")
    ended.write_main(0, 10)
    run_hook("UserPromptSubmit", ended.payload("UserPromptSubmit", prompt="while the server is down"))
    ended.write_main(10)
    ended.write_subagents()
    run_hook("SessionEnd", ended.payload("SessionEnd", reason="other"))
    assert len(spooled(ended.session_id)) == 2
    server.start()
    try:
        later = LiveSession(tmp_path / "b", OTHER, WIDGETS_DIR)
        cleanup.append(later.session_id)
        later.write_main(0, 3)
        run_hook("SessionStart", later.payload("SessionStart", source="startup"), **FOLLOW)
        wait_for(lambda: spooled(ended.session_id) == [], timeout=20)
        wait_for(lambda: Counter(hooks_stored(server.store_path))["SessionEnd"] == 1, timeout=10)
        run_hook("SessionEnd", later.payload("SessionEnd", reason="other"), **FOLLOW)
        wait_for(lambda: follower_pid(later.session_id) is None, timeout=20)
    finally:
        server.stop()
    ours = {k: v for k, v in live_events(server.store_path).items() if ended.session_id in v[0] or "Subagent" in v[0]}
    theirs = imported_events([tmp_path / "a"], tmp_path / "imported.db")
    assert ours == theirs


def test_a_full_disk_while_spooling_loses_no_line(tmp_path, monkeypatch, down):
    """The server is down and the disk fills up while a hook spools its batch
    (the file size limit cuts the write short, as a full disk does): the cut
    batch is taken back and its lines stay unsent, so once there is room the
    next hook spools them, and everything arrives as an import gives it."""
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 5)
    run_hook("UserPromptSubmit", live.payload("UserPromptSubmit", prompt="before the disk fills"))
    spool = state_dir() / "sessions" / f"{live.session_id}.spool"
    before = spool.read_bytes()
    live.write_main(5, 20)  # more than the room left

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 2000, len(before) + 2000))

    full = subprocess.run([KAPACITOR, "hook", "PostToolUse"], input=json.dumps(live.payload("PostToolUse")).encode(),
                          capture_output=True, timeout=30, preexec_fn=full_disk,
                          env={**os.environ, "KAPACITOR_FOLLOW": "0"})
    assert full.returncode == 0 and full.stderr == b""  # the agent never notices
    assert spool.read_bytes() == before  # nothing half written
    run_hook("Stop", live.payload("Stop"))  # room again
    live.write_main(20)
    live.write_subagents()
    run_hook("SessionEnd", live.payload("SessionEnd", reason="other"))
    assert all(isinstance(batch, dict) for batch in spooled(live.session_id))
    server = Server(tmp_path / "live.db", int(os.environ["KAPACITOR_SERVER"].rsplit(":", 1)[1])).start()
    try:
        assert sync().returncode == 0
    finally:
        server.stop()
    assert live_events(server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


def test_a_spool_line_a_dead_writer_cut_short_does_not_swallow_the_next_batch():
    session = "0b7f3d1e-5a52-4c1a-9a51-2f0c0d6e4b11"
    spool_append(session, b'{"v":1,"session_id":"%s","transcripts":[]}' % session.encode())
    path = state_dir() / "sessions" / f"{session}.spool"
    whole = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(b'{"v":1,"session_id":"' + b"x" * 100_000)  # killed mid-write: no newline
    spool_append(session, b'{"v":1,"session_id":"%s","hook":null,"transcripts":[]}' % session.encode())
    lines = path.read_bytes().splitlines()
    assert path.read_bytes().startswith(whole) and len(lines) == 2 and all(json.loads(line) for line in lines)
