"""Recall at session start: the SessionStart hook's output (stdlib only).

After the hook has shipped its payload, it asks the server what to tell the new
session (``POST /api/memory/recall`` with ``{"repo": "owner/repo", "session": ID}``,
the repository read from the working directory's git config, or the directory
itself when it has no GitHub remote (``gitinfo.project_of``); a POST because the
server counts the use) and prints it as Claude Code's

    {"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": "…"}}

within ``RECALL_TIMEOUT``. Each answer is cached per repository in the user
state dir; when the server is down or slow the last cached copy is printed
instead (that use is not counted: the server never heard of it). Nothing is
printed when there is nothing to recall.
"""

from __future__ import annotations

import json
import os
import sys
import time

from kapacitor.capture.client_config import ClientConfig, state_dir
from kapacitor.capture.gitinfo import project_of
from kapacitor.capture.sender import exchange

RECALL_PATH = "/api/memory/recall"
RECALL_TIMEOUT = 1.0
"""Seconds the hook waits for the server's answer (the client waits for the hook)."""


def print_context(payload: dict[str, object], config: ClientConfig) -> None:
    """Ask, cache, fall back, print. Raises nothing the hook need care about
    beyond ``OSError``/``ValueError`` (the hook logs them)."""
    repo = project_of(str(payload.get("cwd") or ""))
    session = str(payload.get("session_id") or "")
    context = fetch(config, repo, session)
    if context is None:
        context = cached(repo)
    else:
        save(repo, context)
    if context:
        out = {"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": context}}
        sys.stdout.write(json.dumps(out, ensure_ascii=False))


def fetch(config: ClientConfig, repo: str, session: str) -> str | None:
    """The server's context text ("" for nothing to recall), or None when it did not answer."""
    url = f"{config.server}{RECALL_PATH}"
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    asked = json.dumps({"repo": repo, "session": session}).encode("utf-8")
    try:
        status, body = _post(url, headers, asked)
    except (OSError, ValueError):
        return None
    if status != 200:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    context = answer.get("context") if isinstance(answer, dict) else None
    return context if isinstance(context, str) else None


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    if not url.startswith("http://"):
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=RECALL_TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, b""
    return exchange("POST", url, headers, body, RECALL_TIMEOUT)


def cache_path(repo: str) -> str:
    name = repo.replace("/", "__") if repo else "_team"
    return os.path.join(state_dir(), "memory", name + ".json")


def save(repo: str, context: str) -> None:
    path = cache_path(repo)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"repo": repo, "context": context, "saved_at": time.time()}, handle)
    os.replace(tmp, path)


def cached(repo: str) -> str:
    """The last context the server gave for ``repo``, "" when none was cached."""
    try:
        with open(cache_path(repo), encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError):
        return ""
    context = saved.get("context") if isinstance(saved, dict) else ""
    return context if isinstance(context, str) else ""
