"""The chats of the huge sessions active at a start, built ahead in the background
(``server/chat_warmup.py``), on a real SQLite store of the sample transcripts and
the real app: the first read of a warmed session reads no event and equals a full
build; the warm-up never drops a chat someone read and never grows the cache."""

from __future__ import annotations

from fastapi.testclient import TestClient

from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.access.viewer import LOCAL
from kapacitor.events import agent_session_stream
from kapacitor.projections.ownership import inherited_positions
from kapacitor.server import chat_warmup
from kapacitor.server.app import create_app
from kapacitor.server.chat import chat_items
from kapacitor.server.chat_cache import ChatCache
from kapacitor.server import queries
from kapacitor.server.sessions_pages import subagents_of
from test_chat_cache import counting_reads


def sizes(store) -> dict[str, int]:  # noqa: ANN001
    """Session id -> events in its session stream."""
    streams = {e.stream for e in store.read_all() if e.stream.startswith("AgentSession-")}
    return {s.removeprefix("AgentSession-"): store.stream_version(s) + 1 for s in streams}


def test_the_huge_sessions_active_at_a_start_are_read_without_a_build(store, store_path, monkeypatch):
    import_paths(store, SAMPLE_DIRS)
    events = sizes(store)
    monkeypatch.setattr(chat_warmup, "WARM_FROM", sorted(events.values())[len(events) // 2])  # the larger half is "huge"
    _db(store).close()  # read models up to date, as a restarted server finds them
    app = create_app(f"sqlite://{store_path}")
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as client:  # the real start: runner, eval worker, warm-up
        app.state.runner.catch_up()
        app.state.chat_warmer.join()
        warmed = app.state.chat_warmer.built
        recent = [sid for (sid,) in app.state.db.execute("SELECT session_id FROM repository_sessions ORDER BY last_activity DESC")]
        expected = [sid for sid in recent if events.get(sid, 0) >= chat_warmup.WARM_FROM][: app.state.chat_cache.size]
        assert warmed == expected and len(warmed) >= 2  # the most recently active of the huge ones, as many as are kept
        assert all(events[sid] < chat_warmup.WARM_FROM for sid in recent[: recent.index(warmed[-1])] if sid not in warmed)
        reads = counting_reads(app.state.store)
        for sid in warmed:
            assert client.get(f"/sessions/{sid}/chat?start=0&limit=50").status_code == 200
            assert client.get(f"/sessions/{sid}/trace").status_code == 200
        assert reads == []  # the first read of each: no event read, nothing built
        for sid in warmed:
            kept, inherited = app.state.chat_cache._entries[sid], inherited_positions(app.state.db, sid)
            assert kept.chat.rebuilds == 1 and kept.chat.items == chat_items(store, sid, inherited)
            # A fresh build as the page makes it: each subagent spanned, and given its status, by the session's row.
            subagents = subagents_of(queries.session_row(app.state.db, sid, LOCAL) or {})
            kept_tree, full = kept.trace.update().as_json(), ChatCache().tree(store, sid, inherited, subagents).as_json()
            assert full["children"] and kept_tree["children"] == full["children"]  # (the page spans the root over the session's row)


def test_the_warm_up_fills_only_free_places_and_a_read_drops_a_warmed_chat_first(store, monkeypatch):
    import_paths(store, SAMPLE_DIRS)
    events = sizes(store)
    big = sorted(events, key=lambda sid: (-events[sid], sid))
    cache = ChatCache(size=2)
    cache.items(store, big[0])  # read by someone
    assert cache.warm(store, big[1], {}) and not cache.warm(store, big[2], {})  # one free place only
    assert not cache.warm(store, big[0], {})  # kept already
    reads = counting_reads(store)
    cache.items(store, big[3])  # a new read drops the warmed chat, not the one read
    assert set(cache._entries) == {big[0], big[3]}
    reads.clear()
    cache.items(store, big[0])
    assert reads == []
    monkeypatch.setattr(chat_warmup, "WARM_FROM", 1)
    assert cache.room() == 0 and chat_warmup.warm(store, _db(store), cache) == []


def _db(store):  # noqa: ANN001, ANN202
    from kapacitor.projections.catalog import PROJECTIONS
    from kapacitor.projections.runner import ProjectionRunner

    runner = ProjectionRunner(store, store.path, PROJECTIONS)
    runner.catch_up()
    return runner.conn


def test_a_session_stream_shorter_than_the_threshold_is_left_to_its_first_read(store, monkeypatch):
    import_paths(store, SAMPLE_DIRS)
    db = _db(store)
    events = sizes(store)
    monkeypatch.setattr(chat_warmup, "WARM_FROM", max(events.values()) + 1)
    assert chat_warmup.candidates(store, db, 4) == []
    monkeypatch.setattr(chat_warmup, "WARM_FROM", max(events.values()))
    assert chat_warmup.candidates(store, db, 4) == [max(events, key=events.__getitem__)]
    assert store.stream_version(agent_session_stream(chat_warmup.candidates(store, db, 4)[0])) + 1 == max(events.values())
