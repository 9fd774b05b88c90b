"""``kapacitor setup``: hooks into a real settings.json in a temporary HOME,
idempotent, keeping everything else; --uninstall removes exactly its own; the
plugin ships the same hooks; the installed command really runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from capture_helpers import free_port, spooled
from kapacitor.capture import client_config
from kapacitor.capture.hook import EVENTS
from kapacitor.cli import cli
from kapacitor.cli.setup_cmd import hooks_config

ROOT = Path(__file__).resolve().parent.parent
USER_SETTINGS = {
    "model": "opus",
    "permissions": {"allow": ["Bash(ls:*)"]},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard.sh", "timeout": 3}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
}


def setup(*args: str) -> str:
    result = CliRunner().invoke(cli, ["setup", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_setup_is_idempotent_keeps_user_hooks_and_uninstalls_exactly(isolated_home):
    path = isolated_home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(USER_SETTINGS, indent=4))
    original = path.read_text()
    setup()
    settings = json.loads(path.read_text())
    assert {k: v for k, v in settings.items() if k != "hooks"} == {"model": "opus", "permissions": {"allow": ["Bash(ls:*)"]}}
    assert sorted(settings["hooks"]) == sorted(EVENTS)
    for event in EVENTS:
        ours = [h for g in settings["hooks"][event] for h in g["hooks"] if h["command"].endswith(f"kapacitor hook {event}")]
        assert len(ours) == 1 and ours[0]["type"] == "command"
    assert settings["hooks"]["PreToolUse"][0] == USER_SETTINGS["hooks"]["PreToolUse"][0]
    assert settings["hooks"]["Stop"][0] == USER_SETTINGS["hooks"]["Stop"][0]

    installed = path.read_bytes()
    assert "Already installed" in setup()
    assert path.read_bytes() == installed  # twice changes nothing

    assert f"Removed {len(EVENTS)}" in setup("--uninstall")
    assert json.loads(path.read_text()) == json.loads(original)
    assert "No Kapacitor hooks" in setup("--uninstall")


def test_setup_replaces_an_old_install_in_place(isolated_home):
    path = isolated_home / ".claude" / "settings.json"
    path.parent.mkdir()
    old = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "/old/venv/bin/kapacitor hook Stop"},
                                          {"type": "command", "command": "notify-send done"}]}]}}
    path.write_text(json.dumps(old))
    setup()
    stop = json.loads(path.read_text())["hooks"]["Stop"]
    assert len(stop) == 1 and stop[0]["hooks"][1]["command"] == "notify-send done"
    assert stop[0]["hooks"][0]["command"] != "/old/venv/bin/kapacitor hook Stop"
    setup("--uninstall")
    assert json.loads(path.read_text()) == {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]}}


def test_project_scope_and_server_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = setup("--project", "--server", "http://127.0.0.1:9999/", "--token", "s3cret")
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert sorted(settings["hooks"]) == sorted(EVENTS)
    assert not (Path.home() / ".claude" / "settings.json").exists()
    assert client_config.load() == client_config.ClientConfig("http://127.0.0.1:9999", "s3cret")
    assert oct(os.stat(client_config.config_file()).st_mode & 0o777) == "0o600"
    assert "s3cret" not in out
    setup("--project")  # a rerun keeps the saved server and token
    assert client_config.load() == client_config.ClientConfig("http://127.0.0.1:9999", "s3cret")


def test_unreadable_settings_are_left_alone_with_a_clear_error(isolated_home):
    path = isolated_home / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text("{oops")
    result = CliRunner().invoke(cli, ["setup"])
    assert result.exit_code == 1 and "cannot read" in result.output and "Traceback" not in result.output
    assert path.read_text() == "{oops"


def test_installed_command_runs_the_hook(isolated_home, tmp_path, monkeypatch):
    monkeypatch.setenv("KAPACITOR_SERVER", f"http://127.0.0.1:{free_port()}")
    setup()
    settings = json.loads((isolated_home / ".claude" / "settings.json").read_text())
    command = settings["hooks"]["PostToolUse"][0]["hooks"][0]["command"]
    payload = {"session_id": "s-2", "transcript_path": str(tmp_path / "s-2.jsonl"), "cwd": str(tmp_path)}
    result = subprocess.run(command, shell=True, input=json.dumps(payload).encode(), capture_output=True,
                            env={**os.environ, "KAPACITOR_FOLLOW": "0"}, timeout=30)
    assert result.returncode == 0 and result.stderr == b""
    assert spooled("s-2")[0]["hook"]["event"] == "PostToolUse"


def test_plugin_ships_the_same_hooks():
    manifest = json.loads((ROOT / "plugin" / ".claude-plugin" / "plugin.json").read_text())
    assert manifest["name"] == "kapacitor"
    hooks = json.loads((ROOT / "plugin" / "hooks" / "hooks.json").read_text())
    assert hooks["hooks"] == hooks_config("kapacitor")


def test_the_token_can_come_from_a_file_or_stdin_instead_of_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "token"
    secret.write_text("kpc_from_a_file\n")
    setup("--project", "--server", "http://127.0.0.1:9999", "--token-file", str(secret))
    assert client_config.load().token == "kpc_from_a_file"
    result = CliRunner().invoke(cli, ["setup", "--project", "--token-file", "-"], input="kpc_from_stdin\n")
    assert result.exit_code == 0, result.output
    assert client_config.load() == client_config.ClientConfig("http://127.0.0.1:9999", "kpc_from_stdin")
