"""``kapacitor setup``: install Kapacitor's hooks into Claude Code.

The hooks go into ``~/.claude/settings.json`` (``$CLAUDE_CONFIG_DIR`` moves it) or,
with ``--project``, the repository's ``.claude/settings.json``. A Kapacitor hook
is a command hook whose command runs ``kapacitor hook EVENT``: that is how setup
recognises its own entries, so running it twice changes nothing, every other
setting and hook is kept, and ``--uninstall`` removes exactly those entries.
The plugin under ``plugin/`` ships the same hooks (a test keeps them equal).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from kapacitor.capture import client_config
from kapacitor.capture.hook import EVENTS
from kapacitor.cli import mcp_setup

HOOK_TIMEOUT = 10  # seconds; the hook itself returns in milliseconds
_OURS = re.compile(r"(?:^|[\s/'\"])kapacitor['\"]?\s+hook\s+[A-Za-z]+\s*$")


def hook_command() -> str:
    """How this installation runs ``kapacitor``: the console script beside this
    interpreter (the hooks must not depend on the agent's PATH)."""
    script = Path(sys.executable).parent / "kapacitor"
    found = str(script) if script.is_file() else shutil.which("kapacitor")
    return shlex.quote(found) if found else f"{shlex.quote(sys.executable)} -m kapacitor"


def hooks_config(command: str) -> dict[str, list[dict[str, Any]]]:
    """The ``hooks`` section Kapacitor needs: one command hook per event."""
    return {
        event: [{"hooks": [{"type": "command", "command": f"{command} hook {event}", "timeout": HOOK_TIMEOUT}]}]
        for event in EVENTS
    }


def is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and hook.get("type") == "command" and bool(_OURS.search(str(hook.get("command", ""))))


def add_hooks(settings: dict[str, Any], command: str) -> dict[str, Any]:
    """``settings`` with Kapacitor's hooks: an existing Kapacitor entry is updated in
    place (a second copy dropped), a missing one appended; nothing else is touched."""
    hooks = settings.setdefault("hooks", {})
    for event, groups in hooks_config(command).items():
        wanted = groups[0]["hooks"][0]
        existing = hooks.get(event)
        if not isinstance(existing, list):
            existing = hooks[event] = []
        placed, emptied = False, []
        for group in existing:
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                continue
            kept = []
            for hook in group["hooks"]:
                if not is_ours(hook):
                    kept.append(hook)
                elif not placed:
                    kept.append(wanted)
                    placed = True
            if group["hooks"] and not kept:
                emptied.append(group)
            group["hooks"] = kept
        hooks[event] = [g for g in existing if not any(g is e for e in emptied)]
        if not placed:
            hooks[event].append(groups[0])
    return settings


def remove_hooks(settings: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``settings`` without Kapacitor's hooks, and how many were removed. Groups and
    events left empty by the removal go too; everything else stays."""
    hooks = settings.get("hooks")
    removed = 0
    if not isinstance(hooks, dict):
        return settings, 0
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                kept = [h for h in group["hooks"] if not is_ours(h)]
                removed += len(group["hooks"]) - len(kept)
                if not kept and group["hooks"]:
                    continue
                group["hooks"] = kept
            kept_groups.append(group)
        if kept_groups or not groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    if removed and not hooks:
        del settings["hooks"]
    return settings, removed


def settings_path(project: bool) -> Path:
    if project:
        return Path.cwd() / ".claude" / "settings.json"
    configured = os.environ.get("CLAUDE_CONFIG_DIR", "").split(",")[0].strip()
    return (Path(configured).expanduser() if configured else Path.home() / ".claude") / "settings.json"


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc} (fix or move it, then rerun)") from None
    if not isinstance(settings, dict):
        raise click.ClickException(f"{path} is not a JSON object (fix or move it, then rerun)")
    return settings


def _save(path: Path, before: str | None, settings: dict[str, Any]) -> bool:
    text = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    if before is not None and json.loads(before or "{}") == settings:
        return False  # nothing to change: leave the file as it is, byte for byte
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".kapacitor.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


@click.command("setup")
@click.option("--project", is_flag=True, help="Install into this repository's .claude/settings.json instead of ~/.claude/settings.json.")
@click.option("--server", metavar="URL", help=f"Kapacitor server the hooks send to (default {client_config.DEFAULT_SERVER}).")
@click.option("--token", metavar="TOKEN", help="Bearer token for that server (stored in the config file, mode 600). Better kept off the command line (shell history, ps): --token-file.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, allow_dash=True), default=None, help="Read the token from this file ('-': standard input), keeping it off the command line.")
@click.option("--exclude", "exclude", multiple=True, metavar="DIR", help="Never capture sessions in DIR or below it (repeatable; shell patterns allowed): decided by the hook, nothing leaves this machine.")
@click.option("--uninstall", is_flag=True, help="Remove exactly the hooks setup added; keep everything else.")
def setup_command(project: bool, server: str | None, token: str | None, token_file: str | None,
                  exclude: tuple[str, ...], uninstall: bool) -> None:
    """Install Kapacitor's hooks into Claude Code (idempotent).

    Adds one `kapacitor hook EVENT` command hook for SessionStart, UserPromptSubmit,
    PreToolUse, PostToolUse, PostToolUseFailure, Stop, SubagentStart, SubagentStop,
    PreCompact, Notification, PreModelSwitch, PostModelSwitch (a /model switch,
    clients 2.1.3xx) and SessionEnd, and registers the `kapacitor mcp` server
    (memory and session tools) in ~/.claude.json (--project: .mcp.json).
    Every other setting and hook is kept;
    running it again changes nothing. The server URL and token go to client.json
    in your config dir ($KAPACITOR_SERVER and $KAPACITOR_TOKEN override them).
    """
    if token_file is not None:
        with click.open_file(token_file) as handle:
            token = handle.read().strip()
    _run(project, server, token, uninstall, list(exclude))


def _run(project: bool, server: str | None, token: str | None, remove: bool, exclude: list[str] | None = None) -> None:
    path = settings_path(project)
    before = path.read_text(encoding="utf-8") if path.exists() else None
    settings = _load(path)
    if remove:
        settings, removed = remove_hooks(settings)
        changed = _save(path, before, settings) if removed else False
        click.echo(f"Removed {removed} Kapacitor hook(s) from {path}." if changed else f"No Kapacitor hooks in {path}.")
        mcp_path, had = mcp_setup.uninstall(project)
        click.echo(f"Removed the Kapacitor MCP server from {mcp_path}." if had else f"No Kapacitor MCP server in {mcp_path}.")
        return
    command = hook_command()
    changed = _save(path, before, add_hooks(settings, command))
    click.echo(f"{'Installed' if changed else 'Already installed:'} Kapacitor hooks for {len(EVENTS)} events in {path}")
    click.echo(f"  command: {command} hook EVENT")
    mcp_path, mcp_changed = mcp_setup.install(project, command)
    click.echo(f"  MCP:     {command} mcp ({'registered in' if mcp_changed else 'already in'} {mcp_path})")
    current = client_config.load()
    if server or token or exclude or not Path(client_config.config_file()).exists():
        config = client_config.ClientConfig(server=(server or current.server).rstrip("/"), token=token if token is not None else current.token)
        dirs = list(dict.fromkeys([*client_config.excluded_dirs(), *exclude])) if exclude else None
        click.echo(f"  server:  {config.server} (saved in {client_config.save(config, dirs)})")
        if dirs:
            click.echo(f"  never captured: {', '.join(dirs)}")
    else:
        click.echo(f"  server:  {current.server} (from {client_config.config_file()})")
