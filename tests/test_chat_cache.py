"""The chat items kept between slices (``server/chat_cache.py``) on a real SQLite
store of the sample transcripts: a slice after the first reads no event at all,
whatever the session's length, and an event appended to the session or to one
of its subagents is seen by the next slice."""

from __future__ import annotations

from capture_helpers import WIDGETS
from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent, scrub_log_stream
from kapacitor.server.chat import chat_items, render_chat
from kapacitor.server.chat_cache import ChatCache
from kapacitor.server.trace import trace_tree


def counting_reads(store) -> list[str]:  # noqa: ANN001
    """Record the stream of every ``read_stream`` on this (real) store."""
    reads: list[str] = []
    read_stream = store.read_stream

    def counted(stream, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        reads.append(stream)
        return read_stream(stream, *args, **kwargs)

    store.read_stream = counted
    return reads


def test_slices_after_the_first_read_no_events_until_the_session_changes(store):
    import_paths(store, SAMPLE_DIRS)
    reads = counting_reads(store)
    cache = ChatCache()
    first = cache.items(store, WIDGETS)
    built = list(reads)
    assert f"AgentSession-{WIDGETS}" in built and any(s.startswith("AgentSubsession-") for s in built)
    assert first == chat_items(store, WIDGETS)
    reads.clear()
    for start in range(0, len(first), 3):
        render_chat(WIDGETS, cache.items(store, WIDGETS), start=start, limit=3)
    assert reads == []  # every slice after the first: no event read, whatever the session's length
    subagent = next(s for s in built if s.startswith("AgentSubsession-"))
    store.append(subagent, [NewEvent("cache-test-1", "UserMessageReceived", {"timestamp": "", "content": "late words"})])
    assert "late words" in str(cache.items(store, WIDGETS))
    store.append(f"AgentSession-{WIDGETS}", [NewEvent("cache-test-2", "UserMessageReceived", {"timestamp": "", "content": "later"})])
    assert cache.items(store, WIDGETS)[-1].text == "later"


def test_only_the_last_sessions_read_are_kept(store):
    import_paths(store, SAMPLE_DIRS)
    cache = ChatCache(size=1)
    sessions = sorted({e.stream.removeprefix("AgentSession-") for e in store.read_all() if e.stream.startswith("AgentSession-")})
    for session_id in sessions[:2]:
        cache.items(store, session_id)
    reads = counting_reads(store)
    cache.items(store, sessions[1])
    assert reads == []
    cache.items(store, sessions[0])
    assert reads and reads[0] == f"AgentSession-{sessions[0]}"


def test_the_trace_tree_is_kept_with_the_items(store):
    import_paths(store, SAMPLE_DIRS)
    cache = ChatCache()
    tree = cache.tree(store, WIDGETS)
    reads = counting_reads(store)
    assert cache.tree(store, WIDGETS) is tree and reads == []
    store.append(f"AgentSession-{WIDGETS}", [NewEvent("cache-test-3", "UserMessageReceived", {"timestamp": "", "content": "new"})])
    grown = cache.tree(store, WIDGETS)
    assert reads == [s for s in reads if s == f"AgentSession-{WIDGETS}"] and reads  # only the stream that moved
    assert grown.children[-1].detail == {"text": "new"}
    assert grown.as_json() == trace_tree(store, WIDGETS).as_json()


def test_a_scrub_builds_the_chat_again(store):
    """``kapacitor scrub`` rewrites stored events without a new version: its log
    stream moving drops what was kept."""
    import_paths(store, SAMPLE_DIRS)
    cache = ChatCache()
    before = cache.items(store, WIDGETS)
    store.append(scrub_log_stream(), [NewEvent("scrub-1", "SecretsScrubbed", {"events": []})])
    assert cache.items(store, WIDGETS) is not before
