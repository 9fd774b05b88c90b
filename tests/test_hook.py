"""``kapacitor hook``: the real command, server down (the server-up path is in
test_ingest_live.py): payload and complete transcript lines go to the spool,
offsets move past exactly what was spooled, bad input is logged and exits 0,
and nothing heavy is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import platformdirs
import pytest

from capture_helpers import (
    KAPACITOR,
    LIVE_ONLY,
    LiveSession,
    capture_log,
    free_port,
    imported_events,
    line_positions,
    live_events,
    run_hook,
    spooled,
    state_dir,
    wait_for,
)
from kapacitor.capture import client_config, hook, layout
from redaction_corpus import GHP


@pytest.fixture
def down(monkeypatch):
    """A server URL where nothing listens."""
    monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{free_port()}")


def lines_of(batches: list[dict], path: str) -> list[tuple[int, int]]:
    return [(line["o"], line["n"]) for b in batches for t in b["transcripts"] if t["path"] == path for line in t["lines"]]


def test_server_down_spools_payload_and_complete_lines_only(tmp_path, down):
    live = LiveSession(tmp_path)
    live.write_main(0, 5)
    partial = live.source_main[5][:40]  # the client is still writing line 6
    with live.main.open("ab") as handle:
        handle.write(partial)
    result = run_hook("PostToolUse", live.payload("PostToolUse", tool_name="Bash"))
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b""
    [batch] = spooled(live.session_id)
    assert batch["hook"]["event"] == "PostToolUse" and batch["hook"]["payload"]["tool_name"] == "Bash"
    offsets = [sum(map(len, live.source_main[:i])) for i in range(5)]
    assert lines_of([batch], str(live.main)) == [(offsets[i], i) for i in range(5)]
    assert [t["lines"][0]["t"].encode() + b"\n" for t in batch["transcripts"]] == [live.source_main[0]]
    assert batch["context"]["user"]  # git context for SessionStarted, worked out on the client
    state = json.loads((state_dir() / "sessions" / f"{live.session_id}.json").read_text())
    assert state["offsets"][str(live.main)] == [sum(map(len, live.source_main[:5])), 5]
    [logged] = capture_log()
    assert "Connection refused" in logged and live.session_id in logged

    with live.main.open("ab") as handle:  # the line completes, more follow
        handle.write(live.source_main[5][40:])
        handle.writelines(live.source_main[6:9])
    run_hook("Stop", live.payload("Stop"))
    first, second = spooled(live.session_id)
    assert first == batch
    assert lines_of([second], str(live.main)) == [(sum(map(len, live.source_main[:i])), i) for i in range(5, 9)]


def test_subagent_transcripts_are_sent_with_their_meta(tmp_path, down):
    live = LiveSession(tmp_path)
    live.write_all()
    run_hook("SubagentStop", live.payload("SubagentStop"))
    [batch] = spooled(live.session_id)
    main, sub = batch["transcripts"]
    assert main["path"] == str(live.main) and "meta" not in main
    assert layout.identity(sub["path"]) == (live.session_id, "aaa13d7d127c8c4a2")
    assert sub["meta"]["agentType"] == "general-purpose" and sub["meta"]["toolUseId"]
    assert len(sub["lines"]) == len([x for x in live.source_subs["agent-aaa13d7d127c8c4a2.jsonl"] if x.strip()])
    run_hook("Stop", live.payload("Stop"))  # nothing new: only the payload
    assert spooled(live.session_id)[1]["transcripts"] == []


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        (b"{not json", "payload is not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"session_id": "../../etc/passwd", "transcript_path": "/x.jsonl"}).encode(), "no valid session_id"),
        (json.dumps({"transcript_path": "/x.jsonl"}).encode(), "no valid session_id"),
    ],
)
def test_bad_payloads_are_logged_and_exit_0(stdin, message, down):
    result = run_hook("PreToolUse", stdin)
    assert result.returncode == 0 and result.stderr == b""
    [logged] = capture_log()
    assert message in logged
    assert not (state_dir() / "sessions").exists() or not list((state_dir() / "sessions").glob("*.spool"))


def test_missing_transcript_still_spools_the_payload(tmp_path, down):
    payload = {"session_id": "s-1", "transcript_path": str(tmp_path / "gone" / "s-1.jsonl"), "cwd": str(tmp_path)}
    assert run_hook("SessionStart", payload).returncode == 0
    [batch] = spooled("s-1")
    assert batch["hook"]["payload"] == payload and batch["transcripts"] == []


def test_concurrent_hooks_neither_duplicate_nor_skip_a_line(tmp_path, down):
    live = LiveSession(tmp_path)
    total = len(live.source_main)

    def hook(i: int) -> int:
        live.write_main(i * total // 16, (i + 1) * total // 16)
        return run_hook("PreToolUse", live.payload("PreToolUse", tool_use_id=f"t{i}")).returncode

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(hook, range(16))) == {0}
    run_hook("Stop", live.payload("Stop"))
    batches = spooled(live.session_id)
    sent = lines_of(batches, str(live.main))
    assert sorted(sent) == line_positions(live.main)  # every line exactly once
    assert sent == sorted(sent)  # and in file order
    assert sorted(b["hook"]["payload"].get("tool_use_id", "") for b in batches) == sorted([f"t{i}" for i in range(16)] + [""])


HEAVY = {"click", "rich", "orjson", "platformdirs", "http.client", "urllib.request", "dataclasses", "pathlib",
         "typing", "subprocess", "getpass", "ahocorasick_rs", "base64", "kapacitor.cli", "kapacitor.normalize.claude_code",
         "kapacitor.normalize.rule_anchors", "kapacitor.store"}


def imported_by_hook(event: str, payload: dict) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", KAPACITOR, "hook", event],
        input=json.dumps(payload).encode(), capture_output=True, env={**os.environ, "KAPACITOR_FOLLOW": "0"},
    )
    assert result.returncode == 0
    return {line.split("|")[-1].strip() for line in result.stderr.decode().splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("event", hook.EVENTS)
def test_every_hook_event_imports_nothing_heavy_first_batch_included(event, tmp_path, down):
    """A session's first batch works out the git context and masks secrets too:
    still stdlib only, no git subprocess (``subprocess`` never imported)."""
    live = LiveSession(tmp_path)
    live.write_main(0, 3)
    first = imported_by_hook(event, live.payload(event))
    live.write_main(3, 6)
    later = imported_by_hook(event, live.payload(event))
    assert "kapacitor.capture.hook" in first and "kapacitor.normalize.redact" in first
    assert not HEAVY & first, HEAVY & first
    assert not HEAVY & later, HEAVY & later
    [batch, _] = spooled(live.session_id)
    assert batch["context"]["user"] and batch["transcripts"][0]["lines"]


def big_output(secret: str) -> str:
    """Over 1 MB of build output (the size the shipper once switched to
    ``ahocorasick_rs`` for) with a secret in the middle."""
    lines = [f"line {i}: build output with \"quotes\", a tab\tand /home/dev/src/widgets/f_{i}.py\n" for i in range(30_000)]
    lines.insert(15_000, f"export GITHUB_TOKEN={secret}\n")
    return "".join(lines)


RECORD_IMPORTS = """import os, sys
class Recorder:  # every module imported from here on, by this process and the ones it forks
    def find_spec(self, name, path=None, target=None):
        with open(os.environ["IMPORTS_LOG"], "a") as log:  # reopened: a detached fork closes inherited files
            log.write(name + "\\n")
sys.meta_path.insert(0, Recorder())
sys.argv = sys.argv[1:]
with open(sys.argv[0]) as script:
    exec(compile(script.read(), sys.argv[0], "exec"), {"__name__": "__main__"})
"""


def held_batches(session_id: str) -> list[dict]:
    """The session's spooled batches, a held place replaced by the batch written for it."""
    sessions = state_dir() / "sessions"
    return [json.loads((sessions / f"{session_id}.held-{b['held']}").read_bytes()) if "held" in b else b
            for b in spooled(session_id)]


def test_a_big_batch_is_masked_with_the_standard_library_only(tmp_path, down):
    """A hook carrying a 2 MB tool output (masked by the process it hands it to)
    and the follower reading a 2 MB transcript line mask them (``KeywordScan``)
    without importing anything heavy, and write no secret to the spool."""
    live = LiveSession(tmp_path)
    live.write_main(0, 3)
    output = big_output(GHP)
    assert len(output) > 2_000_000
    payload = live.payload("PostToolUse", tool_name="Bash", tool_use_id="toolu_big", tool_response={"stdout": output})
    log = tmp_path / "imports.log"
    ran = subprocess.run([sys.executable, "-c", RECORD_IMPORTS, KAPACITOR, "hook", "PostToolUse"], input=json.dumps(payload).encode(),
                         capture_output=True, env={**os.environ, "KAPACITOR_FOLLOW": "0", "IMPORTS_LOG": str(log)}, timeout=60)
    assert ran.returncode == 0, ran.stderr[-2000:]
    wait_for(lambda: (state_dir() / "sessions" / f"{live.session_id}.json").exists(), timeout=60)  # the detached part is done
    imported = set(log.read_text().split())
    assert "kapacitor.normalize.keyword_scan" in imported and not HEAVY & imported, HEAVY & imported
    record = {"type": "user", "uuid": "7f0c5b1e-0000-4000-8000-0000000000b1", "sessionId": live.session_id,
              "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_big", "content": output}]}}
    with live.main.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    follower = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kapacitor.capture.follower", live.session_id],
        capture_output=True, env={**os.environ, "KAPACITOR_FOLLOW_IDLE": "0.5"}, timeout=120,
    )
    assert follower.returncode == 0, follower.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in follower.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "kapacitor.normalize.keyword_scan" in imported and not HEAVY & imported, HEAVY & imported
    written = b"".join(p.read_bytes() for p in (state_dir() / "sessions").glob(f"{live.session_id}.*"))
    assert GHP.encode() not in written and written.count(b"[REDACTED github-pat #") == 2
    batches = held_batches(live.session_id)
    assert batches[0]["hook"]["payload"]["tool_use_id"] == "toolu_big"
    assert any(len(line.get("t", "")) > 2_000_000 for b in batches for t in b["transcripts"] for line in t["lines"])


def test_redaction_is_off_for_a_repository_the_config_names(tmp_path, down):
    """``"off": ["owner/repo"]``: the hook sends a session in a clone of that
    GitHub repository as is (wherever the clone is), and masks any other."""
    path = client_config.config_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump({"redaction": {"off": ["Acme/Secret-Lab"]}}, handle)
    secret = "DB_PASSWORD=hunter2hunter"
    sent = {}
    for name, remote in (("lab", "git@github.com:acme/secret-lab.git"), ("widgets", "https://github.com/acme/widgets.git")):
        clone = tmp_path / name / "src"
        (clone / ".git").mkdir(parents=True)
        (clone / ".git" / "config").write_text(f'[remote "origin"]\n\turl = {remote}\n')
        session = f"s-{name}"
        payload = {"session_id": session, "transcript_path": str(tmp_path / "gone" / f"{session}.jsonl"),
                   "cwd": str(clone / "pkg"), "tool_name": "Bash", "tool_response": {"stdout": secret}}
        (clone / "pkg").mkdir()
        assert run_hook("PostToolUse", payload).returncode == 0
        [batch] = spooled(session)
        sent[name] = batch["hook"]["payload"]["tool_response"]["stdout"]
    assert sent["lab"] == secret
    assert sent["widgets"].startswith("DB_PASSWORD=[REDACTED password #")


def test_client_dirs_are_platformdirs_dirs():
    assert client_config.config_dir() == platformdirs.user_config_dir("kapacitor", appauthor=False)
    assert client_config.state_dir() == platformdirs.user_state_dir("kapacitor", appauthor=False)


def test_config_precedence_env_then_file_then_default(monkeypatch):
    assert client_config.load() == client_config.ClientConfig(client_config.DEFAULT_SERVER, "")
    path = client_config.save(client_config.ClientConfig("http://10.0.0.1:9/", "t1"))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert client_config.load() == client_config.ClientConfig("http://10.0.0.1:9/".rstrip("/"), "t1")
    monkeypatch.setenv("KAPACITOR_SERVER", "http://127.0.0.1:1")
    monkeypatch.setenv("KAPACITOR_TOKEN", "t2")
    assert client_config.load() == client_config.ClientConfig("http://127.0.0.1:1", "t2")


def test_the_log_is_rotated_past_its_limit(monkeypatch):
    monkeypatch.setattr(client_config, "LOG_LIMIT", 10_000)
    for i in range(200):
        client_config.log_failure(f"failure {i} " + "x" * 100)
    log = state_dir() / "capture.log"
    assert log.stat().st_size <= 10_000 + 200 and (state_dir() / "capture.log.1").exists()
    assert log.read_text().splitlines()[-1].split()[2:4] == ["failure", "199"]


def test_sessions_in_an_excluded_directory_never_leave_the_machine(tmp_path, live_server):
    """``setup --exclude DIR``: the hook sends and spools nothing for a session under DIR."""
    from click.testing import CliRunner

    from capture_helpers import WIDGETS, LiveSession, run_hook, spooled
    from kapacitor.cli import cli

    secret = tmp_path / "secret-work"
    assert CliRunner().invoke(cli, ["setup", "--exclude", str(tmp_path / "secret-*")]).exit_code == 0
    live = LiveSession(tmp_path / "projects")
    live.write_all()
    inside = live.payload("UserPromptSubmit") | {"cwd": str(secret / "sub")}
    assert run_hook("UserPromptSubmit", inside).returncode == 0
    assert spooled(WIDGETS) == [] and live_server.get("/healthz")["head"] == 0  # type: ignore[index]
    assert run_hook("UserPromptSubmit", live.payload("UserPromptSubmit")).returncode == 0
    assert live_server.get("/healthz")["head"] > 0  # type: ignore[index]


def test_a_held_place_never_makes_later_batches_wait_and_a_lost_one_is_skipped(tmp_path, live_server):
    """A place kept in the spool for a huge payload (``spool_hold``, as the hook
    does before handing it off) whose batch is still being masked is passed
    over: a later hook's batch is stored at once, server up; batches spooled
    behind it while the server was down are delivered past it by the next
    pass, once each; the held batch is delivered once written (a big one by
    the follower or ``sync``, a hook passing over it too). A place whose
    writer died (its file unlocked, empty) is skipped and logged. The
    session's transcript events are stored in their order, as an import
    stores them: only the hook payload's event comes later."""
    from kapacitor.capture.client_config import load
    from kapacitor.capture.shipper import hook_batch, ship, utc_stamp
    from kapacitor.capture.spool import fill_hold, load_state, spool_hold, spool_pending
    from kapacitor.events import agent_session_stream
    from kapacitor.store import open_store

    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 3)

    def payload(tool_use_id: str) -> dict:
        return live.payload("PostToolUse", tool_name="Bash", tool_use_id=tool_use_id, tool_response={"stdout": "ok\n"})

    def stored_hooks() -> list[str]:
        store = open_store(f"sqlite://{live_server.store_path}")
        try:
            return [e.data["extensions"]["claude_code"]["tool_use_id"] for e in store.read_all() if e.type == "HookReceived"]
        finally:
            store.close()

    _, fd = spool_hold(live.session_id)
    assert run_hook("PostToolUse", payload("toolu_after")).returncode == 0
    assert stored_hooks() == ["toolu_after"]  # at once: it did not wait for the held place
    assert [list(b) for b in spooled(live.session_id)] == [["held"]]

    dead = f"http://127.0.0.1:{free_port()}"
    live.write_main(3, 6)
    assert run_hook("PostToolUse", payload("toolu_down_1"), KAPACITOR_SERVER=dead).returncode == 0
    assert run_hook("PostToolUse", payload("toolu_down_2"), KAPACITOR_SERVER=dead).returncode == 0
    assert [list(b)[0] for b in spooled(live.session_id)] == ["held", "v", "v"]
    passed = ship(live.session_id, load())  # the server is back: the real shipper's next pass
    assert (passed.sent, passed.masking, passed.stuck) == (2, 1, "")
    assert stored_hooks() == ["toolu_after", "toolu_down_1", "toolu_down_2"]
    state = load_state(live.session_id)
    held_line = len(json.dumps(spooled(live.session_id)[0]).encode()) + 1
    assert state.spool_pos == 0 and len(state.spool_ahead) == 2 and spool_pending(state) == held_line

    fill_hold(fd, hook_batch(live.session_id, {"event": "PostToolUse", "at": utc_stamp(), "payload": payload("toolu_held")}, ""))
    _, lost = spool_hold(live.session_id)
    os.close(lost)  # its writer died before writing it
    live.write_main(6)
    assert run_hook("PostToolUse", payload("toolu_last")).returncode == 0
    assert spooled(live.session_id) == [] and not list((state_dir() / "sessions").glob("*.held-*"))
    assert load_state(live.session_id).spool_ahead == []
    assert any("a hook payload was lost" in line for line in capture_log())
    assert stored_hooks() == ["toolu_after", "toolu_down_1", "toolu_down_2", "toolu_held", "toolu_last"]  # each once

    _, fd = spool_hold(live.session_id)  # written, but too big for a hook to send: the follower's, passed over too
    big = live.payload("PostToolUse", tool_name="Bash", tool_use_id="toolu_big", tool_response={"stdout": "build ok\n" * 150_000})
    fill_hold(fd, hook_batch(live.session_id, {"event": "PostToolUse", "at": utc_stamp(), "payload": big}, ""))
    assert run_hook("PostToolUse", payload("toolu_after_big")).returncode == 0
    assert stored_hooks()[-1] == "toolu_after_big" and [list(b) for b in spooled(live.session_id)] == [["held"]]
    assert subprocess.run([KAPACITOR, "sync"], capture_output=True, timeout=60).returncode == 0
    assert stored_hooks()[-2:] == ["toolu_after_big", "toolu_big"] and spooled(live.session_id) == []
    live_server.stop()
    assert live_events(live_server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")

    def transcript_order(db) -> list[str]:  # noqa: ANN001
        store = open_store(f"sqlite://{db}")
        try:
            return [e.id for e in store.read_stream(agent_session_stream(live.session_id)) if e.type not in LIVE_ONLY]
        finally:
            store.close()

    assert transcript_order(live_server.store_path) == transcript_order(tmp_path / "imported.db")


def test_model_switches_are_listed_in_time_order_whatever_order_their_hooks_are_stored_in(tmp_path):
    """A hook payload's event may be stored after later ones (a held place is
    passed over while its payload is masked): the session's model switches,
    the one list hook events feed, come out in time order all the same."""
    from kapacitor.events import agent_session_stream
    from kapacitor.projections.session_summary import SessionSummaries
    from kapacitor.server.ingest import hook_events
    from kapacitor.store import open_store

    def switch(at: str, to: str) -> dict:
        return {"event": "PostModelSwitch", "at": at,
                "payload": {"session_id": "s-1", "hook_event_name": "PostModelSwitch", "from_model": "a", "to_model": to, "source": "auto"}}

    store = open_store(f"sqlite://{tmp_path / 'store.db'}")
    try:
        for hook_ in (switch("2026-05-01T10:00:02.000000Z", "c"), switch("2026-05-01T10:00:01.000000Z", "b")):
            store.append(agent_session_stream("s-1"), hook_events("s-1", hook_))
        summaries = SessionSummaries()
        for event in store.read_all():
            summaries.apply(event)
    finally:
        store.close()
    assert [s["to"] for s in summaries.sessions["s-1"].model_switches] == ["b", "c"]


def test_a_hook_spools_at_once_only_while_the_send_lock_is_held_by_a_live_upload(tmp_path, down):
    """The send lock's holder writes ``uploading <pid>`` into the lock file while it
    uploads a large batch (``spool.uploading``): a hook then spools without waiting
    for the lock, and says so in the log. A line left by an uploader that is gone
    (killed) is not believed: the hook waits for the lock as it always did."""
    live = LiveSession(tmp_path / "projects")
    live.write_main(0, 3)
    lock = state_dir() / "sessions" / f"{live.session_id}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        gone = subprocess.Popen(["true"])
        gone.wait()
        for uploader, believed in ((gone.pid, False), (holder.pid, True)):
            lock.write_bytes(f"uploading {uploader}".encode())
            assert run_hook("PostToolUse", live.payload("PostToolUse", tool_name="Bash", tool_use_id=f"toolu_{uploader}",
                                                        tool_response={"stdout": "ok\n"})).returncode == 0
            said = [line.split(" ", 2)[2] for line in capture_log() if "is uploading a large batch" in line]  # after time and pid
            assert said == ([f"session {live.session_id}: process {holder.pid} is uploading a large batch: spooled the hook's"
                             " payload without waiting for the send lock"] if believed else []), said
        hooks = [b["hook"]["payload"]["tool_use_id"] for b in spooled(live.session_id)]
        assert hooks == [f"toolu_{gone.pid}", f"toolu_{holder.pid}"]  # both kept, in order, lines left to the holder
    finally:
        holder.kill()
        holder.communicate()
