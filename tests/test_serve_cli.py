"""``kapacitor serve`` as a user runs it: the real server in a subprocess on a
loopback port, with the bundled demo set or an import of the history first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from browser import start_server
from conftest import RECORDED


def test_serve_help_explains_the_options():
    out = subprocess.run([sys.executable, "-m", "kapacitor", "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for option in ("--host", "--port", "--demo", "--import", "7227"):
        assert option in out


def test_demo_fills_a_fresh_demo_store_with_a_team(tmp_path):
    server = start_server(None, tmp_path, "--demo")
    try:
        listing = server.get_json("/sessions.json")
        repos = server.get_json("/repos.json")
        facts = server.get_json("/api/memory/facts")
    finally:
        output = server.stop()
    assert listing["total"] == 14 and "Traceback" not in output  # the sessions of scripts/demo/sessions.py
    [told] = re.findall(r", (\d+) facts", output)
    assert int(told) == len(facts) > 5  # the team's facts and those the demo's evals retained
    assert (tmp_path / "share" / "kapacitor" / "demo.db").exists()
    assert not (tmp_path / "share" / "kapacitor" / "kapacitor.db").exists()  # the user's store is untouched
    github = [r["key"] for r in repos if r["kind"] == "github"]
    assert len(github) >= 4 and all("/" in key and not key.startswith("/") for key in github)
    assert len({s["user"] for s in listing["sessions"]}) >= 4
    starts = [datetime.fromisoformat(s["started"].replace("Z", "+00:00")).astimezone() for s in listing["sessions"]]
    assert len({start.date() for start in starts}) == 14  # one a day, in the zone of the machine serving it
    today = datetime.now().astimezone().date()  # dated as if made today (yesterday, early in the morning)
    assert max(starts) < datetime.now(UTC) and max(starts).date() in (today, today - timedelta(days=1))


def test_import_first_serves_the_history_of_this_machine(tmp_path):
    config = tmp_path / "claude"
    shutil.copytree(RECORDED / "projects", config / "projects")
    server = start_server(f"sqlite://{tmp_path / 'mine.db'}", tmp_path, "--import", env={"CLAUDE_CONFIG_DIR": str(config)})
    try:
        listing = server.get_json("/sessions.json")
    finally:
        output = server.stop()
    assert listing["total"] == 4 and "events added" in output


def test_a_second_demo_server_reuses_the_demo_store_under_the_first(tmp_path):
    """Starting the demo again (a second server, or a restart) never deletes the
    store a running server holds: it serves the demo already there, dated as before."""
    first = start_server(None, tmp_path, "--demo")
    demo_db = tmp_path / "share" / "kapacitor" / "demo.db"
    try:
        before = first.get_json("/sessions.json")
        inode = demo_db.stat().st_ino
        second = start_server(None, tmp_path, "--demo")
        try:
            again = second.get_json("/sessions.json")
            health = second.get_json("/healthz")
        finally:
            second_output = second.stop()
        after = first.get_json("/sessions.json")
        first_health = first.get_json("/healthz")
    finally:
        first_output = first.stop()
    assert demo_db.stat().st_ino == inode  # the same file: nothing deleted under the first server
    assert "serving the demo already in" in second_output and "demo: " in first_output
    assert [s["started"] for s in again["sessions"]] == [s["started"] for s in before["sessions"]]  # dates do not move
    assert after["total"] == before["total"] == again["total"] == 14
    assert health["ok"] and first_health["ok"]
    # the banner says how the CLI reads the demo, as a command that works as printed
    # (./scripts/run installs into .venv/bin, which is not on PATH)
    [printed] = re.findall(r"The CLI reads this store with: (.+)", first_output)
    assert printed.endswith(f" --store sqlite://{demo_db} sessions")
    env = os.environ | {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "share")}
    env.pop("KAPACITOR_STORE", None)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != bin_dir)
    typed = subprocess.run(printed, shell=True, capture_output=True, text=True, env=env)
    assert typed.returncode == 0 and "acme/" in typed.stdout, typed.stderr
    missing = subprocess.run([sys.executable, "-m", "kapacitor", "sessions"], capture_output=True, text=True, env=env)
    assert missing.returncode == 1 and "no store at" in missing.stderr
    assert printed in missing.stderr.replace("\n", "")  # the default store's error points at the demo's store
    chosen = tmp_path / "chosen.db"
    named = subprocess.run([sys.executable, "-m", "kapacitor", "--store", f"sqlite://{chosen}", "sessions"],
                           capture_output=True, text=True, env=env)
    assert named.returncode == 1 and "the demo's store" not in named.stderr  # a store named on purpose: no demo hint
    listed = subprocess.run([sys.executable, "-m", "kapacitor", "--store", f"sqlite://{demo_db}", "sessions", "--json"],
                            capture_output=True, text=True, env=env, check=True)
    assert len(json.loads(listed.stdout)) >= 1
