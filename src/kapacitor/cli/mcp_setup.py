"""Registering ``kapacitor mcp`` with Claude Code, beside the hooks.

Claude Code reads user-scope MCP servers from ``mcpServers`` in ``~/.claude.json``
(``$CLAUDE_CONFIG_DIR/.claude.json`` when that is set) and project-scope ones
from the repository's ``.mcp.json``. ``kapacitor setup`` adds a ``kapacitor``
stdio server there (``--project``: the latter) and ``--uninstall`` removes it,
leaving every other key as it was. The plugin ships the same server in
``plugin/.mcp.json``.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import click

SERVER_NAME = "kapacitor"


def mcp_config_path(project: bool) -> Path:
    if project:
        return Path.cwd() / ".mcp.json"
    configured = os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")[0].strip()
    return Path(configured).expanduser() / ".claude.json" if configured else Path.home() / ".claude.json"


def server_entry(command: str) -> dict[str, Any]:
    """The ``mcpServers`` entry: ``command`` is how setup runs kapacitor (maybe quoted)."""
    program, *args = shlex.split(command)
    return {"type": "stdio", "command": program, "args": [*args, "mcp"], "env": {}}


def _load(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8") or "{}") if path.exists() else {}
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc} (fix or move it, then rerun)") from None
    if not isinstance(loaded, dict):
        raise click.ClickException(f"{path} is not a JSON object (fix or move it, then rerun)")
    return loaded


def _write(path: Path, config: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".kapacitor.tmp")
    tmp.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def install(project: bool, command: str) -> tuple[Path, bool]:
    """Add or update the ``kapacitor`` server; (file, whether it changed)."""
    path = mcp_config_path(project)
    config = _load(path)
    servers = config.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise click.ClickException(f"{path}: mcpServers is not a JSON object (fix it, then rerun)")
    wanted = server_entry(command)
    if servers.get(SERVER_NAME) == wanted:
        return path, False
    servers[SERVER_NAME] = wanted
    _write(path, config)
    return path, True


def uninstall(project: bool) -> tuple[Path, bool]:
    """Remove the ``kapacitor`` server; (file, whether it was there)."""
    path = mcp_config_path(project)
    if not path.exists():
        return path, False
    config = _load(path)
    servers = config.get("mcpServers")
    if not isinstance(servers, dict) or SERVER_NAME not in servers:
        return path, False
    del servers[SERVER_NAME]
    _write(path, config)
    return path, True
