"""Bad files: every problem is a warning naming file and line; no good record is lost."""

from __future__ import annotations

import base64
import json
import re
import shutil

from conftest import RECORDED
from kapacitor.capture.importer import import_paths
from kapacitor.store import open_store

SAMPLE = RECORDED / "projects" / "-home-dev-notes" / "97617f62-6fd5-442d-bb39-3ca75bd8c3e3.jsonl"
SESSION = SAMPLE.stem


def copy_sample(tmp_path):
    target = tmp_path / "projects" / "-home-dev-notes" / SAMPLE.name
    target.parent.mkdir(parents=True)
    shutil.copy(SAMPLE, target)
    return target


def good_lines():
    return SAMPLE.read_bytes().splitlines()


def stored_raw(store):
    return [e.metadata["raw"].encode() for e in store.read_all() if "raw" in e.metadata]


def test_truncated_last_line_is_reported_and_left_for_later(store, tmp_path):
    path = copy_sample(tmp_path)
    lines = good_lines()
    path.write_bytes(b"\n".join(lines) + b"\n" + lines[3][: len(lines[3]) // 2])
    summary = import_paths(store, [path])
    [warning] = summary.warnings
    assert (warning.path, warning.line) == (str(path), len(lines) + 1)
    assert "incomplete last line" in warning.message
    assert sorted(stored_raw(store)) == sorted(lines)
    # the writer finishes the line: the next import picks it up, nothing twice
    path.write_bytes(
        b"\n".join(lines)
        + b"\n"
        + json.dumps({"type": "mode", "mode": "plan", "sessionId": SESSION}).encode()
        + b"\n"
    )
    again = import_paths(store, [path])
    assert again.warnings == [] and again.events_added == 1


def test_a_broken_line_in_the_middle_is_kept_as_unknown(store, tmp_path):
    path = copy_sample(tmp_path)
    lines = good_lines()
    broken = b'{"type": "user", "message": {"content": "cut'
    path.write_bytes(b"\n".join(lines[:4] + [broken] + lines[4:]) + b"\n")
    summary = import_paths(store, [path])
    [warning] = summary.warnings
    assert warning.line == 5 and "invalid JSON" in warning.message
    [unknown] = [e for e in store.read_all() if e.type == "UnknownRecordReceived"]
    assert unknown.metadata["raw"].encode() == broken
    assert sorted(stored_raw(store)) == sorted(lines + [broken])


def test_invalid_utf8_keeps_the_original_bytes(store, tmp_path):
    path = copy_sample(tmp_path)
    lines = good_lines()
    bad = json.dumps(
        {
            "type": "user",
            "uuid": "u-bad",
            "sessionId": SESSION,
            "timestamp": "2026-11-25T20:59:00Z",
            "message": {"role": "user", "content": "caf\u00e9 PLACEHOLDER"},
        }
    ).encode()
    bad = bad.replace(b"PLACEHOLDER", b"\xff\xfe AKIAFAKETEST2345ABCD")
    path.write_bytes(b"\n".join(lines + [bad]) + b"\n")
    summary = import_paths(store, [path])
    [warning] = summary.warnings
    assert warning.line == len(lines) + 1 and "invalid UTF-8" in warning.message
    [event] = [e for e in store.read_all() if "raw_b64" in e.metadata]
    before, after = bad.split(b"AKIAFAKETEST2345ABCD")
    assert re.fullmatch(re.escape(before) + rb"\[REDACTED aws-access-token #[0-9a-f]{6}\]" + re.escape(after),
                        base64.b64decode(event.metadata["raw_b64"]))
    assert event.type == "UserMessageReceived" and event.data["content"].startswith(
        "caf\u00e9 \ufffd"
    )
    assert sorted(stored_raw(store)) == sorted(lines)


def test_a_20_mb_line_and_an_unknown_type(store, tmp_path):
    path = copy_sample(tmp_path)
    lines = good_lines()
    huge_output = "x" * (20 * 1024 * 1024)
    huge = json.dumps(
        {
            "type": "user",
            "uuid": "u-huge",
            "sessionId": SESSION,
            "timestamp": "2026-11-25T20:59:00Z",
            "message": {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_big", "content": huge_output}
                ],
            },
        }
    ).encode()
    odd = json.dumps(
        {"type": "hologram", "uuid": "u-odd", "sessionId": SESSION, "payload": [1, 2]}
    ).encode()
    path.write_bytes(b"\n".join(lines + [huge, odd]) + b"\n")
    summary = import_paths(store, [path])
    [warning] = summary.warnings
    assert warning.line == len(lines) + 2 and "unknown record type 'hologram'" in warning.message
    [result] = [
        e
        for e in store.read_all()
        if e.type == "ToolResultReceived" and e.data["call_id"] == "toolu_big"
    ]
    assert result.data["result"] == huge_output
    [unknown] = [e for e in store.read_all() if e.type == "UnknownRecordReceived"]
    assert json.loads(unknown.metadata["raw"]) == json.loads(odd)


def test_hostile_text_is_stored_verbatim_and_secrets_are_redacted(store, tmp_path):
    path = copy_sample(tmp_path)
    key = "sk-ant-api03-" + "A" * 40
    prompt = f"<script>alert(1)</script><img src=x onerror=alert(2)> lone \ud800 use {key} and AKIAFAKETEST2345ABCD"
    line = json.dumps(
        {
            "type": "user",
            "uuid": "u-h",
            "sessionId": SESSION,
            "timestamp": "2026-11-25T20:59:00Z",
            "cwd": "/tmp",
            "message": {"role": "user", "content": prompt},
        }
    ).encode()
    path.write_bytes(line + b"\n")
    import_paths(store, [path])
    [message] = [e for e in store.read_all() if e.type == "UserMessageReceived"]
    content = message.data["content"]
    # the data holds valid Unicode (the lone surrogate replaced); the raw line keeps it as written
    assert content.startswith(
        "<script>alert(1)</script><img src=x onerror=alert(2)> lone \ufffd use "
    )
    assert "lone \\ud800 use" in message.metadata["raw"]
    assert set(message.metadata["$invalid"]) == {"content"}
    assert key not in content and "AKIAFAKETEST2345ABCD" not in content
    assert "[REDACTED anthropic-api-key #" in content and "[REDACTED aws-access-token #" in content
    assert key not in message.metadata["raw"]


def test_unreadable_file_is_a_warning_not_a_crash(store, tmp_path):
    copy_sample(tmp_path)
    (tmp_path / "projects" / "-home-dev-notes" / "not-a-file.jsonl").mkdir()
    summary = import_paths(store, [tmp_path / "projects"])
    [warning] = summary.warnings
    assert warning.path.endswith("not-a-file.jsonl") and "cannot read" in warning.message
    assert sorted(stored_raw(store)) == sorted(good_lines())


def test_a_record_written_twice_in_two_streams_is_skipped_not_fatal(store, tmp_path):
    """The same uuid once in the main conversation and once marked as a sidechain:
    an event id names the agent of its stream, so the two are two records (the
    twin an inline sidechain's), both kept, and the import goes on."""
    path = copy_sample(tmp_path)
    lines = good_lines()
    twin = json.dumps(json.loads(lines[3]) | {"isSidechain": True}).encode()
    path.write_bytes(b"\n".join(lines[:4] + [twin] + lines[4:]) + b"\n")
    summary = import_paths(store, [path])
    assert summary.files == 1 and not summary.warnings
    assert sorted(stored_raw(store)) == sorted([*lines, twin])


HOOK_LOGS = RECORDED / "hooks"


def test_hook_logs_are_not_transcripts_one_warning_each_nothing_stored(store):
    """Claude Code hook logs (``session_id``, ``cwd``, no ``type``) are JSON lines
    but no transcript: each file is skipped with one warning, no session opened."""
    logs = sorted(HOOK_LOGS.glob("*.jsonl"))
    summary = import_paths(store, [HOOK_LOGS])
    assert summary.events_added == 0 and store.head_position() == 0
    assert [w.path for w in summary.warnings] == [str(p) for p in logs]
    for warning, log in zip(summary.warnings, logs):
        lines = len(log.read_bytes().splitlines())
        where = "line" if lines == 1 else f"{lines} lines"
        assert warning.message == f"not a Claude Code transcript (no transcript record in its {where}): skipped, nothing stored"


def test_a_recorded_tree_with_hook_logs_imports_just_its_transcripts(store, tmp_path):
    """The recorded tree holds transcripts and hook logs side by side: the import
    stores exactly what importing the transcripts alone stores."""
    whole = import_paths(store, [RECORDED])
    alone = open_store(f"sqlite://{tmp_path / 'alone.db'}")
    import_paths(alone, [RECORDED / "projects", RECORDED / "interactive" / "projects"])
    assert whole.events_added == alone.head_position() > 0
    assert sorted(e.id for e in store.read_all()) == sorted(e.id for e in alone.read_all())
    assert not any("record has no type" in w.message for w in whole.warnings)


def test_a_long_hook_log_is_judged_on_its_first_1000_lines(store, tmp_path):
    [payload] = (HOOK_LOGS / "Stop.jsonl").read_bytes().splitlines()[:1]
    log = tmp_path / "hooks.jsonl"
    log.write_bytes(b"\n".join([payload] * 1500) + b"\n")
    summary = import_paths(store, [log])
    [warning] = summary.warnings
    assert warning.message == "not a Claude Code transcript (no transcript record in its first 1,000 lines): skipped, nothing stored"
    assert store.head_position() == 0


def test_a_typeless_line_before_the_records_of_a_transcript_is_kept_as_unknown(store, tmp_path):
    """A damaged transcript whose first line lost its ``type`` still imports whole;
    the typeless line is kept as unknown and does not open the session early."""
    path = copy_sample(tmp_path)
    lines = good_lines()
    typeless = json.loads(lines[2])  # a user prompt: it has a cwd
    del typeless["type"]
    path.write_bytes(b"\n".join([json.dumps(typeless).encode()] + lines) + b"\n")
    summary = import_paths(store, [path])
    [warning] = summary.warnings
    assert warning.line == 1 and warning.message == "kept as unknown record: record has no type"
    assert sorted(stored_raw(store)) == sorted([json.dumps(typeless).encode()] + lines)
    [started] = [e for e in store.read_all() if e.type == "SessionStarted"]
    assert started.metadata["source"]["line"] > 0  # opened by a transcript record, not by the typeless line


def test_a_file_that_is_not_a_transcript_is_warned_about_once_until_it_changes(store, tmp_path):
    """Skipped files are counted apart from errors and remembered by size and
    mtime: a rerun neither reads nor warns about them again; a change is looked at."""
    root = tmp_path / "history"
    (root / "logs").mkdir(parents=True)
    hooks = root / "logs" / "hooks.jsonl"
    shutil.copy(HOOK_LOGS / "Stop.jsonl", hooks)
    binary = root / "logs" / "photo.jsonl"
    binary.write_bytes(bytes(range(256)) * 40)
    shutil.copytree(SAMPLE.parent, root / "projects" / SAMPLE.parent.name)
    first = import_paths(store, [root])
    assert (first.files, first.files_skipped, first.errors) == (3, 2, 0)
    assert sorted(w.path for w in first.warnings) == [str(hooks), str(binary)]
    again = import_paths(store, [root])
    assert (again.files, again.files_unchanged, again.files_skipped, again.errors) == (3, 1, 2, 0)
    assert (again.warnings, again.lines, again.bytes) == ([], 0, 0)
    # the log grows: looked at (and warned about) again; then it holds a transcript record: imported
    hooks.write_bytes(hooks.read_bytes() * 2)
    grown = import_paths(store, [root])
    assert [w.path for w in grown.warnings] == [str(hooks)] and grown.files_skipped == 2
    hooks.write_bytes(SAMPLE.read_bytes())
    became = import_paths(store, [root])
    assert (became.files_skipped, became.warnings) == (1, []) and became.lines == len(good_lines())


def test_errors_count_files_that_could_not_be_read_not_notices(store, tmp_path):
    path = copy_sample(tmp_path)
    (path.parent / "odd.jsonl").mkdir()  # a directory named like a transcript: it cannot be read as one
    summary = import_paths(store, [tmp_path / "projects"])
    assert summary.errors == 1 and summary.files_skipped == 0
    assert [str(w) for w in summary.warnings] == [f"{path.parent / 'odd.jsonl'}: cannot read: Is a directory"]
    assert summary.as_json()["errors"] == 1 and summary.events_added > 0


def test_a_tally_of_unknown_records_reads_as_one_not_as_a_line_out_of_order(store, tmp_path):
    """Line 2 holds two records spliced together: a cut-off fragment (warned at
    once) and a user record without content (a record type tallied once per import,
    said at the end): the tally names where the first one is, not "line 2" again."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"type":"user","message":{"role":"user","content":"hi"},"uuid":"u1","sessionId":"s-1",'
                     b'"timestamp":"2026-11-01T00:00:00Z"}\n{"type":"user"}{"type":"assistant"\n  garbage\n')
    summary = import_paths(store, [path])
    assert [str(w) for w in summary.warnings] == [
        f"{path}:2: kept as unknown record: cut-off fragment of a damaged line",
        f"{path}:3: kept as unknown record: invalid JSON: Expecting value: line 1 column 3 (char 2)",
        f"kept as unknown record: user message without content (1 such record), the first at {path}:2",
    ]
    assert (summary.errors, summary.files_skipped) == (0, 0)
