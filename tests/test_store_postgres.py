"""The PostgreSQL store against a real server: the shared contract, plus what only
concurrent connections can get wrong (commit order of positions, migrations
racing). ``scripts/test`` starts a throwaway server and sets
KAPACITOR_TEST_POSTGRES_URL; each test gets a database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from kapacitor.store import open_store
from kapacitor.store.base import (
    NO_STREAM,
    EventIdConflict,
    StoreError,
    WrongExpectedVersion,
    subscribe,
)
from kapacitor.store.contract import EventStoreContract, make_events
from kapacitor.store.postgres import MIGRATIONS

URL_VARIABLE = "KAPACITOR_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def admin_url() -> str:
    url = os.environ.get(URL_VARIABLE)
    if not url:
        message = f"{URL_VARIABLE} is not set: run ./scripts/test, which starts a throwaway PostgreSQL"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{message} (in CI the PostgreSQL tests must run)", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def pg_url(admin_url: str):
    """A URL naming a fresh, empty database, dropped after the test."""
    name = f"kapacitor_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


class TestPostgresStore(EventStoreContract):
    @pytest.fixture
    def store_url(self, pg_url):
        return pg_url


def test_readers_never_see_a_position_appear_behind_them(pg_url):
    """Writers in threads race; a subscriber that remembers only its last position
    must still see every event exactly once, and positions have no gaps."""
    store = open_store(pg_url)
    writers, batches = 4, 40
    stop = threading.Event()
    seen: list[int] = []

    def follow():
        seen.extend(e.position for e in subscribe(store, 0, stop=stop, batch_size=7, poll_interval=0))

    def write(tag: str):
        for i in range(batches):
            store.append_many(
                [(f"Own-{tag}", make_events(2, f"{tag}{i}"), -2), ("Shared-1", make_events(1, f"s{tag}{i}"), -2)]
            )

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(str(t),)) for t in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total, deadline = writers * batches * 3, time.monotonic() + 120  # a guard against a hang, not a timing
    while (not seen or seen[-1] < total) and time.monotonic() < deadline:
        stop.wait(0.01)
    stop.set()
    reader.join()  # ended before the store is closed under it
    store.close()
    assert seen == list(range(1, total + 1))


def test_positions_stay_gap_free_after_a_rejected_append(pg_url):
    store = open_store(pg_url)
    store.append("S-1", make_events(2))
    with pytest.raises(WrongExpectedVersion):
        store.append_many([("S-2", make_events(3, "a"), -2), ("S-1", make_events(1, "b"), 0)])
    store.append("S-3", make_events(2, "c"))
    assert [e.position for e in store.read_all()] == [1, 2, 3, 4]
    store.close()


_OPEN = "import sys\nfrom kapacitor.store import open_store\nopen_store(sys.argv[1]).close()\n"


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(pg_url):
    children = [subprocess.Popen([sys.executable, "-c", _OPEN, pg_url]) for _ in range(3)]
    assert [child.wait(60) for child in children] == [0, 0, 0]
    with psycopg.connect(pg_url) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == sorted(step.__name__ for step in MIGRATIONS)


def test_data_is_stored_as_bytes_so_nul_and_surrogates_survive(pg_url):
    store = open_store(pg_url)
    store.set_stream_metadata("S-1", {"path": "a\x00b\ud83d"})
    assert store.get_stream_metadata("S-1") == {"path": "a\x00b\ud83d"}
    store.close()
    with psycopg.connect(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'events' AND column_name IN ('data', 'metadata')"
            ).fetchall()
        )
    assert types == {"data": "bytea", "metadata": "bytea"}


def test_threads_share_a_few_connections(pg_url):
    store = open_store(pg_url)
    store.append("S-1", make_events(1))
    errors: list[BaseException] = []

    def read():
        try:
            for _ in range(20):
                assert len(store.read_stream("S-1")) == 1
        except BaseException as exc:  # noqa: B902 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert 1 <= len(store._idle) <= 16
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.head_position()


def test_unreachable_server_is_a_clear_error_without_the_password():
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as info:
        open_store("postgresql://kapacitor:s3cret@127.0.0.1:1/events?connect_timeout=5")
    assert "s3cret" not in str(info.value) and "\n" not in str(info.value)


def test_connections_the_server_dropped_are_replaced(pg_url):
    """A server restart or idle timeout kills pooled connections: the next calls
    reconnect instead of failing."""
    store = open_store(pg_url)
    store.append("S-1", make_events(2))
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]
    assert killed == len(store._idle) >= 1
    assert store.append("S-1", make_events(3)).added == 1
    assert [e.data["i"] for e in store.read_stream("S-1")] == [0, 1, 2]
    store.close()


def test_what_postgres_refuses_is_a_one_line_store_error(pg_url):
    store = open_store(pg_url)
    with pytest.raises(StoreError, match="NUL") as info:
        store.append("S-\x00", make_events(1))
    assert "\n" not in str(info.value)
    assert store.append("S-1", make_events(1)).added == 1
    store.close()


def test_append_many_decides_in_order_when_a_stream_or_an_id_recurs(pg_url):
    """One transaction fetches all streams and ids at once; the outcome must still be
    what the batches give one after the other."""
    store = open_store(pg_url)
    a = make_events(3, "a")
    results = store.append_many([("A-1", a[:2], NO_STREAM), ("A-1", a[1:], 1), ("A-1", a[2:], NO_STREAM)])
    assert [(r.added, r.skipped, r.version, r.position) for r in results] == [
        (2, 0, 1, 2),
        (1, 1, 2, 3),
        (0, 1, 2, 3),
    ]
    with pytest.raises(EventIdConflict):
        store.append_many([("C-1", make_events(1, "c"), NO_STREAM), ("D-1", make_events(1, "c"), NO_STREAM)])
    assert store.read_stream("C-1") == [] and store.head_position() == 3
    store.close()
