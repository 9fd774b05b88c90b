"""A team server that refuses a session's batches (404: another user's private
session; 401: a token it does not know), and what the client says of it: the
real ``kapacitor watch``, ``sync`` and ``doctor`` against a real ``serve --auth``
on loopback, as a second user on a machine of their own (their own HOME).
Trial 7: ``doctor`` said "start the server" while saying the server was
healthy, and ``watch`` said nothing."""

from __future__ import annotations

import json
import os
import subprocess

from capture_helpers import KAPACITOR, WIDGETS
from test_access import Team


def test_doctor_and_watch_name_the_servers_refusal_and_its_fix(tmp_path):
    team = Team(tmp_path)  # alice's WIDGETS session, private, on the server
    try:
        home = tmp_path / "bob-home"
        env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
               "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
               "KAPACITOR_SERVER": team.server.url, "KAPACITOR_TOKEN": team.tokens["bob"]}
        copy = tmp_path / "copied" / f"{WIDGETS}.jsonl"  # a copy of alice's transcript on bob's machine
        copy.parent.mkdir()
        copy.write_bytes(team.alice.main.read_bytes())

        def kapacitor(*args: str, **more: str) -> subprocess.CompletedProcess[str]:
            done = subprocess.run([KAPACITOR, *args], capture_output=True, text=True, timeout=120, env={**env, **more})
            assert "Traceback" not in done.stderr, done.stderr
            return done

        watched = kapacitor("watch", "--idle", "2", str(copy))
        assert watched.returncode == 0, watched.stderr
        [said] = watched.stderr.splitlines()  # one line, however many passes were refused
        assert said.startswith(f"session {WIDGETS}: {team.server.url} answered HTTP 404:"), said
        assert "no such session" in said and "fix: the token's user may not see the session" in said, said
        spool = home / "state" / "kapacitor" / "sessions" / f"{WIDGETS}.spool"
        assert spool.stat().st_size > 0  # kept, not set aside, not lost

        doctor = kapacitor("doctor", "--json")
        checks = {c["name"]: c for c in json.loads(doctor.stdout)}
        spools, server = checks["spools"], checks["server"]
        assert server["status"] == "ok" and "healthy" in server["detail"]
        assert spools["status"] == "fail" and doctor.returncode == 1, checks
        assert f"{team.server.url} answered HTTP 404: no such session '{WIDGETS}' (session {WIDGETS}, " in spools["detail"]
        assert "start the server" not in spools["fix"] and "sent by its owner, with their token" in spools["fix"]
        table = kapacitor("doctor", COLUMNS="200")
        assert "answered HTTP 404" in table.stdout and "start the server" not in table.stdout

        synced = kapacitor("sync")  # the same answer and fix, in one line
        assert synced.returncode == 1 and len(synced.stderr.strip().splitlines()) == 1, synced.stderr
        assert "answered HTTP 404" in synced.stderr and "sent by its owner" in synced.stderr

        stranger = {"KAPACITOR_TOKEN": "not-a-token"}
        assert kapacitor("sync", **stranger).returncode == 1
        doctor = kapacitor("doctor", "--json", **stranger)
        spools = {c["name"]: c for c in json.loads(doctor.stdout)}["spools"]
        assert spools["status"] == "fail" and "answered HTTP 401:" in spools["detail"], spools
        assert "refuses this machine's token" in spools["fix"] and f"kapacitor setup --server {team.server.url}" in spools["fix"]
        server = {c["name"]: c for c in json.loads(doctor.stdout)}["server"]  # /healthz refuses that token too
        assert server["status"] == "fail" and "answered HTTP 401: unknown or revoked token" in server["detail"], server
        assert server["fix"] == spools["fix"]
        assert spool.stat().st_size > 0

        team.server.stop()  # not answering is not a refusal: start it
        assert kapacitor("sync").returncode == 1
        spools = {c["name"]: c for c in json.loads(kapacitor("doctor", "--json").stdout)}["spools"]
        assert spools["status"] == "warn" and "did not take it" in spools["detail"], spools
        assert spools["fix"].startswith("start the server"), spools
    finally:
        team.close()
