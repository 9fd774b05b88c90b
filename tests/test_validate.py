"""The validation boundary (normalize/validate.py): its rules one by one, then the
malformed shapes that used to stop a read model, fail a page or abort an import,
each applied to a real recorded session and pushed through import, every read
model and every page."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from test_property_bad_records import fetch_all, page_urls

from conftest import RECORDED
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent
from kapacitor.normalize.claude_code import Normalizer, Source
from kapacitor.normalize.validate import (
    MAX_COUNT,
    MAX_DEPTH,
    LineFacts,
    checked,
    count,
    utc_timestamp,
)
from kapacitor.projections import skipped
from kapacitor.server.app import create_app
from kapacitor.store import open_store

SESSION = RECORDED / "interactive" / "projects" / "-home-sam-work-repo" / "56d0e3a4-49a6-4882-8732-25313eede8cc.jsonl"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2026-01-02T03:04:05.678Z", "2026-01-02T03:04:05.678Z"),
        ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000Z"),
        ("2026-01-02T05:04:05.1+02:00", "2026-01-02T03:04:05.100Z"),
        ("2026-01-02T03:04:05", "2026-01-02T03:04:05.000Z"),  # no zone: taken as UTC
        ("", ""),
        (None, ""),
        ("2026-13-45T00:00:00Z", None),
        ("yesterday", None),
        (1_700_000_000, None),
        ({"at": 1}, None),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC
    ],
)
def test_timestamps_become_canonical_utc_or_are_refused(value, expected):
    assert utc_timestamp(value) == expected


@pytest.mark.parametrize(
    "value,expected",
    [(0, 0), (12, 12), (12.0, 12), (MAX_COUNT, MAX_COUNT), (MAX_COUNT + 1, None), (-1, None), (2**70, None),
     (1e300, None), (1.5, None), (True, None), ("12", None), (None, None), ([1], None)],
)
def test_counts_are_non_negative_integers_in_range(value, expected):
    assert count(value) == expected


def event(data: dict[str, Any], metadata: dict[str, Any] | None = None, type: str = "UserMessageReceived") -> NewEvent:
    return NewEvent("00000000-0000-0000-0000-000000000001", type, data, metadata or {})


def test_replaced_values_are_named_and_the_data_has_the_declared_types():
    out = checked(event({"timestamp": 17, "content": {"a": 1}, "message_id": 5, "message_index": -3, "extensions": []}), LineFacts(scrub=False, deep=False))
    assert out.data == {"timestamp": "", "content": '{"a":1}', "message_id": "5", "message_index": 0, "extensions": {}}
    assert set(out.metadata["$invalid"]) == {"timestamp", "content", "message_id", "message_index", "extensions"}
    assert out.metadata["$invalid"]["timestamp"] == "17"


def test_lone_surrogates_are_replaced_in_the_data_only_when_the_line_may_hold_them():
    data = {"timestamp": "", "content": "cut \ud83d here", "extensions": {"claude_code": {"k": ["\udfff"]}}}
    out = checked(event(data), LineFacts(scrub=True, deep=False))
    assert out.data["content"] == "cut \ufffd here" and out.data["extensions"]["claude_code"]["k"] == ["\ufffd"]
    assert set(out.metadata["$invalid"]) == {"content", "extensions.claude_code.k.0"}


def test_nesting_deeper_than_the_limit_is_kept_as_json_text():
    deep: Any = 1
    for _ in range(MAX_DEPTH + 10):
        deep = [deep]
    out = checked(event({"timestamp": "", "content": "", "extensions": {"claude_code": {"x": deep}}}), LineFacts(scrub=False, deep=True))
    kept = out.data["extensions"]["claude_code"]["x"]
    while isinstance(kept, list):
        kept = kept[0]
    assert isinstance(kept, str) and json.loads(kept)  # the rest, as JSON text
    assert any(path.startswith("extensions.claude_code.x") for path in out.metadata["$invalid"])


def test_usage_counts_out_of_range_are_zero_and_flagged():
    usage = {"model": 5, "message_id": None, "request_id": "r", "input_tokens": 2**70, "output_tokens": "12",
             "cache_read_input_tokens": 1e300, "cache_creation_input_tokens": -4, "ephemeral_5m_input_tokens": 3,
             "ephemeral_1h_input_tokens": 0}
    out = checked(event({"timestamp": "", "content": ""}, {"$usage": usage}), LineFacts(scrub=False, deep=False))
    assert out.metadata["$usage"] == {"model": "5", "message_id": "", "request_id": "r", "input_tokens": 0, "output_tokens": 0,
                                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
                                      "ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 0}
    assert {"$usage.input_tokens", "$usage.output_tokens", "$usage.cache_read_input_tokens",
            "$usage.cache_creation_input_tokens", "$usage.model"} <= set(out.metadata["$invalid"])


def test_a_record_the_mapping_cannot_follow_is_kept_whole_as_unknown():
    line = json.dumps({"type": "assistant", "uuid": "u", "message": {"content": [{"type": "text", "text": "x"}], "usage": {"cache_creation": 5}}}).encode()
    [(_, new)] = Normalizer(Source("s")).feed(line, 0, 0)
    assert new.type == "UnknownRecordReceived" and new.data["reason"].startswith("cannot map record: AttributeError")
    assert new.metadata["raw"].encode() == line


# --- the shapes, through everything ------------------------------------------------------

Mutation = Callable[[dict[str, Any]], bool]
"""Changes a record in place; True when it applied to it."""


def _set(kind: str | None, path: tuple, value: Any) -> Mutation:
    def mutate(record: dict[str, Any]) -> bool:
        if kind is not None and record.get("type") != kind:
            return False
        target: Any = record
        for key in path[:-1]:
            if not isinstance(target, dict) or not isinstance(target.get(key), (dict, list)):
                return False
            target = target[key]
        if isinstance(target, list):
            if not target:
                return False
            target = target[0]
        if not isinstance(target, dict):
            return False
        target[path[-1]] = value
        return True

    return mutate


DEEP = "__deep__"
SHAPES: dict[str, Mutation] = {
    "timestamp an integer": _set(None, ("timestamp",), 1_700_000_000),
    "timestamp unparseable": _set(None, ("timestamp",), "not a time"),
    "timestamp month 13": _set(None, ("timestamp",), "2026-13-45T00:00:00Z"),
    "timestamp an object": _set(None, ("timestamp",), {"at": 1}),
    "timestamp with an offset": _set(None, ("timestamp",), "2026-11-25T22:58:56.984+02:00"),
    "tokens a string": _set("assistant", ("message", "usage", "input_tokens"), "12"),
    "tokens negative": _set("assistant", ("message", "usage", "output_tokens"), -5),
    "tokens 2^70": _set("assistant", ("message", "usage", "cache_read_input_tokens"), 2**70),
    "tokens 1e300": _set("assistant", ("message", "usage", "input_tokens"), 1e300),
    "tokens true": _set("assistant", ("message", "usage", "output_tokens"), True),
    "usage a list": _set("assistant", ("message", "usage"), [1, 2]),
    "cache_creation a number": _set("assistant", ("message", "usage", "cache_creation"), 5),
    "cwd an object": _set(None, ("cwd",), {"path": "/x"}),
    "cwd a list": _set(None, ("cwd",), ["/x"]),
    "gitBranch a number": _set(None, ("gitBranch",), 5),
    "message.id an object": _set("assistant", ("message", "id"), {"id": 1}),
    "message.model a list": _set("assistant", ("message", "model"), ["m"]),
    "message a string": _set("user", ("message",), "hello"),
    "message a list": _set("assistant", ("message",), [1, 2]),
    "content an object": _set("user", ("message", "content"), {"text": "x"}),
    "content blocks not objects": _set("assistant", ("message", "content"), [5, "x", None]),
    "text block text an object": _set("assistant", ("message", "content", "text"), {"a": 1}),
    "tool name an object": _set("assistant", ("message", "content", "name"), {"a": 1}),
    "tool input a string": _set("assistant", ("message", "content", "input"), "ls -la"),
    "tool_use id a list": _set("assistant", ("message", "content", "id"), [1]),
    "prompt with a lone surrogate": _set("user", ("message", "content"), "fix \ud83d this"),
    "cwd with a lone surrogate": _set(None, ("cwd",), "/home/\udfff/repo"),
    "tool name with a lone surrogate": _set("assistant", ("message", "content", "name"), "Bash\ud800"),
    "structuredPatch lines not strings": _set("user", ("toolUseResult", "structuredPatch"), [{"lines": [1, None, ["+x"]]}]),
    "structuredPatch a string": _set("user", ("toolUseResult", "structuredPatch"), "@@ -1 +1 @@"),
    "structuredPatch hunks not objects": _set("user", ("toolUseResult", "structuredPatch"), [5, "x"]),
    "toolUseResult a list": _set("user", ("toolUseResult",), [1, 2]),
    "toolUseResult.type a number": _set("user", ("toolUseResult", "type"), 5),
    "tool_result content an object": _set("user", ("message", "content", "content"), {"a": 1}),
    "tool_result is_error a string": _set("user", ("message", "content", "is_error"), "yes"),
    "durationMs slow": _set("system", ("durationMs",), "slow"),
    "durationMs 1e300": _set("system", ("durationMs",), 1e300),
    "subtype a list": _set("system", ("subtype",), ["turn_duration"]),
    "type [/]": _set("mode", ("type",), "[/]"),
    "type a number": _set("mode", ("type",), 5),
    "type an object": _set("last-prompt", ("type",), {"t": 1}),
    "aiTitle an object": _set("ai-title", ("aiTitle",), {"t": 1}),
    "attachment a string": _set("attachment", ("attachment",), "a file"),
    "uuid a number": _set("user", ("uuid",), 5),
    "parentUuid a list": _set("assistant", ("parentUuid",), ["p"]),
    "sessionId an object": _set("user", ("sessionId",), {"id": 1}),
    "isSidechain a string": _set("assistant", ("isSidechain",), "yes"),
    "agentId an object": _set("assistant", ("agentId",), {"a": 1}),
    "nested 70 deep": _set("user", ("toolUseResult",), DEEP + "70"),
    "nested 300 deep": _set("assistant", ("message", "content", "input"), DEEP + "300"),
    "nested 1100 deep": _set("user", ("message", "content"), DEEP + "1100"),
    "version an object": _set(None, ("version",), {"v": 2}),
}


def damaged_copy(mutate: Mutation) -> tuple[bytes, int]:
    """The recorded session with every record the mutation applies to changed;
    how many records it changed."""
    out, changed = [], 0
    for line in SESSION.read_bytes().splitlines():
        record = json.loads(line)
        if mutate(record):
            changed += 1
            text = json.dumps(record, ensure_ascii=True)
            for depth in (70, 300, 1100):
                text = text.replace(f'"{DEEP}{depth}"', "[" * depth + "1" + "]" * depth)
            out.append(text.encode())
        else:
            out.append(line)
    return b"\n".join(out) + b"\n", changed


def test_every_malformed_shape_goes_through_import_every_read_model_and_every_page(tmp_path):
    root = tmp_path / "projects" / "-home-sam-work-repo"
    root.mkdir(parents=True)
    names = {}
    for n, (name, mutate) in enumerate(SHAPES.items()):
        text, changed = damaged_copy(mutate)
        assert changed, f"shape {name!r} applies to no record of the session"
        session_id = f"00000000-0000-4000-8000-{n:012d}"
        (root / f"{session_id}.jsonl").write_bytes(text)
        names[session_id] = name
    store_path = tmp_path / "k.db"
    store = open_store(f"sqlite://{store_path}")
    try:
        summary = import_paths(store, [tmp_path / "projects"])
        assert summary.files == len(SHAPES) and summary.warnings  # each a warning, none fatal
    finally:
        store.close()
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    try:
        runner = app.state.runner
        runner.catch_up()
        head = app.state.store.head_position()
        assert set(runner.positions().values()) == {head}
        assert skipped.skipped(runner.conn) == []
        sessions = [row[0] for row in runner.conn.execute("SELECT session_id FROM sessions")]
        assert set(names) <= set(sessions)
        statuses = fetch_all(app, page_urls(sorted(sessions)))
        failed = {url: code for url, code in statuses.items() if code != 200}
        assert failed == {}, {names.get(url.split("/")[2].split("?")[0].removesuffix(".json"), url): code for url, code in failed.items()}
    finally:
        app.state.close()
