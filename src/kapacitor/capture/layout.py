"""Claude Code's transcript layout: the one place that knows it. Stdlib only and
plain ``str`` paths (the hook uses it, and ``pathlib`` costs an import there);
the server uses it to check that a path belongs to the session it claims.

Main transcripts: ``<config>/projects/<cwd-slug>/<session>.jsonl``. Subagents:
``<config>/projects/<cwd-slug>/<session>/subagents/agent-<id>.jsonl`` with an
``agent-<id>.meta.json`` beside it; 2.0.x clients wrote them as
``<config>/projects/<cwd-slug>/agent-<id>.jsonl``, beside the parent's file and
those of every other session in that directory, so there only the records say
whose a file is (``names_session``).
"""

from __future__ import annotations

import json
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
    return _agent_files(posixpath.join(posixpath.splitext(main)[0], "subagents"))


def sibling_agent_transcripts(main: str) -> list[str]:
    """The 2.0.x-layout subagent transcripts (``agent-*.jsonl``) in the folder of
    a main transcript, sorted: any session's, see ``names_session``."""
    return _agent_files(posixpath.dirname(main))


def _agent_files(folder: str) -> list[str]:
    try:
        names = [e.name for e in os.scandir(folder) if e.name.startswith("agent-") and e.name.endswith(".jsonl")]
    except OSError:
        return []
    return [posixpath.join(folder, name) for name in sorted(names)]


def is_sibling_agent(path: str) -> bool:
    """Whether ``path`` is a 2.0.x-layout subagent transcript (beside its parent's)."""
    folder, name = posixpath.split(path)
    return name.startswith("agent-") and name.endswith(".jsonl") and posixpath.basename(folder) != "subagents"


FIRST_LINE_LIMIT = 1 << 20
"""How much of a file ``names_session`` reads to find its first record (bytes)."""


def names_session(path: str) -> str | None:
    """The ``sessionId`` of the first record of ``path``, or None while the file
    has no complete first line (being written). A first line that is not a record
    naming a session gives ""."""
    import json

    try:
        with open(path, "rb") as handle:
            head = handle.read(FIRST_LINE_LIMIT)
    except OSError:
        return None
    end = head.find(b"\n")
    if end < 0:
        return None if len(head) < FIRST_LINE_LIMIT else ""
    try:
        record = json.loads(head[:end])
    except ValueError:
        return ""
    named = record.get("sessionId") if isinstance(record, dict) else None
    return named if isinstance(named, str) else ""


def valid_session_id(session_id: object) -> bool:
    """A session id safe to use in a file name and a stream name (Claude Code's are UUIDs)."""
    return (
        isinstance(session_id, str)
        and 0 < len(session_id) <= 128
        and session_id[0].isalnum()
        and all(c.isalnum() or c in "-_." for c in session_id)
        and ".." not in session_id
    )
