"""Property-based: the real recorded records, with random JSON values of every type
put into their fields, lines cut, lone surrogates and deep nesting inserted, go
through the normalizer, import, live ingest (the real shipper posting to the
real server on loopback), every read model and every page, and nothing breaks: no exception escapes, no valid record is lost, every read model reaches
the head without skipping an event, every page answers 200.

Bounded for CI: ``derandomize`` (the same examples every run) and a fixed number
of examples (``KAPACITOR_PROPERTY_EXAMPLES`` scales them; docs/reliability.md
has the counts of a run).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import RECORDED, transcript_files
from kapacitor.capture import client_config, shipper
from kapacitor.capture.importer import import_paths
from kapacitor.capture.layout import identity
from kapacitor.events import EVENT_TYPES, USAGE_METADATA_KEY
from kapacitor.normalize.claude_code import Normalizer, Source
from kapacitor.normalize.validate import MAX_COUNT
from kapacitor.projections import skipped
from kapacitor.server.app import create_app
from kapacitor.store import codec, open_store

SCALE = float(os.environ.get("KAPACITOR_PROPERTY_EXAMPLES", "1"))
FILES = transcript_files()
LINES = {path: path.read_bytes().splitlines() for path in FILES}
TALLY: Counter[str] = Counter()  # shapes tried, lines fed, pages checked: docs/reliability.md

ODD_STRINGS = [
    "", "2026-13-45T99:99:99Z", "2026-01-02T03:04:05+05:30", "yesterday", "[/]", "[bold]x[/bold]",
    "\ud800", "a\udfffb", "<script>alert(1)</script>", "slow", "-1", "1e300", "\x00", "💥" * 3,
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([-1, 2**63, 2**70, 10**13, 0])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e300, -0.0, 1.5])
    | st.text(max_size=12)
    | st.sampled_from(ODD_STRINGS)
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
DEEP = "__kapacitor_deep__"


def paths_of(value: Any, prefix: tuple = (), depth: int = 0) -> list[tuple]:
    """Every place in a record a value can be put: keys of objects, items of lists."""
    out = []
    if depth > 6:
        return out
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out.append(prefix + (key,))
        out.extend(paths_of(child, prefix + (key,), depth + 1))
    return out


def put(record: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        record = record[key]
    record[path[-1]] = value


def get_at(record: Any, path: tuple) -> Any:
    for key in path:
        record = record[key]
    return record


@st.composite
def mutated_line(draw, line: bytes) -> bytes:
    """One recorded line, changed in one of the ways real history gets damaged."""
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "cut", "surrogate", "deep"]))
    TALLY[f"shape:{kind}"] += 1
    if kind == "cut":
        return line[: draw(st.integers(1, max(1, len(line) - 1)))]
    record = json.loads(line)
    paths = paths_of(record)
    if not paths:
        return line
    path = draw(st.sampled_from(paths))
    if kind == "value":
        put(record, path, draw(JSON))
    elif kind == "drop":
        parent = get_at(record, path[:-1])
        if isinstance(parent, dict):
            del parent[path[-1]]
    elif kind == "surrogate":
        current = get_at(record, path)
        text = current if isinstance(current, str) else str(current)
        cut = draw(st.integers(0, len(text)))
        put(record, path, text[:cut] + draw(st.sampled_from(["\ud83d", "\ude00", "\udfff"])) + text[cut:])
    elif kind == "deep":
        put(record, path, DEEP)
    text = json.dumps(record, ensure_ascii=True)
    if kind == "deep":
        depth = draw(st.sampled_from([70, 300, 1100]))
        text = text.replace(f'"{DEEP}"', "[" * depth + "1" + "]" * depth, 1)
    return text.encode()


@st.composite
def damaged_file(draw) -> tuple[Path, list[bytes], set[int]]:
    """A recorded transcript with 1 to 4 of its lines damaged (replaced, or a damaged
    copy added after the original: a copy before it would share its uuid, hence its
    event ids, and stand for it), and which resulting lines are untouched originals."""
    path = draw(st.sampled_from(FILES))
    lines = list(LINES[path])
    damage = draw(st.lists(st.tuples(st.integers(0, len(lines) - 1), st.booleans()), min_size=1, max_size=4))
    out: list[bytes] = []
    good: set[int] = set()
    plan = {index: insert for index, insert in damage}
    for index, line in enumerate(lines):
        if index in plan and plan[index]:
            good.add(len(out))
            out.append(line)
        if index in plan:
            out.append(draw(mutated_line(line)))
        else:
            good.add(len(out))
            out.append(line)
    return path, out, good


_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def assert_documented_types(event) -> None:  # type: ignore[no-untyped-def]
    """The contract of normalize/validate.py, checked on one event."""
    cls = EVENT_TYPES[event.type]
    for f in dataclasses.fields(cls):
        value = event.data[f.name]
        declared = str(f.type)
        if f.name == "timestamp":
            assert value == "" or _CANONICAL.fullmatch(value), value
        elif declared == "str":
            assert isinstance(value, str)
        elif declared == "int":
            assert isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
        elif declared == "bool":
            assert isinstance(value, bool)
        elif declared.startswith("dict"):
            assert isinstance(value, dict)
        elif declared.startswith("list"):
            assert isinstance(value, list) and all(isinstance(item, dict) for item in value)
    for call in event.data.get("tool_calls", []) if event.type == "AssistantToolCallsGenerated" else []:
        assert all(isinstance(call[k], str) for k in ("call_id", "tool_name", "tool_kind"))
        assert isinstance(call["arguments"], dict)
    usage = event.metadata.get(USAGE_METADATA_KEY)
    if usage is not None:
        assert all(isinstance(usage[k], str) for k in ("model", "message_id", "request_id"))
        assert all(isinstance(v, int) and 0 <= v <= MAX_COUNT for k, v in usage.items() if k.endswith("_tokens"))
    # valid Unicode everywhere: the stored JSON is UTF-8 without surrogate escapes
    stored = codec.dumps(event.data)
    stored.decode("utf-8")
    assert not re.search(rb"(?<!\\)(?:\\\\)*\\u[dD][89a-fA-F]", stored)


@settings(max_examples=int(400 * SCALE), derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_the_normalizer_gives_documented_types_for_any_damaged_record(data):
    path = data.draw(st.sampled_from(FILES))
    line = data.draw(st.sampled_from(LINES[path]))
    damaged = data.draw(mutated_line(line))
    session_id, agent_id = identity(str(path))
    source = Source(session_id, agent_id)
    routed = Normalizer(source).feed(damaged, 0, 0)
    TALLY["normalizer lines"] += 1
    assert routed, "every line gives at least one event"
    raws = [new.metadata.get("raw") or new.metadata.get("raw_b64") for _, new in routed]
    assert len([r for r in raws if r is not None]) == 1  # one event keeps the line, the others point at it
    for _, new in routed:
        assert_documented_types(new)


def fetch_all(app, urls: list[str]) -> dict[str, int]:
    async def run() -> dict[str, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            out = {}
            for url in urls:
                response = await client.get(url, headers={"accept": "text/html"})
                out[url] = response.status_code
            return out

    return asyncio.run(run())


def page_urls(session_ids: list[str]) -> list[str]:
    urls = ["/", "/?fragment=rows", "/sidebar", "/sessions.json", "/repos.json", "/healthz"]
    for sid in session_ids:
        base = f"/sessions/{sid}"
        urls += [base, f"{base}?fragment=1", f"{base}/trace", f"{base}/stats", f"{base}.json",
                 f"{base}/chat.json", f"{base}/trace.json", f"{base}/stats.json", f"{base}/chat?start=0"]
    return urls


@settings(max_examples=int(40 * SCALE), derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(damaged_file())
def test_damaged_transcripts_go_through_import_every_read_model_and_every_page(damaged):
    path, lines, good = damaged
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        target = root / "transcripts" / path.relative_to(RECORDED)
        target.parent.mkdir(parents=True)
        target.write_bytes(b"\n".join(lines) + b"\n")
        store_path = root / "k.db"
        store = open_store(f"sqlite://{store_path}")
        try:
            summary = import_paths(store, [root / "transcripts"])
            TALLY["files imported"] += 1
            TALLY["lines imported"] += summary.lines
            # no valid record lost: every untouched recorded line is stored, raw, byte for byte
            stored = Counter(e.metadata["raw"].encode() for e in store.read_all() if "raw" in e.metadata)
            lost = Counter(lines[i] for i in good) - stored
            assert not lost, [line[:300] for line in lost]
        finally:
            store.close()
        app = create_app(f"sqlite://{store_path}", run_projections=False)
        try:
            runner = app.state.runner
            runner.catch_up()
            head = app.state.store.head_position()
            assert set(runner.positions().values()) == {head}, "every read model reaches the head"
            assert skipped.skipped(runner.conn) == [], "no read model needed to skip an event"
            sessions = [row[0] for row in runner.conn.execute("SELECT session_id FROM sessions")]
            statuses = fetch_all(app, page_urls(sessions))
            TALLY["pages checked"] += len(statuses)
            assert {url: code for url, code in statuses.items() if code != 200} == {}
        finally:
            app.state.close()


def test_report_the_tally():
    """Writes what the property tests tried (for docs/reliability.md) when asked."""
    out = os.environ.get("KAPACITOR_PROPERTY_TALLY")
    if out:
        Path(out).write_text(json.dumps(dict(sorted(TALLY.items())), indent=2))


def http_status(url: str) -> int:
    request = urllib.request.Request(url, headers={"accept": "text/html"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def caught_up(server) -> dict:  # noqa: ANN001
    """``/healthz`` once every read model of the live server reached the head."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=10) as response:
                health = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            health = json.loads(exc.read())
        if health["lag"] == 0 or time.monotonic() > deadline:
            return health
        time.sleep(0.05)


@settings(max_examples=int(25 * SCALE), derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(damaged=damaged_file(), hook_value=JSON, hook_field=st.sampled_from(["tool_name", "tool_input", "cwd", "prompt", "extra"]))
def test_damaged_transcripts_sent_live_reach_the_store_every_read_model_and_every_page(
    live_server, tmp_path, damaged, hook_value, hook_field
):
    """The same damage, sent as the hook and the follower send it: the real
    shipper reads the transcript and POSTs its batches, with a hook payload that
    has a random value in one field, to the real server on loopback."""
    path, lines, good = damaged
    session_id = str(uuid.uuid4())
    transcript = tmp_path / session_id / f"{session_id}.jsonl"
    transcript.parent.mkdir()
    transcript.write_bytes(b"\n".join(lines) + b"\n")
    payload = {"hook_event_name": "PostToolUse", "session_id": session_id, "transcript_path": str(transcript),
               "cwd": str(tmp_path), hook_field: hook_value}
    hook = {"event": "PostToolUse", "at": shipper.utc_stamp(), "payload": payload}
    config = client_config.load()
    result = shipper.ship(session_id, config, transcript=str(transcript), cwd=str(tmp_path), hook=hook)
    while result.more:
        result = shipper.ship(session_id, config, transcript=str(transcript), cwd=str(tmp_path))
    TALLY["live files sent"] += 1
    assert (result.rejected, result.spooled) == (0, 0), "every batch answered 2xx"
    health = caught_up(live_server)
    assert health["lag"] == 0 and health["ok"], health
    store = open_store(f"sqlite://{live_server.store_path}")
    try:
        stored = Counter(e.metadata["raw"].encode() for e in store.read_all() if "raw" in e.metadata)
    finally:
        store.close()
    lost = Counter(lines[i] for i in good) - stored
    assert not lost, [line[:300] for line in lost]
    statuses = {url: http_status(live_server.url + url) for url in page_urls([session_id])}
    TALLY["live pages checked"] += len(statuses)
    assert {url: code for url, code in statuses.items() if code != 200} == {}
