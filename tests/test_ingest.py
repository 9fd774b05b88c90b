"""Ingest logic against a real store: batches made by the real hook (spooled while
the server is down) give exactly the events ``kapacitor import`` gives for the
finished transcripts; bad batches are refused whole with a clear 4xx reason."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import HTTPException, Request

from capture_helpers import (
    LIVE_ONLY,
    LiveSession,
    events_by_id,
    free_port,
    imported_events,
    run_hook,
    spooled,
)
from conftest import SAMPLE_DIRS
from kapacitor.events import NewEvent
from kapacitor.projections.session_summary import SessionSummaries
from kapacitor.server import ingest as ingest_module
from kapacitor.server.ingest import BadBatch, authorize, event_parts, ingest, parse_batch

SESSIONS = sorted(p for d in SAMPLE_DIRS for p in d.glob("*/*.jsonl"))


@pytest.fixture
def down(monkeypatch):
    monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{free_port()}")


@pytest.mark.parametrize("main", SESSIONS, ids=lambda p: p.stem[:8])
def test_live_batches_equal_import(main, tmp_path, store, down):
    live = LiveSession(tmp_path / "projects", main.stem, main.parent)
    total = len(live.source_main)
    cuts = sorted({0, total // 5, total // 2, total * 4 // 5, total})
    for i, (start, stop) in enumerate(zip(cuts, cuts[1:], strict=False)):
        live.write_main(start, stop)
        if i == 2:
            live.write_subagents()
        run_hook("PostToolUse", live.payload("PostToolUse", tool_use_id=f"toolu_{i}"))
    live.write_subagents()
    run_hook("SessionEnd", live.payload("SessionEnd", reason="other"))
    batches = spooled(live.session_id)
    added = sum(ingest(store, live.session_id, json.dumps(b).encode()).added for b in batches)
    assert events_by_id(store, skip=LIVE_ONLY) == imported_events([tmp_path / "projects"], tmp_path / "imported.db")
    hooks = [e for e in store.read_all() if e.type in LIVE_ONLY]
    assert [e.type for e in hooks].count("HookReceived") == len(cuts)
    assert [e.data["reason"] for e in hooks if e.type == "SessionEnded"] == ["other"]
    assert added == len(events_by_id(store))
    live_row, imported_row = only_session(store), only_session_imported(tmp_path / "imported.db")
    live_hooks, imported_hooks = live_row.pop("hook_events", None), imported_row.pop("hook_events", None)
    assert live_row == imported_row  # started, ended, duration, events, tokens, cost: the hooks move none
    assert (live_hooks, imported_hooks) == (len(hooks), 0)
    for b in batches:  # replaying every batch adds nothing
        assert ingest(store, live.session_id, json.dumps(b).encode()).added == 0


def only_session(store) -> dict:  # noqa: ANN001
    """The session summary (``sessions --json``'s row) of the one session in ``store``."""
    summaries = SessionSummaries()
    for event in store.read_all():
        summaries.apply(event)
    [row] = [s.as_json() for s in summaries.sessions.values()]
    return row


def only_session_imported(db) -> dict:  # noqa: ANN001
    from kapacitor.store import open_store

    store = open_store(f"sqlite://{db}")
    try:
        return only_session(store)
    finally:
        store.close()


def batch(**fields):
    return json.dumps({"v": 1, "agent": "claude-code", "session_id": "s-1", "transcripts": [], **fields}).encode()


LINE = {"o": 0, "n": 0, "t": json.dumps({"type": "user", "uuid": "u1", "sessionId": "s-1", "message": {"role": "user", "content": "hi"}})}


@pytest.mark.parametrize(
    ("session_id", "body", "status", "message"),
    [
        ("s-1", b"{nope", 400, "body is not JSON"),
        ("s-1", b"[]", 400, "body must be a JSON object"),
        ("s-1", batch(v=7), 400, "unsupported batch version"),
        ("../x", batch(), 400, "invalid session id"),
        ("s-2", batch(), 422, "batch is for session 's-1'"),
        ("s-1", batch(hook={"event": "Stop", "at": "t", "payload": {"session_id": "s-9"}}), 422, "hook payload is for session 's-9'"),
        ("s-1", batch(hook={"event": "Stop"}), 400, "hook must be"),
        ("s-1", batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": [LINE]}, {"path": "/p/other.jsonl", "lines": [LINE]}]), 422, "belongs to session 'other'"),
        ("s-1", batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": [LINE, {"o": -1, "n": 0, "t": "{}"}]}]), 400, "each line must be"),
        ("s-1", batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": [LINE, {"o": 9, "n": 1, "b": "!!"}]}]), 400, "not base64"),
    ],
)
def test_bad_batches_are_refused_whole(session_id, body, status, message, store):
    with pytest.raises(BadBatch, match=message) as caught:
        ingest(store, session_id, body)
    assert caught.value.status == status
    assert store.head_position() == 0


def test_hook_events_are_deterministic_and_redacted(store):
    secret = "sk-ant-api03-" + "x" * 40
    hook = {"event": "PostToolUse", "at": "2026-01-01T00:00:00.000001Z",
            "payload": {"session_id": "s-1", "tool_name": "Bash", "tool_input": {"command": f"export KEY={secret}"}}}
    first = ingest(store, "s-1", batch(hook=hook))
    assert (first.added, first.skipped) == (1, 0)
    assert ingest(store, "s-1", batch(hook=hook)).added == 0
    later = dict(hook, at="2026-01-01T00:00:01.000000Z")
    assert ingest(store, "s-1", batch(hook=later)).added == 1  # the same payload fired again is a new event
    [event, _] = store.read_stream("AgentSession-s-1")
    assert event.type == "HookReceived" and event.data["hook_event_name"] == "PostToolUse"
    assert secret not in json.dumps(event.data) and "Bash" in json.dumps(event.data)


def test_hook_times_stand_in_only_until_the_first_record_arrives(store):
    """A live session seconds old (its SessionStart hook in, no transcript line
    yet) is listed by the hook's time; once a record arrives, the session's time
    is the records' alone, whichever comes first in the log."""
    def hook(event: str, at: str) -> bytes:
        return batch(hook={"event": event, "at": at, "payload": {"session_id": "s-1"}})

    ingest(store, "s-1", hook("SessionStart", "2026-01-01T00:00:00.000001Z"))
    row = only_session(store)
    assert (row["started"], row["ended"], row["events"], row["hook_events"]) == ("2026-01-01T00:00:00.000001Z",) * 2 + (0, 1)
    line = {"o": 0, "n": 0, "t": json.dumps({"type": "user", "uuid": "u1", "sessionId": "s-1", "timestamp": "2026-01-01T00:00:05.123Z",
                                             "message": {"role": "user", "content": "hi"}})}
    ingest(store, "s-1", batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": [line]}]))
    ingest(store, "s-1", hook("Stop", "2026-01-01T00:00:09.000001Z"))
    row = only_session(store)
    assert (row["started"], row["ended"], row["duration_seconds"], row["events"], row["hook_events"]) == (
        "2026-01-01T00:00:05.123Z", "2026-01-01T00:00:05.123Z", 0.0, 1, 2)


def test_invalid_utf8_lines_travel_as_base64_and_are_kept(store):
    raw = b'{"type":"user","uuid":"u2","message":{"role":"user","content":"caf\xe9"}}'
    body = batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": [{"o": 0, "n": 0, "b": base64.b64encode(raw).decode()}]}])
    assert ingest(store, "s-1", body).added == 1
    [event] = store.read_stream("AgentSession-s-1")
    assert event.metadata["raw_error"].startswith("invalid UTF-8") and base64.b64decode(event.metadata["raw_b64"]) == raw


def test_an_id_another_stream_holds_is_skipped_and_the_rest_of_the_batch_stored(store):
    """Claude Code wrote a record twice (main and sidechain: one uuid, two streams:
    since the event id names the agent of its stream, two ids, both kept); another
    stream already holds one of the subagent's ids: skipped, not refusing the batch."""
    sub = {"o": 0, "n": 0, "t": json.dumps({"type": "user", "uuid": "u9", "sessionId": "s-1", "isSidechain": True,
                                            "message": {"role": "user", "content": "review it"}})}
    twice = {"o": 90, "n": 1, "t": json.dumps({"type": "user", "uuid": "u1", "sessionId": "s-1", "isSidechain": True,
                                              "message": {"role": "user", "content": "hi"}})}
    body = batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": [LINE, twice]},
                              {"path": "/p/s-1/subagents/agent-a1.jsonl", "meta": {"agentType": "general-purpose"}, "lines": [sub]}],
                 hook={"event": "Stop", "at": "2026-01-01T00:00:00Z", "payload": {"session_id": "s-1"}})
    [streams] = event_parts("s-1", parse_batch("s-1", body))
    taken = streams["AgentSubsession-s-1-a1"][0]
    store.append("Elsewhere-1", [NewEvent(taken.id, "Taken", {})])
    assert ingest(store, "s-1", body).as_json() == {"added": 5, "skipped": 1}
    assert [(e.stream, e.type) for e in store.read_all()] == [
        ("Elsewhere-1", "Taken"),
        *(("AgentSession-s-1", t) for t in ("UserMessageReceived", "SubagentStarted", "SubagentStarted", "HookReceived")),
        ("AgentSubsession-s-1-sidechain-u1", "UserMessageReceived"),
    ]
    assert ingest(store, "s-1", body).as_json() == {"added": 0, "skipped": 6}


def hostile_lines() -> list[str]:
    """Record shapes that used to make ingest answer 500, and a good one after them."""
    base = {"sessionId": "s-1", "timestamp": "2026-01-01T00:00:00Z", "cwd": "/w"}
    records = [
        {"type": "user", "uuid": "h1", "message": "a string where an object belongs", **base},
        {"type": "system", "uuid": "h2", "subtype": "turn_duration", "durationMs": "slow", **base},
        {"type": "assistant", "uuid": "h3", "message": [1, 2], **base},
        {"type": "user", "uuid": "h4", "message": {"role": "user", "content": [["nested"]]}, **base},
    ]
    deep = "[" * 1100 + "]" * 1100
    deep_record = '{"type":"user","uuid":"h5","message":' + '{"x":' * 1100 + "1" + "}" * 1100 + "}"
    fits_decoder_not_encoder = '{"type":"user","uuid":"h6","toolUseResult":' + "[" * 960 + "]" * 960 + "}"
    good = {"type": "user", "uuid": "ok", "message": {"role": "user", "content": "still here"}, **base}
    return [json.dumps(r) for r in records] + [deep, deep_record, fits_decoder_not_encoder, json.dumps(good)]


def test_every_line_is_taken_whatever_its_shape(store):
    """A line the normalizer cannot map is kept as an unknown record with its raw
    text, as import keeps it; the lines after it are mapped as usual."""
    texts = hostile_lines()
    lines = [{"o": i * 10_000, "n": i, "t": t} for i, t in enumerate(texts)]
    body = batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": lines}])
    result = ingest(store, "s-1", body)
    assert result.skipped == 0
    events = store.read_all()
    kept = {e.metadata["source"]["line"]: e for e in events if "raw" in e.metadata}
    assert sorted(kept) == list(range(len(texts)))  # every line stored, raw text and all
    assert all(kept[i].metadata["raw"] == t for i, t in enumerate(texts))
    assert kept[len(texts) - 1].type == "UserMessageReceived" and kept[len(texts) - 1].data["content"] == "still here"


def test_a_big_batch_is_appended_in_parts_in_order(store, monkeypatch):
    monkeypatch.setattr(ingest_module, "PART_BYTES", 1000)
    lines = [{"o": i * 200, "n": i, "t": json.dumps({"type": "user", "uuid": f"p{i}", "sessionId": "s-1",
                                                      "message": {"role": "user", "content": f"prompt {i}"}})} for i in range(40)]
    body = batch(transcripts=[{"path": "/p/s-1.jsonl", "lines": lines}],
                 hook={"event": "Stop", "at": "2026-01-01T00:00:00Z", "payload": {"session_id": "s-1"}})
    parts = list(event_parts("s-1", parse_batch("s-1", body)))
    assert len(parts) >= 5 and all(sum(map(len, p.values())) <= 12 for p in parts)
    assert ingest(store, "s-1", body).as_json() == {"added": 41, "skipped": 0}
    texts = [e.data.get("content") for e in store.read_stream("AgentSession-s-1")]
    assert texts == [f"prompt {i}" for i in range(40)] + [None]


@pytest.mark.parametrize(
    ("host", "token", "header", "status"),
    [
        ("127.0.0.1", "", "", None),
        ("::1", "", "", None),
        ("10.1.2.3", "", "", 403),
        ("10.1.2.3", "s3cret", "Bearer s3cret", None),
        ("127.0.0.1", "s3cret", "", 401),
        ("127.0.0.1", "s3cret", "Bearer wrong", 401),
        ("10.1.2.3", "s3cret", "bEaReR s3cret", None),  # the scheme in any case
        ("127.0.0.1", "", "Bearer unknown", 401),  # a token no user has is refused, not ignored
    ],
)
def test_auth_rule(host, token, header, status, store_path):
    """No token: loopback callers only. A token: every caller must present it."""
    from kapacitor.server.app import create_app

    app = create_app(f"sqlite://{store_path}", run_projections=False, token=token)
    headers = [(b"authorization", header.encode())] if header else []
    request = Request({"type": "http", "client": (host, 5555), "headers": headers, "app": app})
    try:
        if status is None:
            authorize(request)
        else:
            with pytest.raises(HTTPException) as caught:
                authorize(request)
            assert caught.value.status_code == status
    finally:
        app.state.close()


def test_the_server_token_comes_from_serve_or_the_environment(tmp_path, monkeypatch):
    from kapacitor.server.app import create_app

    monkeypatch.setenv("KAPACITOR_TOKEN", "from-env")
    url = f"sqlite://{tmp_path / 'k.db'}"
    for app, token in ((create_app(url, run_projections=False), "from-env"),
                       (create_app(url, run_projections=False, token="given"), "given")):
        assert app.state.ingest_token == token
        app.state.close()


def test_a_hook_payload_of_any_depth_is_stored_or_refused_never_an_error(store):
    """Around the decoder's and encoder's depth limits (which depend on the stack):
    a 400 for a body too deep to parse; otherwise the line and a hook event
    (the payload, or why it could not be stored)."""
    outcomes = set()
    for depth in range(1010, 880, -10):
        body = ('{"v":1,"agent":"claude-code","session_id":"s-1","transcripts":[{"path":"/p/s-1.jsonl","lines":[%s]}],'
                '"hook":{"event":"PreToolUse","at":"2026-01-01T00:00:%02dZ","payload":{"session_id":"s-1","tool_input":%s}}}'
                % (json.dumps(LINE), depth % 60, "[" * depth + "]" * depth)).encode()
        try:
            ingest(store, "s-1", body)
        except BadBatch as exc:
            assert exc.status == 400 and "not JSON" in str(exc)
            outcomes.add("refused")
            continue
        hooks = [e for e in store.read_stream("AgentSession-s-1") if e.type == "HookReceived"]
        assert any(e.data["timestamp"].endswith(f"{depth % 60:02d}Z") for e in hooks)
        outcomes.add("stored")
    assert outcomes == {"refused", "stored"}
