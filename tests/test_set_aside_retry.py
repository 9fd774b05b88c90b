"""Nothing captured is stranded on a developer's machine: batches the server
refused are retried by themselves once the cause is gone, spools of sessions no
hook will wake again are delivered by another session's follower, and a full
disk or a crashed writer never costs a line. All through the real hook,
follower and ``kapacitor sync`` against the real ``kapacitor serve`` on loopback."""

from __future__ import annotations

import http.server
import json
import os
import resource
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

from test_hook_follower import FOLLOW, cleanup, follower_pid  # noqa: F401  (fixture)

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


class BodyLimitProxy:
    """A reverse proxy in front of the server with a body size limit, as nginx's
    ``client_max_body_size`` (an outside service, so a small loopback one of
    our own): 413 above ``limit`` bytes, anything else forwarded as it is."""

    def __init__(self, upstream: str, limit: int):
        self.upstream, self.limit = upstream, limit
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.forward(b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if len(body) > proxy.limit:
                    self.answer(413, b"<html><center><h1>413 Request Entity Too Large</h1></center></html>")
                else:
                    self.forward(body)

            def forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "content-encoding", "authorization")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body or None, headers=headers,
                                                 method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        self.answer(response.status, response.read())
                except urllib.error.HTTPError as exc:
                    self.answer(exc.code, exc.read())

            def answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_token_refused_keeps_the_spool_in_order_and_it_arrives_by_itself_once_the_token_is_replaced(
        tmp_path, cleanup):  # noqa: F811
    """A team server; the client's token was revoked. Every batch is refused
    (401), so they wait in the spool in the order written (nothing overtakes:
    the session's events and chat come out as written). The token is replaced
    (`kapacitor setup` writes the config file) and nobody runs anything: the
    running follower reads the new token and delivers the spool; the next live
    batch is stored as its hook returns. Every event once, the same events and
    the same chat as an import of the transcripts."""
    server = Server(tmp_path / "live.db", None, KAPACITOR_TOKEN="team-token").start()
    try:
        client_config.save(ClientConfig(server.url, "revoked-token"))
        live = LiveSession(tmp_path / "projects")
        cleanup.append(live.session_id)
        live.write_main(0, 8)
        run_hook("UserPromptSubmit", live.payload("UserPromptSubmit", prompt="first, while the token is bad"), **FOLLOW)
        wait_for(lambda: follower_pid(live.session_id))
        live.write_main(8, 16)  # the agent goes on; the follower reads the lines, refused as well
        wait_for(lambda: len(spooled(live.session_id)) >= 2)
        assert hooks_stored(server.store_path) == [] and aside.pending(live.session_id) == []
        assert any("HTTP 401" in line for line in capture_log())

        client_config.save(ClientConfig(server.url, "team-token"))  # the token is replaced; no hook runs
        wait_for(lambda: spooled(live.session_id) == [] and hooks_stored(server.store_path) == ["UserPromptSubmit"],
                 timeout=20)
        live.write_main(16, 24)
        run_hook("PostToolUse", live.payload("PostToolUse", tool_use_id="toolu_live"), **FOLLOW)
        assert hooks_stored(server.store_path) == ["UserPromptSubmit", "PostToolUse"]  # live, as the hook returns
        live.write_main(24)
        live.write_subagents()
        run_hook("SessionEnd", live.payload("SessionEnd", reason="other"), **FOLLOW)
        wait_for(lambda: follower_pid(live.session_id) is None)
        live_chat = server.get(f"/sessions/{live.session_id}/chat.json")
    finally:
        server.stop()
    assert Counter(hooks_stored(server.store_path)) == {"UserPromptSubmit": 1, "PostToolUse": 1, "SessionEnd": 1}
    assert live_events(server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")
    imported = Server(tmp_path / "imported.db").start().caught_up()  # its read models are built on start
    try:
        assert live_chat == imported.get(f"/sessions/{live.session_id}/chat.json")
    finally:
        imported.stop()


def test_a_batch_refused_for_good_is_set_aside_listed_and_retried_when_the_config_changes(tmp_path, monkeypatch, cleanup):  # noqa: F811
    """The team server sits behind a proxy with a small body limit: one batch
    is refused (413) and set aside; the batches after it are delivered (not
    blocked). `sync --json` lists it with reason, age, size, attempts and next
    retry; `doctor` warns with the count and the oldest's age; nothing says the
    cause is gone, so `sync` leaves it to its back-off; `sync --retry` tries it
    now (refused again: one attempt, the wait doubled). The client is then
    pointed at the server itself: the next session follower's sweep delivers
    it with nobody asking. Every event once, the events of an import."""
    server = Server(tmp_path / "live.db").start()
    proxy = BodyLimitProxy(server.url, 6000)
    try:
        client_config.save(ClientConfig(proxy.url, ""))
        live = LiveSession(tmp_path / "projects")
        cleanup.append(live.session_id)
        live.write_main(0, 3)
        run_hook("UserPromptSubmit", live.payload("UserPromptSubmit", prompt="hello"))
        live.write_main(3, 20)  # ~22 kB of lines: over the proxy's limit
        run_hook("PostToolUse", live.payload("PostToolUse", tool_use_id="toolu_big"))
        live.write_main(20, 24)
        run_hook("Stop", live.payload("Stop"))
        assert hooks_stored(server.store_path) == ["UserPromptSubmit", "Stop"]  # the one after it was not blocked
        assert spooled(live.session_id) == []
        other = state_dir() / "sessions" / f"{OTHER}.spool"  # and a batch no server version takes
        other.write_bytes(b'{"v": 99, "session_id": "%s"}\n' % OTHER.encode())
        (state_dir() / "sessions" / f"{OTHER}.json").write_text(json.dumps({"session_id": OTHER}))

        rows = {r["session_id"]: r for r in json.loads(sync("--json").stdout)}
        assert rows[live.session_id]["retried"] == []  # not due: no sign the cause is gone
        [batch] = rows[live.session_id]["set_aside"]
        assert batch["reason"].startswith("HTTP 413") and batch["attempts"] == 0 and 0 <= batch["age_s"] < 60
        assert batch["bytes"] > 6000 and batch["path"].endswith(f"{live.session_id}.aside")
        assert abs(aside.epoch(batch["next_retry"]) - aside.epoch(batch["at"]) - aside.FIRST_WAIT) < 1
        [never] = rows[OTHER]["set_aside"]
        assert "unsupported batch version" in never["reason"]

        doctor = json.loads(subprocess.run([KAPACITOR, "doctor", "--json"], capture_output=True, text=True).stdout)
        [check] = [c for c in doctor if c["name"] == "set aside"]
        assert check["status"] == "warn" and check["detail"].startswith("2 batch(es) of 2 session(s)")
        assert " ago (session " in check["detail"] and "kapacitor sync --retry" in check["fix"]
        text = sync()
        assert text.returncode == 0 and "Set aside" in text.stdout and "HTTP 413" in text.stdout

        rows = {r["session_id"]: r for r in json.loads(sync("--retry", "--json").stdout)}
        assert [(t["outcome"], t["why"]) for t in rows[live.session_id]["retried"]] == [("rejected", "asked to (--retry)")]
        [again] = rows[live.session_id]["set_aside"]
        assert again["attempts"] == 1 and aside.epoch(again["next_retry"]) > time.time() + aside.FIRST_WAIT
        assert hooks_stored(server.store_path) == ["UserPromptSubmit", "Stop"]

        client_config.save(ClientConfig(server.url, ""))  # the client now talks to the server itself
        live.write_main(24, 30)
        run_hook("UserPromptSubmit", live.payload("UserPromptSubmit", prompt="go on"), **FOLLOW)
        wait_for(lambda: not aside.pending(live.session_id))
        wait_for(lambda: any("was delivered (the client's server or token changed)" in line for line in capture_log()))
        live.write_main(30)
        live.write_subagents()
        run_hook("SessionEnd", live.payload("SessionEnd", reason="other"), **FOLLOW)
        wait_for(lambda: follower_pid(live.session_id) is None)
        assert (state_dir() / "sessions" / f"{live.session_id}.aside").stat().st_size == 0  # emptied once all done
        assert [r["session_id"] for r in json.loads(sync("--json").stdout) if r["set_aside"]] == [OTHER]
    finally:
        proxy.close()
        server.stop()
    assert Counter(hooks_stored(server.store_path)) == {"UserPromptSubmit": 2, "PostToolUse": 1, "Stop": 1, "SessionEnd": 1}
    assert live_events(server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


def test_a_set_aside_batch_is_retried_when_the_server_reports_another_version(tmp_path, monkeypatch):
    """The server is upgraded (the real server, its version string changed
    before it starts, as a new release would): the next sweep or sync sees
    `/healthz` report another version and retries the set-aside batch at once,
    back-off or not."""
    port = free_port()
    server = Server(tmp_path / "live.db", port).start()
    monkeypatch.setenv("KAPACITOR_SERVER", server.url)
    try:
        spool = state_dir() / "sessions" / f"{OTHER}.spool"
        spool.parent.mkdir(parents=True)
        spool.write_bytes(b'{"v": 99, "session_id": "%s"}\n' % OTHER.encode())
        (state_dir() / "sessions" / f"{OTHER}.json").write_text(json.dumps({"session_id": OTHER}))
        [row] = json.loads(sync("--json").stdout)
        assert row["retried"] == [] and [b["attempts"] for b in row["set_aside"]] == [0]
        assert aside.pending(OTHER)[0].version == "0.1.0"  # learnt from /healthz on the first look
        server.stop()
        upgrade = tmp_path / "upgrade"
        upgrade.mkdir()
        (upgrade / "sitecustomize.py").write_text("import kapacitor\nkapacitor.__version__ = '0.2.0'\n")
        server = Server(tmp_path / "live.db", port, PYTHONPATH=str(upgrade)).start()
        assert server.get("/healthz")["version"] == "0.2.0"
        [row] = json.loads(sync("--json").stdout)
        assert [(t["why"], t["outcome"]) for t in row["retried"]] == [
            ("the server's version changed (0.1.0 -> 0.2.0)", "rejected")]  # this one no version takes
        assert [(b["attempts"], b["reason"][:8]) for b in row["set_aside"]] == [(1, "HTTP 400")]
        assert json.loads(sync("--json").stdout)[0]["retried"] == []  # now it waits for its back-off
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
        wait_for(lambda: spooled(ended.session_id) == [])
        wait_for(lambda: Counter(hooks_stored(server.store_path))["SessionEnd"] == 1)
        run_hook("SessionEnd", later.payload("SessionEnd", reason="other"), **FOLLOW)
        wait_for(lambda: follower_pid(later.session_id) is None)
    finally:
        server.stop()
    ours = {k: v for k, v in live_events(server.store_path).items() if ended.session_id in v[0] or "Subagent" in v[0]}
    theirs = imported_events([tmp_path / "a"], tmp_path / "imported.db")
    assert ours == theirs


def test_a_full_disk_while_spooling_loses_no_line(tmp_path, monkeypatch):
    """The server is down and the disk fills up while a hook spools its batch
    (the file size limit cuts the write short, as a full disk does): the cut
    batch is taken back and its lines stay unsent, so once there is room the
    next hook spools them, and everything arrives as an import gives it."""
    monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{free_port()}")  # down
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
