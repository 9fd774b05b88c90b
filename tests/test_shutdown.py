"""Stopping in any order: the server's background threads and tasks (live hub,
projection runner, eval worker, chat warm-up) end without an exception, a
traceback, or a query left running on a database that is being closed."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from kapacitor.access.accounts import ensure_schema
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import open_read_models
from kapacitor.server.live import LiveHub
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db


def test_a_cancelled_hub_ends_only_once_its_query_has_ended(tmp_path):
    """The server closes the database right after the hub's task has ended: the
    hub's query, running in a worker thread when the task was cancelled, must
    be over by then (it went on, and failed or opened a connection nobody closed)."""
    store = open_store(f"sqlite://{tmp_path / 'events.db'}")
    db = open_read_models(open_read_db(store))
    ensure_schema(db)
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()

    class HeldHub(LiveHub):
        def advance(self, viewers):  # noqa: ANN001, ANN202 — the real one, held until released
            entered.set()
            release.wait(30)
            try:
                return super().advance(viewers)
            finally:
                finished.set()

    hub = HeldHub(store, db, [p.name for p in PROJECTIONS])

    async def scenario() -> bool:
        task = asyncio.create_task(hub.run())
        await asyncio.to_thread(entered.wait, 30)  # its query is running now
        task.cancel()
        asyncio.get_running_loop().call_later(0.2, release.set)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return finished.is_set()

    try:
        assert asyncio.run(scenario()) is True
    finally:
        release.set()
        db.close()
        store.close()
