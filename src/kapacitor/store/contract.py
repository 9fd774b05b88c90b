"""The contract every event store backend must pass.

Shipped inside the package (as the eventsourcing library does) so that a new
backend is one module plus one test file::

    class TestMyStore(EventStoreContract):
        @pytest.fixture
        def store_url(self, tmp_path): return "mybackend://..."

Needs pytest; it is imported only by tests.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time

import pytest

from kapacitor.events import NewEvent, event_id
from kapacitor.store import open_store
from kapacitor.store.base import (
    NO_STREAM,
    EventIdConflict,
    EventStore,
    Rewrite,
    WrongExpectedVersion,
    subscribe,
)


def make_events(n: int, tag: str = "e", **data: object) -> list[NewEvent]:
    return [
        NewEvent(id=event_id("contract", tag, i), type="Tested", data={"i": i, **data}, metadata={"m": i})
        for i in range(n)
    ]


_CHILD = """
import sys
from kapacitor.events import NewEvent, event_id
from kapacitor.store import open_store
url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = open_store(url)
for i in range(n):
    e = NewEvent(id=event_id("child", tag, i), type="Tested", data={"tag": tag, "i": i})
    store.append("Shared-1", [e])
    store.append("Own-" + tag, [e.__class__(id=event_id("own", tag, i), type="Tested", data={"i": i})])
store.close()
"""


class EventStoreContract:
    """Subclass and provide a ``store_url`` fixture naming a fresh, empty store."""

    @pytest.fixture
    def store(self, store_url: str):
        store = open_store(store_url)
        yield store
        store.close()

    def test_empty_store(self, store: EventStore):
        assert store.head_position() == 0
        assert store.read_all() == []
        assert store.read_stream("AgentSession-none") == []
        assert store.stream_version("AgentSession-none") == NO_STREAM

    def test_append_and_read_in_order(self, store: EventStore):
        result = store.append("S-1", make_events(3), NO_STREAM)
        assert (result.added, result.skipped, result.version) == (3, 0, 2)
        events = store.read_stream("S-1")
        assert [e.data["i"] for e in events] == [0, 1, 2]
        assert [e.version for e in events] == [0, 1, 2]
        assert [e.metadata["m"] for e in events] == [0, 1, 2]
        assert all(e.stream == "S-1" and e.type == "Tested" for e in events)
        assert result.position == events[-1].position == store.head_position()

    def test_read_backwards_and_limits(self, store: EventStore):
        store.append("S-1", make_events(5))
        assert [e.version for e in store.read_stream("S-1", -1, backwards=True)] == [4, 3, 2, 1, 0]
        assert [e.version for e in store.read_stream("S-1", 3, backwards=True, limit=2)] == [3, 2]
        assert [e.version for e in store.read_stream("S-1", 2, limit=2)] == [2, 3]

    def test_read_all_is_global_order_across_streams(self, store: EventStore):
        store.append("A-1", make_events(2, "a"))
        store.append("B-1", make_events(2, "b"))
        store.append("A-1", make_events(3, "a")[2:])
        everything = store.read_all()
        assert [e.stream for e in everything] == ["A-1", "A-1", "B-1", "B-1", "A-1"]
        positions = [e.position for e in everything]
        assert positions == sorted(positions) and len(set(positions)) == 5
        assert [e.stream for e in store.read_all(positions[2])] == ["B-1", "A-1"]
        assert len(store.read_all(0, limit=2)) == 2

    def test_appending_the_same_events_twice_is_idempotent(self, store: EventStore):
        store.append("S-1", make_events(3))
        again = store.append("S-1", make_events(3))
        assert (again.added, again.skipped, again.version) == (0, 3, 2)
        overlap = store.append("S-1", make_events(5))
        assert (overlap.added, overlap.skipped, overlap.version) == (2, 3, 4)
        assert [e.data["i"] for e in store.read_stream("S-1")] == [0, 1, 2, 3, 4]

    def test_duplicate_ids_inside_one_batch_are_stored_once(self, store: EventStore):
        events = make_events(2)
        assert store.append("S-1", events + events).added == 2

    def test_replayed_batch_succeeds_even_with_a_stale_expected_version(self, store: EventStore):
        store.append("S-1", make_events(2), NO_STREAM)
        assert store.append("S-1", make_events(2), NO_STREAM).added == 0

    def test_wrong_expected_version_is_rejected_and_writes_nothing(self, store: EventStore):
        store.append("S-1", make_events(2))
        with pytest.raises(WrongExpectedVersion):
            store.append("S-1", make_events(3, "x"), expected_version=0)
        with pytest.raises(WrongExpectedVersion):
            store.append("S-1", make_events(1, "y"), expected_version=NO_STREAM)
        with pytest.raises(WrongExpectedVersion):
            store.append("S-2", make_events(1, "z"), expected_version=0)
        assert store.stream_version("S-1") == 1
        assert store.head_position() == len(store.read_all()) == 2
        assert store.append("S-1", make_events(1, "w"), expected_version=1).version == 2

    def test_count_after_counts_the_events_past_a_position(self, store: EventStore):
        assert store.count_after(0) == 0
        store.append("S-1", make_events(3))
        with pytest.raises(WrongExpectedVersion):  # a refused append leaves no hole to count
            store.append("S-1", make_events(2, "x"), expected_version=0)
        store.append("S-2", make_events(4, "y"))
        for after in [0, *(e.position for e in store.read_all())]:
            assert store.count_after(after) == len(store.read_all(after))
        assert store.count_after(store.head_position()) == 0

    def test_an_id_used_in_another_stream_is_a_conflict(self, store: EventStore):
        store.append("S-1", make_events(1))
        with pytest.raises(EventIdConflict):
            store.append("S-2", make_events(1))
        assert store.read_stream("S-2") == []

    def test_append_many_is_atomic_across_streams(self, store: EventStore):
        results = store.append_many(
            [("A-1", make_events(2, "a"), NO_STREAM), ("B-1", make_events(1, "b"), NO_STREAM)],
            {"$checkpoint": {"offset": 7}},
        )
        assert [(r.added, r.version) for r in results] == [(2, 1), (1, 0)]
        assert store.get_stream_metadata("$checkpoint") == {"offset": 7}
        with pytest.raises(WrongExpectedVersion):
            store.append_many(
                [("C-1", make_events(1, "c"), NO_STREAM), ("A-1", make_events(1, "x"), NO_STREAM)],
                {"$checkpoint": {"offset": 9}},
            )
        assert store.read_stream("C-1") == []
        assert store.get_stream_metadata("$checkpoint") == {"offset": 7}
        assert store.head_position() == 3

    def test_checkpoints_commit_with_their_events_in_a_table_of_their_own(self, store: EventStore):
        assert store.get_checkpoint("import-1") == {}
        store.append_many([("A-1", make_events(2, "a"), NO_STREAM)], checkpoints={"import-1": {"offset": 7}})
        assert store.get_checkpoint("import-1") == {"offset": 7}
        with pytest.raises(WrongExpectedVersion):
            store.append_many([("A-1", make_events(1, "x"), NO_STREAM)], checkpoints={"import-1": {"offset": 9}})
        assert store.get_checkpoint("import-1") == {"offset": 7}
        store.append_many([], checkpoints={"import-1": {"offset": 9}})
        assert store.get_checkpoint("import-1") == {"offset": 9}
        assert store.stream_version("import-1") == NO_STREAM and store.get_stream_metadata("import-1") == {}

    def test_stream_metadata(self, store: EventStore):
        assert store.get_stream_metadata("S-1") == {}
        store.set_stream_metadata("S-1", {"offset": 10, "path": "/x"})
        store.set_stream_metadata("S-1", {"offset": 20, "path": "/x"})
        assert store.get_stream_metadata("S-1") == {"offset": 20, "path": "/x"}
        store.append("S-1", make_events(1), NO_STREAM)
        assert store.get_stream_metadata("S-1")["offset"] == 20

    def test_large_event(self, store: EventStore):
        big = "x" * (10 * 1024 * 1024)
        store.append("S-1", [NewEvent(id=event_id("big"), type="Big", data={"output": big})])
        assert store.read_stream("S-1")[0].data["output"] == big

    def test_unicode_and_lone_surrogates_round_trip(self, store: EventStore):
        texts = ["héllo wörld ✓ 日本語 🚀", "lone \ud800 surrogate", "nul \x00 byte", "\udfff"]
        store.append("S-1", [NewEvent(id=event_id("u", i), type="T", data={"t": t}) for i, t in enumerate(texts)])
        assert [e.data["t"] for e in store.read_stream("S-1")] == texts

    def test_large_repeated_text_is_stored_once_and_read_back_exactly(self, store: EventStore):
        # A 2.1.332 client writes the same ~40 KB system prompt into every session,
        # inside lines that differ in their first bytes (session id, time).
        shared = "".join(f"line {i}: {hashlib.sha256(str(i).encode()).hexdigest()}\\n" for i in range(1000))
        texts = [f'{{"sessionId":"s{n}","timestamp":"t{n}","shape":"{shared}"}}' for n in range(3)]
        mixed = "héllo \ud800 ✓ " * 2000  # non-ASCII and a lone surrogate, chunked too
        events = [NewEvent(id=event_id("shape", n), type="T", data={"n": n}, metadata={"raw": t}) for n, t in enumerate(texts)]
        store.append("S-1", events[:1])
        one = store.storage()
        store.append("S-2", [*events[1:], NewEvent(id=event_id("mixed"), type="T", data={"t": [mixed]})])
        assert [e.metadata["raw"] for e in store.read_all()[:3]] == texts
        assert store.read_stream("S-2")[-1].data == {"t": [mixed]}
        backwards = store.read_stream("S-2", backwards=True, from_version=-1, limit=3)
        assert [e.metadata["raw"] for e in backwards[1:]] == texts[:0:-1]
        three = store.storage()
        assert three["events"] == 4 and one["chunks"] > 1
        shared_bytes = one["chunk_bytes"] + one["event_bytes"]
        # Two more copies (and a different text) cost a small part of the first.
        assert three["chunk_bytes"] + three["event_bytes"] - shared_bytes < shared_bytes / 2
        assert three["event_bytes"] < len(shared)  # the text is not in the events

    def test_catch_up_then_live_subscription(self, store: EventStore):
        store.append("S-1", make_events(3))
        stop = threading.Event()
        seen: list[int] = []

        def follow():
            for event in subscribe(store, 0, stop=stop, poll_interval=0.01):
                seen.append(event.data["i"])
                if len(seen) == 5:
                    stop.set()

        thread = threading.Thread(target=follow)
        thread.start()
        deadline = time.monotonic() + 60  # a guard against a hang: a loaded machine can take seconds
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [0, 1, 2]
        store.append("S-1", make_events(5)[3:])
        thread.join(60)
        stop.set()
        thread.join()  # ended before the store is closed under it
        assert seen == [0, 1, 2, 3, 4]

    def test_subscription_resumes_after_a_position(self, store: EventStore):
        store.append("S-1", make_events(4))
        after = store.read_all()[1].position
        stop = threading.Event()
        got = []
        for event in subscribe(store, after, stop=stop, poll_interval=0.01):
            got.append(event.data["i"])
            if len(got) == 2:
                stop.set()
        assert got == [2, 3]

    def test_rewrite_replaces_data_and_metadata_and_keeps_the_rest(self, store: EventStore):
        store.append("S-1", make_events(3, secret="hunter2"))
        before = store.read_all()
        changed = store.rewrite([
            Rewrite(before[1].id, {"i": 1, "secret": "[REDACTED password #abc123]"}, {"m": 1, "scrubbed": True}),
            Rewrite("no-such-event", {"x": 1}, {}),
        ])
        after = store.read_all()
        assert changed == 1
        assert after[1].data == {"i": 1, "secret": "[REDACTED password #abc123]"} and after[1].metadata["scrubbed"]
        assert [(e.id, e.stream, e.type, e.version, e.position) for e in after] == [
            (e.id, e.stream, e.type, e.version, e.position) for e in before
        ]
        assert [after[0].data, after[2].data] == [before[0].data, before[2].data]
        assert store.head_position() == before[-1].position  # nothing appended
        assert store.rewrite([]) == 0

    def test_rewrite_of_a_long_string_keeps_no_chunk_of_the_old_value(self, store: EventStore):
        from kapacitor.store import blobs

        old = "".join(f"line {i}: password=hunter2-{i}\n" for i in range(400))
        new = old.replace("hunter2", "[REDACTED password #abc123]")
        [event] = make_events(1, "long", text=old)
        store.append("S-long", [event])
        assert store.rewrite([Rewrite(event.id, {**event.data, "text": new}, event.metadata)]) == 1
        assert store.read_all()[0].data["text"] == new
        needed: dict = {}
        blobs.encode({**event.data, "text": new}, needed)
        assert store.storage()["chunks"] == len(needed) > 1  # the old value's chunks are gone

    def test_two_processes_appending_concurrently(self, store: EventStore, store_url: str):
        n = 40
        children = [
            subprocess.Popen([sys.executable, "-c", _CHILD, store_url, tag, str(n)])
            for tag in ("p", "q")
        ]
        for child in children:
            assert child.wait(120) == 0
        shared = store.read_stream("Shared-1")
        assert [e.version for e in shared] == list(range(2 * n))
        for tag in ("p", "q"):
            assert [e.data["i"] for e in shared if e.data["tag"] == tag] == list(range(n))
            assert store.stream_version("Own-" + tag) == n - 1
        positions = [e.position for e in store.read_all()]
        assert len(positions) == 4 * n == len(set(positions))
        assert positions == sorted(positions)


__all__ = ["EventStoreContract", "make_events"]
