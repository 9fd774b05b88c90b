"""Redaction on every path: the invented corpus (tests/redaction_corpus.py) as a
real-looking session (prompts, assistant text and thinking, Bash commands, Write
contents, tool output and its structured result, attachments, file snapshots,
unknown records, a subagent and its description) goes through import, the hook
with the server down (the spool), live capture into the real server, and a
hand-made batch posted by an old client. Each path: recall 100% (no secret
value left in the store or spool, bytes included), false positives at most 2%
(look-alikes kept verbatim)."""

from __future__ import annotations

import json
import uuid

import pytest

from capture_helpers import (
    free_port,
    imported_events,
    live_events,
    run_hook,
    spooled,
    state_dir,
    wait_for,
)
from kapacitor.capture.importer import import_paths
from kapacitor.server.ingest import ingest
from kapacitor.store import open_store
from redaction_corpus import LOOKALIKES, SECRETS

SESSION = "5ec2e7a1-0000-4000-8000-00000000c0de"
AGENT = "a11fake000000001"
SUBAGENT_TEXT = next(text for context, text, _ in SECRETS if context == "subagent-description")


def secret_values() -> list[str]:
    return [v for _, _, values in SECRETS for v in values]


def _record(kind: str, text: str, n: int, cwd: str) -> dict:
    base = {"uuid": str(uuid.UUID(int=n)), "parentUuid": str(uuid.UUID(int=n - 1)) if n else None, "sessionId": SESSION,
            "timestamp": f"2026-11-29T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z", "cwd": cwd, "version": "2.1.197",
            "isSidechain": False, "userType": "external", "gitBranch": "main"}
    tool_id = f"toolu_01FAKE{n:020d}"
    assistant = {"id": f"msg_01FAKE{n:018d}", "model": "claude-fake-1", "role": "assistant",
                 "usage": {"input_tokens": 3, "output_tokens": 5}}
    if kind == "prompt":
        return {**base, "type": "user", "message": {"role": "user", "content": text}}
    if kind == "text":
        return {**base, "type": "assistant", "message": {**assistant, "content": [{"type": "text", "text": text}]}}
    if kind == "thinking":
        return {**base, "type": "assistant", "message": {**assistant, "content": [{"type": "thinking", "thinking": text, "signature": "c2ln"}]}}
    if kind == "bash":
        return {**base, "type": "assistant", "message": {**assistant, "content": [
            {"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": text, "description": "run it"}}]}}
    if kind == "write":
        return {**base, "type": "assistant", "message": {**assistant, "content": [
            {"type": "tool_use", "id": tool_id, "name": "Write", "input": {"file_path": f"{cwd}/config.txt", "content": text}}]}}
    if kind == "result":
        return {**base, "type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_id, "content": text}]},
            "toolUseResult": {"stdout": text, "stderr": "", "interrupted": False}}
    if kind == "attachment":
        return {**base, "type": "attachment", "attachment": {"type": "file", "filename": f"{cwd}/notes.md", "content": text}}
    if kind == "snapshot":
        return {**base, "type": "file-history-snapshot", "snapshot": {"trackedFileBackups": {"notes.md": {"content": text}}}}
    return {**base, "type": "brand-new-record-type", "payload": {"text": text}}


KINDS = ("prompt", "text", "thinking", "bash", "write", "result", "attachment", "snapshot", "unknown")


def write_session(projects, cwd: str):
    """The corpus as one session's transcripts; the main transcript's path."""
    folder = projects / "".join(c if c.isalnum() else "-" for c in cwd)
    folder.mkdir(parents=True)
    texts = [text for _, text, _ in SECRETS] + LOOKALIKES
    lines = [_record(KINDS[i % len(KINDS)], text, i, cwd) for i, text in enumerate(texts)]
    main = folder / f"{SESSION}.jsonl"
    main.write_text("".join(json.dumps(line) + "\n" for line in lines))
    subagents = folder / SESSION / "subagents"
    subagents.mkdir(parents=True)
    (subagents / f"agent-{AGENT}.meta.json").write_text(
        json.dumps({"agentType": "general-purpose", "description": SUBAGENT_TEXT, "toolUseId": "toolu_01FAKESUB"}))
    first = {**_record("prompt", "Look at the deploy settings", 10_000, cwd), "isSidechain": True, "parentUuid": None,
             "agentId": AGENT}
    (subagents / f"agent-{AGENT}.jsonl").write_text(json.dumps(first) + "\n")
    return main


def _strings(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
        if value[:1] in "{[":
            try:
                _strings(json.loads(value), out)
            except ValueError:
                pass
    elif isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def figures(texts: list[str], raw: bytes) -> tuple[float, float, list[str], list[str]]:
    """(recall, false positive rate, secrets left, look-alikes altered) over the
    decoded strings ``texts`` and the bytes ``raw`` they were stored as."""
    everything = "\x00".join(texts)
    values = secret_values()
    left = [v[:24] for v in values if v in everything or v.encode() in raw]
    altered = [text[:50] for text in LOOKALIKES if text not in everything]
    return 1 - len(left) / len(values), len(altered) / len(LOOKALIKES), left, altered


def store_figures(path) -> tuple[float, float, list[str], list[str]]:
    store = open_store(f"sqlite://{path}")
    texts: list[str] = []
    try:
        for event in store.read_all():
            _strings(event.data, texts)
            _strings(event.metadata, texts)
    finally:
        store.close()
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    return figures(texts, raw)


def assert_clean(result: tuple[float, float, list[str], list[str]]) -> None:
    recall, false_positives, left, altered = result
    assert recall == 1.0, left
    assert false_positives <= 0.02, altered


def test_import_masks_every_field(tmp_path):
    write_session(tmp_path / "projects", str(tmp_path / "work"))
    store = open_store(f"sqlite://{tmp_path / 'imported.db'}")
    summary = import_paths(store, [tmp_path / "projects"])
    store.close()
    assert summary.events_added > len(SECRETS) + len(LOOKALIKES)
    assert_clean(store_figures(tmp_path / "imported.db"))


def test_a_file_is_masked_alike_alone_or_among_small_and_large_ones(tmp_path):
    """The importer masks consecutive small files together (their scans in a row)
    and a large file a block at a time (a line across a block's end completed):
    every file gives the events it gives imported alone, and no secret is left."""
    main = write_session(tmp_path / "one", str(tmp_path / "work"))
    lines = main.read_text().splitlines()
    folder = tmp_path / "projects" / main.parent.name
    folder.mkdir(parents=True)
    for n in range(12):  # small sessions: the corpus in twelve pieces
        session = f"5ec2e7a1-0000-4000-8000-{n:012d}"
        (folder / f"{session}.jsonl").write_text("".join(line.replace(SESSION, session) + "\n" for line in lines[n::12]))
    filler = json.loads(lines[0])
    filler["message"]["content"] = "build log line\n" * 60_000  # 0.96 MB: the first 1 MiB block ends in the corpus lines after it
    for session, end in (("5ec2e7a1-0000-4000-8000-0000000b1600", "\n"), ("5ec2e7a1-0000-4000-8000-0000000b1601", "\r\n")):
        big = [json.dumps({**filler, "uuid": str(uuid.uuid4())})] + lines * 14
        (folder / f"{session}.jsonl").write_text("".join(line.replace(SESSION, session) + end for line in big))
    files = sorted(folder.glob("*.jsonl"))
    assert max(f.stat().st_size for f in files) > 2 * (1 << 20) > 10 * min(f.stat().st_size for f in files)
    alone: dict = {}
    for n, f in enumerate(files):
        alone.update(imported_events([f], tmp_path / f"alone-{n}.db"))
    store = open_store(f"sqlite://{tmp_path / 'together.db'}")
    summary = import_paths(store, [tmp_path / "projects"])
    store.close()
    assert summary.lines == sum(len(f.read_bytes().splitlines()) for f in files)  # every line read, none cut
    assert imported_events([tmp_path / "projects"], tmp_path / "together.db") == alone
    assert_clean(store_figures(tmp_path / "together.db"))


def test_the_spool_holds_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{free_port()}")
    cwd = str(tmp_path / "work")
    main = write_session(tmp_path / "projects", cwd)
    payload = {"session_id": SESSION, "transcript_path": str(main), "cwd": cwd, "hook_event_name": "PostToolUse",
               "tool_name": "Bash", "tool_input": {"command": SECRETS[0][1]}, "tool_response": {"stdout": SECRETS[3][1]}}
    assert run_hook("PostToolUse", payload).returncode == 0
    assert run_hook("SubagentStop", {**payload, "hook_event_name": "SubagentStop"}).returncode == 0
    batches = spooled(SESSION)
    lines = [line["t"] for b in batches for t in b["transcripts"] for line in t["lines"]]
    assert len(lines) == len(SECRETS) + len(LOOKALIKES) + 1
    texts: list[str] = []
    _strings(batches, texts)
    raw = (state_dir() / "sessions" / f"{SESSION}.spool").read_bytes()
    assert_clean(figures(texts, raw))


def test_live_capture_masks_and_gives_what_import_gives(tmp_path, live_server):
    cwd = str(tmp_path / "work")
    main = write_session(tmp_path / "projects", cwd)
    payload = {"session_id": SESSION, "transcript_path": str(main), "cwd": cwd, "hook_event_name": "UserPromptSubmit",
               "prompt": SECRETS[1][1]}
    assert run_hook("UserPromptSubmit", payload).returncode == 0
    run_hook("SessionEnd", {**payload, "hook_event_name": "SessionEnd", "reason": "exit"})
    wait_for(lambda: not spooled(SESSION) and len(live_events(live_server.store_path)) > len(SECRETS) + len(LOOKALIKES), timeout=30)
    live_server.stop()
    assert_clean(store_figures(live_server.store_path))
    assert live_events(live_server.store_path) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")


@pytest.mark.parametrize("how", ["text", "base64"])
def test_ingest_masks_a_batch_an_old_client_did_not(tmp_path, how):
    """A client of an older version (or a hand-made batch) sends secrets in clear:
    the server masks them before they are stored."""
    cwd = str(tmp_path / "work")
    main = write_session(tmp_path / "projects", cwd)
    import base64

    def line(o: int, n: int, text: str) -> dict:
        return {"o": o, "n": n, "t": text} if how == "text" else {"o": o, "n": n, "b": base64.b64encode(text.encode()).decode()}

    offset, lines = 0, []
    for n, text in enumerate(main.read_text().splitlines(keepends=True)):
        lines.append(line(offset, n, text.rstrip("\n")))
        offset += len(text.encode())
    sub = main.with_suffix("") / "subagents" / f"agent-{AGENT}.jsonl"
    batch = {"v": 1, "agent": "claude-code", "session_id": SESSION,
             "hook": {"event": "PostToolUse", "at": "2026-11-29T10:00:00.000000Z",
                      "payload": {"session_id": SESSION, "cwd": cwd, "tool_input": {"command": SECRETS[5][1]}}},
             "context": {"user": "dev@acme.test", "remote_url": f"https://ci:{secret_values()[0]}@github.com/acme/app.git"},
             "transcripts": [{"path": str(main), "lines": lines},
                             {"path": str(sub), "meta": json.loads((sub.parent / f"agent-{AGENT}.meta.json").read_text()),
                              "lines": [line(0, 0, sub.read_text().rstrip("\n"))]}]}
    store = open_store(f"sqlite://{tmp_path / 'ingested.db'}")
    result = ingest(store, SESSION, json.dumps(batch).encode())
    store.close()
    assert result.added > len(SECRETS)
    assert_clean(store_figures(tmp_path / "ingested.db"))
