"""The bundled demo set: a small team's sessions across several repositories,
made by ``scripts/make-demo`` from real Claude Code transcripts (fresh ids,
users, repositories, branches and dates; see that script).

The archive holds transcripts in Claude Code's own layout (``projects/...``),
``context.json``: what the team's machines would have told the importer about
each working directory (GitHub repository, remote, user), and ``demo.json``:
the moment the set was made for. ``kapacitor serve --demo`` moves every
timestamp forward by the time since then, so the demo always looks like the
last two weeks, and imports it through the ordinary importer with that context.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kapacitor.normalize.claude_code import ContextResolver

ARCHIVE = Path(__file__).with_name("demo.tar.xz")
_STAMP = re.compile(rb'"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"')


def first_timestamp(data: bytes) -> datetime | None:
    found = _STAMP.search(data)
    return datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00")) if found else None


def shift_timestamps(data: bytes, delta: timedelta) -> bytes:
    """Every record ``timestamp`` in a transcript moved by ``delta``."""

    def moved(m: re.Match[bytes]) -> bytes:
        when = datetime.fromisoformat(m.group(1).decode().replace("Z", "+00:00")) + delta
        return b'"timestamp":"' + when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].encode() + b'Z"'

    return _STAMP.sub(moved, data)


@contextmanager
def extracted(archive: Path = ARCHIVE, now: datetime | None = None) -> Iterator[tuple[Path, ContextResolver]]:
    """The demo transcripts unpacked in a temporary dir (dated as if made ``now``),
    and their context resolver."""
    with tempfile.TemporaryDirectory(prefix="kapacitor-demo-") as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        made_for = datetime.fromisoformat(json.loads((Path(tmp) / "demo.json").read_text())["now"])
        delta = (now or datetime.now(UTC)) - made_for
        for path in (Path(tmp) / "projects").rglob("*.jsonl"):
            path.write_bytes(shift_timestamps(path.read_bytes(), delta))
        context: dict[str, dict[str, Any]] = json.loads((Path(tmp) / "context.json").read_text())

        def resolve(cwd: str) -> dict[str, Any]:
            return dict(context.get(cwd, {}))

        yield Path(tmp) / "projects", resolve
