"""Copies of real transcripts under fresh ids: for benchmarks, tests and demo data.

Every session id, record uuid, message/request/tool-use id and subagent id in
the copy is replaced consistently (the same old id always maps to the same new
one within a copy), and copy number N is dated N milliseconds later, so the
copies are distinct sessions to the importer (a prompt with the same words at
the same moment would be a replay of the original: ``projections/ownership.py``)
while keeping the real client's record shapes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from kapacitor.demo import shift_timestamps

_IDS = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rb"|(?:msg|toolu|req|srvtoolu)_[A-Za-z0-9_]{8,}"
    rb"|\ba[0-9a-f]{16}\b"
)
_NS = uuid.UUID("0b7f1a6e-9a55-4c83-a0f2-1f6f3c2d8e11")


def fresh_id(old: bytes, copy: int) -> bytes:
    """The id that ``old`` becomes in copy number ``copy``: same shape, new value."""
    return _shaped(old, uuid.uuid5(_NS, f"{copy}/{old.decode()}"))


def _shaped(old: bytes, digest: uuid.UUID) -> bytes:
    if b"-" in old and len(old) == 36:
        return str(digest).encode()
    if old[:1] == b"a" and len(old) == 17:
        return b"a" + digest.hex[:16].encode()
    prefix, _, rest = old.partition(b"_")
    return prefix + b"_" + digest.hex[: max(len(rest), 8)].encode()


def copy_text(data: bytes, copy: int) -> bytes:
    """``data`` with every id fresh for copy number ``copy`` and its times ``copy`` ms later."""
    fresh = _IDS.sub(lambda m: fresh_id(m.group(0), copy), data)
    return shift_timestamps(fresh, timedelta(milliseconds=copy)) if copy else fresh


def renumbered(texts: list[bytes], name: str) -> list[bytes]:
    """``texts`` (one session's files and file names, in a fixed order) with every
    id replaced by one derived from ``name`` and the order in which the ids first
    appear: two recordings of the same script get the same ids, whatever random
    ids the client and the model gave them."""
    seen: dict[bytes, bytes] = {}

    def new(m: re.Match[bytes]) -> bytes:
        old = m.group(0)
        if old not in seen:
            seen[old] = _shaped(old, uuid.uuid5(_NS, f"{name}/{len(seen)}"))
        return seen[old]

    return [_IDS.sub(new, text) for text in texts]


def replicate(source: Path, target: Path, copies: int) -> Iterator[Path]:
    """Write ``copies`` copies of every transcript under ``source`` into ``target``,
    keeping the projects/<dir>/<session>[/subagents] layout. Yields the files written."""
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json"))
    for copy in range(copies):
        for path in files:
            rel = path.relative_to(source)
            parts = [copy_text(part.encode(), copy).decode() for part in rel.parts]
            out = target.joinpath(*parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(copy_text(path.read_bytes(), copy))
            yield out
