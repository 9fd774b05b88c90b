"""``kapacitor doctor`` and ``/healthz``: every check, healthy and not, through the
real CLI and a real server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from capture_helpers import Server
from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

BAD = NewEvent(
    id="00000000-0000-0000-0000-0000000000bd",
    type="AssistantToolCallsGenerated",
    data={"timestamp": "2026-01-01T00:00:00.000Z", "tool_calls": "not a list"},
    metadata={"source": {"session_id": "x"}},
)


def doctor(store_path, *extra, env=None):  # type: ignore[no-untyped-def]
    """``kapacitor doctor --json`` on a SQLite file (a path) or any store URL."""
    url = store_path if str(store_path).startswith("postgresql://") else f"sqlite://{store_path}"
    result = subprocess.run(
        [sys.executable, "-m", "kapacitor", "--store", url, "doctor", "--json", *extra],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, {c["name"]: c for c in json.loads(result.stdout)}


def test_a_missing_store_fails_and_says_what_to_do(tmp_path):
    code, checks = doctor(tmp_path / "nope.db", env={"KAPACITOR_SERVER": "http://127.0.0.1:9"})
    assert code == 1 and checks["store"]["status"] == "fail"
    assert "no store at" in checks["store"]["detail"] and "kapacitor import" in checks["store"]["fix"]
    assert not (tmp_path / "nope.db").exists()
    assert checks["server"]["status"] == "warn" and "kapacitor serve" in checks["server"]["fix"]
    assert checks["hooks"]["status"] == "warn" and "kapacitor setup" in checks["hooks"]["fix"]
    assert checks["spools"]["status"] == "ok"


def test_a_healthy_store_and_server_pass(store, store_path, tmp_path):
    import_paths(store, SAMPLE_DIRS)
    store.close()
    subprocess.run([sys.executable, "-m", "kapacitor", "setup"], check=True, capture_output=True)
    server = Server(store_path).start()
    try:
        deadline = time.monotonic() + 60  # a guard against a hang, not a timing
        while server.get("/healthz")["lag"] and time.monotonic() < deadline:  # type: ignore[index]
            time.sleep(0.1)
        code, checks = doctor(store_path, env={"KAPACITOR_SERVER": server.url})
    finally:
        server.stop()
    assert code == 0, checks
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert "quick_check ok" in checks["store"]["detail"]
    assert {"read model sessions", "read model tool_calls", "hooks", "spools", "server"} <= set(checks)


def test_a_skipped_event_makes_healthz_503_and_doctor_fail(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    store.append("AgentSession-x", [BAD])
    store.close()
    server = Server(store_path).start()
    try:
        deadline = time.monotonic() + 60  # a guard against a hang, not a timing
        while True:  # until every read model is at the head
            try:
                health = server.get("/healthz")
                code = 200
            except urllib.error.HTTPError as exc:
                code, health = exc.code, json.loads(exc.read())
            if health["lag"] == 0 and health["head"]:
                break
            assert time.monotonic() < deadline, health
            time.sleep(0.1)
        assert code == 503
        assert health["ok"] is False and health["skipped"]["tool_calls"] == 1 and set(health["skipped"].values()) == {1}
        assert "read model 'tool_calls' skipped 1 event(s) (`kapacitor projections status`)" in health["problems"]
        code, checks = doctor(store_path, env={"KAPACITOR_SERVER": server.url})
        assert code == 1
        assert checks["read model tool_calls"]["status"] == "fail" and BAD.id in checks["read model tool_calls"]["detail"]
        assert checks["server"]["status"] == "fail" and "skipped 1 event" in checks["server"]["detail"]
        # the other read models went on to the head
        assert health["lag"] == 0 and set(health["projections"].values()) == {health["head"]}
    finally:
        server.stop()


def test_healthz_answers_200_with_nothing_wrong(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    store.close()
    server = Server(store_path).start()
    try:
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as response:
            assert response.status == 200
            assert json.loads(response.read())["problems"] == []
    finally:
        server.stop()


def test_doctor_reads_the_read_models_of_a_postgresql_store_through_the_port(pg_url):  # noqa: F811
    store = open_store(pg_url)
    try:
        import_paths(store, SAMPLE_DIRS)
        store.append("AgentSession-x", [BAD])
        runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
        try:
            runner.catch_up()
        finally:
            runner.close()
        code, checks = doctor(pg_url, env={"KAPACITOR_SERVER": "http://127.0.0.1:9"})
        assert code == 1 and "reachable" in checks["store"]["detail"]
        assert checks["read model tool_calls"]["status"] == "fail" and BAD.id in checks["read model tool_calls"]["detail"]
        models = {name: c["status"] for name, c in checks.items() if name.startswith("read model ")}
        assert len(models) == len(PROJECTIONS) and set(models.values()) == {"ok", "fail"}, checks
        store.append("AgentSession-y", [NewEvent(f"00000000-0000-0000-0000-00000000000{i}", "SessionEnded",
                                                 {"timestamp": "2026-01-01T00:00:00.000Z"}) for i in range(2)])
        code, checks = doctor(pg_url, env={"KAPACITOR_SERVER": "http://127.0.0.1:9"})
        behind = {name: checks[name] for name, status in models.items() if status == "ok"}
        assert {(c["status"], c["detail"]) for c in behind.values()} == {("warn", "2 event(s) behind the log")}
    finally:
        store.close()


def test_read_models_past_the_head_of_a_replaced_log_are_unhealthy(tmp_path):
    """Read models kept for a bigger log, read against a smaller one (the store
    replaced under a running server): their checkpoints name events the log does
    not hold, and /healthz's report and the statuses doctor reads say so."""
    from kapacitor.projections.catalog import statuses
    from kapacitor.projections.runner import open_read_models
    from kapacitor.server.app import health_report

    old, new = open_store(f"sqlite://{tmp_path / 'old.db'}"), open_store(f"sqlite://{tmp_path / 'new.db'}")
    try:
        import_paths(old, SAMPLE_DIRS)
        import_paths(new, SAMPLE_DIRS[1:])
        runner = ProjectionRunner(old, open_read_db(old), PROJECTIONS)
        try:
            runner.catch_up()
            assert health_report(old, runner.conn, runner)["ok"]
            conn = open_read_models(open_read_db(old))
            try:
                assert not any(s.ahead for s in statuses(conn, old))
                ahead = {s.projection.name for s in statuses(conn, new) if s.ahead}
            finally:
                conn.close()
            report = health_report(new, runner.conn, runner)
        finally:
            runner.close()
    finally:
        old.close()
        new.close()
    assert "sessions" in ahead and "tool_calls" in ahead
    assert not report["ok"] and any("past the log's head" in p for p in report["problems"])  # type: ignore[union-attr]


def test_doctor_checks_the_server_it_is_given(store, store_path):
    import_paths(store, SAMPLE_DIRS[1:])
    store.close()
    server = Server(store_path).start()
    try:
        _, checks = doctor(store_path, "--server", server.url, env={"KAPACITOR_SERVER": "http://127.0.0.1:9"})
    finally:
        server.stop()
    assert server.url in checks["server"]["detail"] and checks["server"]["status"] in ("ok", "fail")
    _, checks = doctor(store_path, env={"KAPACITOR_SERVER": "http://127.0.0.1:9"})
    assert "http://127.0.0.1:9" in checks["server"]["detail"] and checks["server"]["status"] == "warn"


def test_doctor_asks_a_team_server_with_the_hooks_token(store, store_path):
    """A team server tells an anonymous caller only that it is healthy (no count of
    anyone's events); ``doctor`` asks with the hooks' token and gets the figures."""
    from kapacitor.access import accounts

    import_paths(store, SAMPLE_DIRS[1:])
    store.close()
    db = accounts.open_accounts(store_path)
    try:
        accounts.add_user(db, "ana")
        token = accounts.create_token(db, "ana")[1]
    finally:
        db.close()
    server = Server(store_path, None, "--auth").start()
    try:
        _, signed = doctor(store_path, env={"KAPACITOR_SERVER": server.url, "KAPACITOR_TOKEN": token})
        _, anonymous = doctor(store_path, "--server", server.url, env={"KAPACITOR_SERVER": "http://127.0.0.1:9"})
    finally:
        server.stop()
    assert signed["server"]["status"] == "ok" and ", head " in signed["server"]["detail"], signed["server"]
    assert anonymous["server"] == signed["server"] | {"detail": f"{server.url} healthy"}, anonymous["server"]


def test_a_team_members_laptop_has_no_store_and_passes(tmp_path):
    """docs/team.md §3: ``setup --server URL --token-file F`` sends the sessions to a
    team server; the laptop keeps no store. doctor says where they go and exits 0,
    but fails when a store is named and missing, and when nothing is configured."""
    from kapacitor.access import accounts

    team = tmp_path / "team.db"
    open_store(f"sqlite://{team}").close()
    db = accounts.open_accounts(team)
    try:
        accounts.add_user(db, "ann")
        (tmp_path / "token").write_text(accounts.create_token(db, "ann")[1] + "\n")
    finally:
        db.close()

    def run(*args, env=None):  # type: ignore[no-untyped-def]
        result = subprocess.run([sys.executable, "-m", "kapacitor", *args], capture_output=True, text=True,
                                timeout=120, env={**os.environ, **(env or {})})
        assert "Traceback" not in result.stderr, result.stderr
        return result

    unconfigured = run("doctor", "--json")
    assert unconfigured.returncode == 1, unconfigured.stdout
    assert {c["name"]: c for c in json.loads(unconfigured.stdout)}["store"]["status"] == "fail"

    server = Server(team, None, "--auth").start()
    try:
        run("setup", "--server", server.url, "--token-file", str(tmp_path / "token")).check_returncode()
        laptop = run("doctor", "--json")
        table = run("doctor")
        missing = tmp_path / "nope.db"
        named = run("--store", f"sqlite://{missing}", "doctor", "--json")
        from_env = run("doctor", "--json", env={"KAPACITOR_STORE": f"sqlite://{missing}"})
    finally:
        server.stop()
    checks = {c["name"]: c for c in json.loads(laptop.stdout)}
    assert laptop.returncode == 0, checks
    assert checks["store"] == {"name": "store", "status": "ok", "detail": f"none here: sessions go to {server.url}", "fix": ""}
    assert checks["server"]["status"] == "ok" and checks["hooks"]["status"] == "ok", checks
    assert not any(name.startswith("read model") for name in checks)
    assert table.returncode == 0 and "none here" in table.stdout and "fail" not in table.stdout
    for result in (named, from_env):
        store = {c["name"]: c for c in json.loads(result.stdout)}["store"]
        assert result.returncode == 1 and store["status"] == "fail" and f"no store at {missing}" in store["detail"]
    assert not missing.exists()
