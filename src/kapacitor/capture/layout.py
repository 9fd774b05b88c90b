"""Claude Code's transcript layout: the one place that knows it. Stdlib only and
plain ``str`` paths (the hook uses it, and ``pathlib`` costs an import there);
the server uses it to check that a path belongs to the session it claims.

Main transcripts: ``<config>/projects/<cwd-slug>/<session>.jsonl``. Subagents:
``<config>/projects/<cwd-slug>/<session>/subagents/agent-<id>.jsonl`` with an
``agent-<id>.meta.json`` beside it.
"""

from __future__ import annotations

import os
import posixpath


def identity(path: str) -> tuple[str, str | None]:
    """(session id, subagent id or None) of a transcript, from its location. The
    hook runs on Linux or macOS, so paths are ``/``-separated."""
    folder, name = posixpath.split(path)
    stem = posixpath.splitext(name)[0]
    if posixpath.basename(folder) == "subagents" and name.startswith("agent-"):
        return posixpath.basename(posixpath.dirname(folder)), stem.removeprefix("agent-")
    return stem, None


def meta_path(path: str) -> str:
    """The ``agent-<id>.meta.json`` that describes a subagent transcript."""
    return posixpath.splitext(path)[0] + ".meta.json"


def subagent_transcripts(main: str) -> list[str]:
    """The subagent transcripts of a session, given its main transcript, sorted."""
    folder = posixpath.join(posixpath.splitext(main)[0], "subagents")
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith("agent-") and e.name.endswith(".jsonl")]
    except OSError:
        return []
    return [posixpath.join(folder, name) for name in sorted(names)]


def valid_session_id(session_id: object) -> bool:
    """A session id safe to use in a file name and a stream name (Claude Code's are UUIDs)."""
    return (
        isinstance(session_id, str)
        and 0 < len(session_id) <= 128
        and session_id[0].isalnum()
        and all(c.isalnum() or c in "-_." for c in session_id)
        and ".." not in session_id
    )
