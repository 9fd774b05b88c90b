"""``kapacitor setup`` registers ``kapacitor mcp`` with Claude Code beside the hooks
(user scope in ~/.claude.json, ``--project`` in .mcp.json), keeps every other key,
is idempotent, and ``--uninstall`` removes exactly it; the plugin carries it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kapacitor.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def setup(*args: str) -> str:
    result = CliRunner().invoke(cli, ["setup", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_user_scope_registration_keeps_the_rest_and_uninstalls_exactly(isolated_home):
    path = isolated_home / ".claude.json"
    other = {"numStartups": 3, "mcpServers": {"github": {"type": "stdio", "command": "gh-mcp", "args": []}}}
    path.write_text(json.dumps(other))
    assert "registered in" in setup()
    config = json.loads(path.read_text())
    ours = config["mcpServers"]["kapacitor"]
    assert ours["type"] == "stdio" and ours["command"].endswith("kapacitor") and ours["args"] == ["mcp"]
    assert config["numStartups"] == 3 and config["mcpServers"]["github"] == other["mcpServers"]["github"]
    before = path.read_text()
    assert "already in" in setup() and path.read_text() == before
    assert "Removed the Kapacitor MCP server" in setup("--uninstall")
    assert json.loads(path.read_text()) == other


def test_project_scope_and_claude_config_dir(isolated_home, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    setup("--project")
    assert json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]["kapacitor"]["args"] == ["mcp"]
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cfg"))
    setup()
    assert "kapacitor" in json.loads((tmp_path / "cfg" / ".claude.json").read_text())["mcpServers"]


def test_the_plugin_carries_the_mcp_server():
    servers = json.loads((ROOT / "plugin" / ".mcp.json").read_text())["mcpServers"]
    assert servers == {"kapacitor": {"command": "kapacitor", "args": ["mcp"]}}
