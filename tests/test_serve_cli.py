"""``kapacitor serve`` as a user runs it: the real server in a subprocess on a
loopback port, with the bundled demo set or an import of the history first."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta

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
    finally:
        output = server.stop()
    assert listing["total"] == 14 and "Traceback" not in output  # the sessions of scripts/demo/sessions.py
    assert (tmp_path / "share" / "kapacitor" / "demo.db").exists()
    assert not (tmp_path / "share" / "kapacitor" / "kapacitor.db").exists()  # the user's store is untouched
    github = [r["key"] for r in repos if r["kind"] == "github"]
    assert len(github) >= 4 and all("/" in key and not key.startswith("/") for key in github)
    assert len({s["user"] for s in listing["sessions"]}) >= 4
    assert len({s["started"][:10] for s in listing["sessions"]}) >= 7
    newest = datetime.fromisoformat(listing["sessions"][0]["started"].replace("Z", "+00:00"))
    assert timedelta(0) < datetime.now(UTC) - newest < timedelta(days=1)  # dated as if made today


def test_import_first_serves_the_history_of_this_machine(tmp_path):
    config = tmp_path / "claude"
    shutil.copytree(RECORDED / "projects", config / "projects")
    server = start_server(f"sqlite://{tmp_path / 'mine.db'}", tmp_path, "--import", env={"CLAUDE_CONFIG_DIR": str(config)})
    try:
        listing = server.get_json("/sessions.json")
    finally:
        output = server.stop()
    assert listing["total"] == 4 and "events added" in output
