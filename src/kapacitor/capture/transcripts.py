"""Where Claude Code keeps its transcripts, and which session each file belongs to
(the layout itself is in ``layout``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kapacitor.capture import layout
from kapacitor.normalize.claude_code import Source
from kapacitor.store import codec


def candidate_roots() -> list[Path]:
    """Where Claude Code keeps its history on this machine, whether there or not:
    ``projects`` in each dir of ``$CLAUDE_CONFIG_DIR`` (comma-separated), or else
    in ``~/.claude`` and ``~/.config/claude``."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR", "")
    if configured.strip():
        dirs = [Path(p.strip()).expanduser() for p in configured.split(",") if p.strip()]
    else:
        dirs = [Path.home() / ".claude", Path.home() / ".config" / "claude"]
    return [d / "projects" for d in dirs]


def default_roots() -> list[Path]:
    """The :func:`candidate_roots` that exist."""
    return [root for root in candidate_roots() if root.is_dir()]


def no_history_message() -> str:
    """One line for a person whose machine has no Claude Code history to import."""
    looked = ", ".join(str(root) for root in candidate_roots())
    return f"No Claude Code history found (looked in {looked}): pass transcript dirs or .jsonl files, as in `kapacitor import PATH...`"


@dataclass(frozen=True)
class TranscriptFile:
    """One transcript file, the source it stands for, and its resolved path (which
    names it across runs whichever way it was reached)."""

    path: Path
    source: Source
    resolved: Path


def source_for(path: Path) -> Source:
    """The session (and subagent) a transcript path belongs to, from its location."""
    session_id, agent_id = layout.identity(str(path))
    if agent_id is None:
        return Source(session_id=session_id)
    return Source(session_id=session_id, agent_id=agent_id, subagent_meta=_meta(path))


def _meta(path: Path) -> dict[str, Any]:
    try:
        meta = codec.loads(Path(layout.meta_path(str(path))).read_bytes())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def find_transcripts(paths: Iterable[Path]) -> Iterator[TranscriptFile]:
    """Every transcript under ``paths`` (dirs or single files), main transcripts of a
    session before its subagents, in a stable order."""
    seen: set[Path] = set()
    real_dirs: dict[Path, Path] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.jsonl"), key=_order)
        for path in files:
            resolved = _resolve(path, real_dirs)
            if resolved not in seen:
                seen.add(resolved)
                yield TranscriptFile(path, source_for(path), resolved)


def _resolve(path: Path, real_dirs: dict[Path, Path]) -> Path:
    """``path.resolve()``, resolving each directory once (resolving thousands of
    files one by one, component by component, costs more than reading them)."""
    if path.is_symlink():
        return path.resolve()
    parent = real_dirs.get(path.parent)
    if parent is None:
        parent = real_dirs[path.parent] = path.parent.resolve()
    return parent / path.name


def _order(path: Path) -> tuple[str, bool, str, str, str]:
    """Per project folder, main transcripts before subagents; main transcripts by
    their first and then last record time, so a session is imported before the
    resumed or forked ones that replay it (what is in the store first owns it: see
    ``projections/ownership.py``)."""
    subagent = layout.identity(str(path))[1] is not None
    if subagent:
        return (str(path.parent.parent.parent), True, "", "", str(path))
    first, last = _time_span(path)
    return (str(path.parent), False, first, last, str(path))


_STAMP = re.compile(rb'"timestamp"\s*:\s*"([^"]{10,40})"')
_PEEK = 65536


def _time_span(path: Path) -> tuple[str, str]:
    """The first and last record ``timestamp`` of a transcript, from its head and
    tail only ("" when they carry none)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_PEEK)
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _PEEK))
            tail = handle.read(_PEEK)
    except OSError:
        return "", ""
    first = _STAMP.search(head)
    last = _STAMP.findall(tail)
    return (first.group(1).decode("ascii", "replace") if first else "", last[-1].decode("ascii", "replace") if last else "")
