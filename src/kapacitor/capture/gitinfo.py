"""What the machine knows about a session's working directory: its GitHub
repository (from the git remote, when the directory still exists) and the user."""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path
from typing import Any

from kapacitor.capture.gitremote import github_repository
from kapacitor.normalize.redact import redact


def _git(cwd: str | None, *args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *(["-C", cwd] if cwd else []), *args],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def resolve_context(cwd: str) -> dict[str, Any]:
    """Repository, remote and user for ``cwd``; fields are left out when unknown."""
    context: dict[str, Any] = {}
    exists = bool(cwd) and Path(cwd).is_dir()
    if exists:
        remote = _git(cwd, "remote", "get-url", "origin")
        if remote:
            context["remote_url"] = redact(remote)
            repository = github_repository(remote)
            if repository:
                context["repository"] = repository
    user = _git(cwd if exists else None, "config", "user.email")
    context["user"] = user or _os_user()
    return context


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""
