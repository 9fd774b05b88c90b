import sqlite3
import stat

import pytest

from kapacitor.store import open_store
from kapacitor.store.base import StoreError
from kapacitor.store.contract import EventStoreContract, make_events


class TestSQLiteStore(EventStoreContract):
    @pytest.fixture
    def store_url(self, tmp_path):
        return f"sqlite://{tmp_path / 'events.db'}"


def test_file_is_in_wal_mode_with_large_pages_and_survives_reopen(tmp_path):
    path = tmp_path / "events.db"
    store = open_store(f"sqlite://{path}")
    store.append("S-1", make_events(2))
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0] == 16384
    reopened = open_store(str(path))
    assert [e.data["i"] for e in reopened.read_stream("S-1")] == [0, 1]
    reopened.close()


@pytest.mark.parametrize("url", ["sqlite://", "mysql://x", "nonsense"])
def test_bad_store_urls_give_a_clear_error(url):
    with pytest.raises(StoreError, match="store URL"):
        open_store(url)


def test_errors_never_show_a_store_password():
    with pytest.raises(StoreError) as error:
        open_store("mysql://dev:s3cret@db.internal/events")
    assert "s3cret" not in str(error.value) and "dev:***@" in str(error.value)


def test_a_new_store_is_readable_by_its_user_only(tmp_path):
    path = tmp_path / "data" / "kapacitor" / "events.db"
    store = open_store(f"sqlite://{path}")
    try:
        store.append("s-1", make_events(2))
    finally:
        store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for sidecar in path.parent.glob("events.db-*"):
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, sidecar


def test_import_checkpoints_move_from_stream_metadata_to_their_table(tmp_path):
    """A store made before checkpoints had a table kept them as ``$import-`` streams'
    metadata (a system-stream name in KurrentDB): opening it moves them."""
    from kapacitor.store.sqlite import MIGRATIONS, connect, migrate

    path = tmp_path / "old.db"
    conn = connect(path)
    migrate(conn, MIGRATIONS[:1])
    conn.execute("INSERT INTO streams (stream, metadata) VALUES ('$import-abc', ?)", (b'{"offset": 5}',))
    conn.close()
    store = open_store(f"sqlite://{path}")
    try:
        assert store.get_checkpoint("import-abc") == {"offset": 5}
        assert store.get_stream_metadata("$import-abc") == {}
    finally:
        store.close()
