"""The live hub publishes a change as soon as the projection runner has applied it
(the runner wakes it), not at its next poll: the poll is made an hour long here,
so only the wake-up can deliver the message. On SQLite (the runner polls the log)
and on PostgreSQL (an append's NOTIFY wakes the runner)."""

from __future__ import annotations

import asyncio
import time

import pytest

from conftest import SAMPLE_DIRS
from kapacitor.access.accounts import ensure_schema
from kapacitor.access.viewer import LOCAL
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.server import live
from kapacitor.server.live import LiveHub
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

SESSION = "a11ce000-0000-4000-8000-00000000face"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    return f"sqlite://{tmp_path / 'events.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_an_applied_event_reaches_subscribers_without_waiting_for_the_poll(store_url, monkeypatch):
    monkeypatch.setattr(live, "POLL_SECONDS", 3600)
    store = open_store(store_url)
    import_paths(store, SAMPLE_DIRS)
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    runner.catch_up()
    db = open_read_db(store)
    ensure_schema(db)

    async def scenario() -> dict:
        hub = LiveHub(store, db, [p.name for p in PROJECTIONS])
        runner.on_progress = hub.wake
        queue = hub.subscribe(LOCAL)
        applied = hub.applied_position()
        watcher = asyncio.create_task(hub.run())
        await asyncio.wait_for(reached(hub, applied), 60)  # else it could take the new event for where it starts
        runner.start()
        await asyncio.to_thread(store.append, f"AgentSession-{SESSION}", [NewEvent(
            "wake-1", "UserMessageReceived", {"timestamp": "2026-11-29T10:00:00.000Z", "content": "hi"},
            {"source": {"session_id": SESSION}})])
        try:
            return await asyncio.wait_for(queue.get(), 60)
        finally:
            watcher.cancel()

    try:
        message = asyncio.run(scenario())
    finally:
        runner.close()
        db.close()
        store.close()
    assert message["sessions"] == [SESSION] and message["all"] is False


async def reached(hub: LiveHub, position: int) -> None:
    """Until the hub has read where the read models stand (``run`` does it first, in a thread)."""
    while hub.position < position:
        await asyncio.sleep(0.01)


def test_a_wake_after_the_hub_stopped_is_a_no_op_and_a_failing_listener_does_not_stop_the_read_models(tmp_path):
    """The server stops its hub's loop before its projection runner: a wake from the
    runner's thread in between must not raise (it did: "Event loop is closed" ended
    the projections thread), and whatever ``on_progress`` raises, the runner goes on."""
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    db = open_read_db(store)
    ensure_schema(db)
    hub = LiveHub(store, db, [p.name for p in PROJECTIONS])

    async def run_briefly() -> None:
        watcher = asyncio.create_task(hub.run())
        await asyncio.sleep(0.2)
        watcher.cancel()

    asyncio.run(run_briefly())
    hub.wake()  # the loop is closed now
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    calls = []

    def failing() -> None:
        calls.append(1)
        raise RuntimeError("a listener's bug")

    runner.on_progress = failing
    runner.start()
    try:
        for n in range(2):
            store.append(f"AgentSession-{SESSION}", [NewEvent(
                f"wake-{n}", "UserMessageReceived", {"timestamp": "2026-11-29T10:00:00.000Z", "content": "hi"},
                {"source": {"session_id": SESSION}})])
            deadline = time.monotonic() + 60  # a guard against a hang, not a timing
            while len(calls) <= n and time.monotonic() < deadline:
                time.sleep(0.05)
        assert len(calls) >= 2 and runner._thread.is_alive()
    finally:
        runner.close()
        db.close()
        store.close()
