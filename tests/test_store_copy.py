"""``kapacitor store copy``: a laptop's SQLite log into a PostgreSQL store, whole,
idempotent, resumable after a kill, and with it who owns and may see what."""

from __future__ import annotations

import subprocess

from capture_helpers import KAPACITOR
from conftest import SAMPLE_DIRS
from kapacitor.access import accounts
from kapacitor.access.accounts import open_accounts
from kapacitor.access.viewer import ANONYMOUS, Viewer, visible_sessions
from kapacitor.capture.importer import import_paths
from kapacitor.cli.store_cmd import copy_log
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)


def log_of(url: str) -> list[tuple]:
    store = open_store(url)
    try:
        return [(e.id, e.stream, e.version, e.type, e.data, e.metadata) for e in store.read_all()]
    finally:
        store.close()


def test_copy_moves_the_whole_log_and_a_rerun_changes_nothing(tmp_path, pg_url):  # noqa: F811
    laptop = f"sqlite://{tmp_path / 'laptop.db'}"
    store = open_store(laptop)
    import_paths(store, SAMPLE_DIRS)
    store.close()
    first = subprocess.run([KAPACITOR, "store", "copy", laptop, pg_url], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert log_of(pg_url) == log_of(laptop) and "copied" in first.stdout
    again = subprocess.run([KAPACITOR, "store", "copy", laptop, pg_url], capture_output=True, text=True, timeout=300)
    assert "copied 0 events" in again.stdout and log_of(pg_url) == log_of(laptop)


def test_copy_resumes_where_a_killed_run_stopped(tmp_path):
    source_url, target_url = f"sqlite://{tmp_path / 'a.db'}", f"sqlite://{tmp_path / 'b.db'}"
    source, target = open_store(source_url), open_store(target_url)
    import_paths(source, SAMPLE_DIRS)
    stopped_at = []

    def kill_after_two_batches(events: int) -> None:
        stopped_at.append(events)
        if len(stopped_at) == 2:
            raise KeyboardInterrupt

    try:
        copy_log(source, target, source_url, kill_after_two_batches, batch=50)
    except KeyboardInterrupt:
        pass
    assert target.head_position() > 0
    added, skipped = copy_log(source, target, source_url, batch=50)
    assert added == source.count_after(0) - 100 and skipped == 100  # nothing read twice; the first 100 already there
    source.close(), target.close()


def test_a_rerun_says_every_event_is_already_there(tmp_path):
    source_url, target_url = f"sqlite://{tmp_path / 'a.db'}", f"sqlite://{tmp_path / 'b.db'}"
    source = open_store(source_url)
    import_paths(source, SAMPLE_DIRS)
    total = source.count_after(0)
    source.close()
    first = subprocess.run([KAPACITOR, "store", "copy", source_url, target_url], capture_output=True, text=True, timeout=300)
    assert first.stdout.startswith(f"copied {total:,} events from ") and "(0 already there)" in first.stdout
    again = subprocess.run([KAPACITOR, "store", "copy", source_url, target_url], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.startswith("copied 0 events from ")
    assert f"({total:,} already there)" in again.stdout
    assert log_of(target_url) == log_of(source_url)


def visible_per_viewer(url: str, viewers) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """The sessions each viewer may see in the store at ``url``, its read models caught up first."""
    store = open_store(url)
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    try:
        runner.catch_up()
        every = [sid for (sid,) in runner.conn.execute("SELECT session_id FROM repository_sessions")]
        return {v.name or "anonymous": set(visible_sessions(runner.conn, v, every)) for v in viewers}
    finally:
        runner.close()
        store.close()


def test_copy_carries_owners_visibility_users_and_tokens_both_ways(tmp_path, pg_url):  # noqa: F811
    laptop, back = f"sqlite://{tmp_path / 'laptop.db'}", f"sqlite://{tmp_path / 'back.db'}"
    store = open_store(laptop)
    import_paths(store, SAMPLE_DIRS)
    sessions = sorted({e.stream.removeprefix("AgentSession-") for e in store.read_all() if e.stream.startswith("AgentSession-")})
    db = open_accounts(open_read_db(store))
    accounts.add_user(db, "alice", email="alice@example.com")
    accounts.add_user(db, "bob", default_visibility="org")
    accounts.add_user(db, "carol")
    accounts.add_user(db, "root", admin=True)
    _, alice_token = accounts.create_token(db, "alice")
    bob_id, bob_token = accounts.create_token(db, "bob")
    accounts.revoke_token(db, bob_id)
    for sid, owner, visibility in [(sessions[0], "alice", None), (sessions[1], "alice", "org"),
                                   (sessions[2], "bob", "public"), (sessions[3], "bob", None)]:
        accounts.claim_session(db, sid, owner)
        if visibility:
            accounts.set_session_visibility(db, sid, visibility)
    db.close()
    store.close()
    viewers = [ANONYMOUS, Viewer("alice"), Viewer("bob"), Viewer("carol"), Viewer("root", admin=True)]
    expected = visible_per_viewer(laptop, viewers)
    assert expected["anonymous"] == {sessions[2]}
    assert expected["alice"] == {sessions[0], sessions[1], sessions[2], sessions[3]}
    assert expected["carol"] == {sessions[1], sessions[2], sessions[3]} and len(expected["root"]) == len(sessions)

    for source, target in [(laptop, pg_url), (pg_url, back)]:
        done = subprocess.run([KAPACITOR, "store", "copy", source, target], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "access: 4 user(s), 2 token(s), 4 session owner(s)/visibility, 0 repository default(s)" in done.stdout
        assert visible_per_viewer(target, viewers) == expected
        copied = open_accounts(target)
        try:
            assert accounts.user_for_token(copied, alice_token)[0].name == "alice"
            assert accounts.user_for_token(copied, bob_token) is None  # revoked stays revoked
            assert [u.name for u in accounts.list_users(copied) if u.admin] == ["root"]
        finally:
            copied.close()
        again = subprocess.run([KAPACITOR, "store", "copy", source, target], capture_output=True, text=True, timeout=300)
        assert "copied 0 events" in again.stdout and "access: 0 user(s), 0 token(s), 0 session owner(s)" in again.stdout


def test_what_the_target_decided_about_access_wins(tmp_path):
    source, target = open_accounts(f"sqlite://{tmp_path / 'a.db'}"), open_accounts(f"sqlite://{tmp_path / 'b.db'}")
    try:
        for db in (source, target):
            accounts.add_user(db, "alice")
            accounts.add_user(db, "bob")
        accounts.claim_session(source, "s1", "alice")
        accounts.set_session_visibility(source, "s1", "public")
        accounts.claim_session(source, "s2", "alice")
        accounts.set_session_visibility(source, "s2", "org")
        accounts.claim_session(target, "s1", "bob")
        accounts.set_session_visibility(target, "s1", "private")
        accounts.set_session_visibility(target, "s2", "private")  # no owner yet: the source's fills it in
        assert accounts.copy_access(source, target) == {"users": 0, "tokens": 0, "session_access": 1, "repository_access": 0}
        rows = dict((r[0], tuple(r[1:])) for r in target.execute("SELECT session_id, owner, visibility FROM session_access"))
        assert rows == {"s1": ("bob", "private"), "s2": ("alice", "private")}
    finally:
        source.close()
        target.close()
