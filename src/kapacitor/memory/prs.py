"""Pull requests and the sessions behind them, through the GitHub ``gh`` CLI.

A session knows its repository and branch; ``gh pr view`` knows a pull request's
head branch. The sessions behind ``OWNER/REPO#N`` are that repository's sessions
on the PR's head branch, each with the files it wrote or edited (the
``files_changed`` read model). ``gh`` is asked, never required: without it (or
signed out) the error says so, and nothing else in Kapacitor needs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

from kapacitor.memory import gate
from kapacitor.store.readdb import ReadDb

PR_FIELDS = "number,title,url,state,headRefName,baseRefName,author"
_REF = re.compile(r"^([A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+)#(\d+)$")
GH_TIMEOUT = 20


class PrError(RuntimeError):
    """The PR could not be looked up; the message says why and what to do."""


def parse_ref(ref: str) -> tuple[str, int]:
    """``OWNER/REPO#N`` as (``owner/repo``, N)."""
    found = _REF.match(ref.strip())
    if not found:
        raise PrError(f"a pull request is OWNER/REPO#NUMBER (e.g. acme/api#12), not {ref!r}")
    return found.group(1), int(found.group(2))


def pull_request(repo: str, number: int) -> dict[str, Any]:
    """What ``gh pr view`` says of the PR (``PR_FIELDS``)."""
    gh = shutil.which("gh")
    if gh is None:
        raise PrError("the GitHub CLI `gh` is not installed (https://cli.github.com); it is how Kapacitor reads pull requests")
    try:
        done = subprocess.run([gh, "pr", "view", str(number), "--repo", repo, "--json", PR_FIELDS],
                              capture_output=True, text=True, timeout=GH_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrError(f"`gh pr view` failed: {exc}") from None
    if done.returncode != 0:
        raise PrError(f"`gh pr view {number} --repo {repo}` failed: {(done.stderr or done.stdout).strip()[:300]}")
    try:
        found: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise PrError(f"`gh pr view` did not answer JSON: {done.stdout[:200]!r}") from None
    return found


def sessions_on_branch(conn: ReadDb, viewer: gate.Viewer, repo: str, branch: str) -> list[dict[str, Any]]:
    """The repository's sessions on ``branch``, oldest first, with the files each touched."""
    rows = [json.loads(r) for (r,) in conn.execute(
        "SELECT list_row FROM repository_sessions WHERE key = ? ORDER BY started", (repo,))]
    rows = gate.visible(conn, viewer, [r for r in rows if r.get("branch") == branch], lambda r: r["session_id"])
    for row in rows:
        row["files"] = [path for (path,) in conn.execute(
            "SELECT DISTINCT path FROM files_changed WHERE session_id = ? ORDER BY path", (row["session_id"],))]
    return rows


def pr_sessions(conn: ReadDb, viewer: gate.Viewer, ref: str) -> dict[str, Any]:
    """The PR (from ``gh``) and the sessions behind it."""
    repo, number = parse_ref(ref)
    pr = pull_request(repo, number)
    branch = str(pr.get("headRefName") or "")
    return {"repo": repo, "number": number, "pr": pr, "branch": branch,
            "sessions": sessions_on_branch(conn, viewer, repo, branch) if branch else []}
