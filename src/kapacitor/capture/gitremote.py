"""A working directory's GitHub repository, read from its git config (stdlib only).

The SessionStart hook needs the repository to recall its facts and cannot afford
running ``git`` (or importing ``subprocess``); ``gitinfo`` runs git where time
allows. Both use ``github_repository`` for the remote URL.
"""

from __future__ import annotations

import os
import re

_GITHUB = re.compile(r"github\.com[:/]+([A-Za-z0-9_.\-]+)/([A-Za-z0-9_.\-]+?)(?:\.git)?/?$")
_SECTION = re.compile(r'^\s*\[\s*remote\s+"origin"\s*\]\s*$')
_URL = re.compile(r"^\s*url\s*=\s*(.+?)\s*$")


def github_repository(remote_url: str) -> str | None:
    """``owner/repo`` for a GitHub remote URL (ssh, https or ssh://), else None."""
    match = _GITHUB.search(remote_url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def git_dir(cwd: str) -> str | None:
    """The ``.git`` directory of the repository ``cwd`` is in (a worktree's
    ``.git`` file followed to its common dir), or None."""
    path = os.path.abspath(cwd) if cwd else ""
    while path:
        dot = os.path.join(path, ".git")
        if os.path.isdir(dot):
            return dot
        if os.path.isfile(dot):
            try:
                with open(dot, encoding="utf-8") as handle:
                    target = handle.read().strip().removeprefix("gitdir:").strip()
            except OSError:
                return None
            target = os.path.normpath(os.path.join(path, target))
            common = os.path.join(target, "commondir")
            if os.path.isfile(common):
                with open(common, encoding="utf-8") as handle:
                    target = os.path.normpath(os.path.join(target, handle.read().strip()))
            return target
        parent = os.path.dirname(path)
        path = "" if parent == path else parent
    return None


def origin_url(cwd: str) -> str | None:
    """The ``origin`` remote's URL from the repository's config, or None."""
    found = git_dir(cwd)
    if not found:
        return None
    try:
        with open(os.path.join(found, "config"), encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        if line.lstrip().startswith("["):
            inside = bool(_SECTION.match(line))
        elif inside and (url := _URL.match(line)):
            return url.group(1)
    return None


def repository_of(cwd: str) -> str | None:
    """``owner/repo`` of the GitHub repository ``cwd`` is in, else None."""
    url = origin_url(cwd)
    return github_repository(url) if url else None
