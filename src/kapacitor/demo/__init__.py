"""The bundled demo set: a small team's sessions across several repositories,
made by ``scripts/make-demo`` from real Claude Code transcripts (fresh ids,
users, repositories, branches and dates; see that script).

The archive holds transcripts in Claude Code's own layout (``projects/...``)
and ``context.json``: what the team's machines would have told the importer
about each working directory (GitHub repository, remote, user). ``kapacitor
serve --demo`` imports it through the ordinary importer with that context.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kapacitor.normalize.claude_code import ContextResolver

ARCHIVE = Path(__file__).with_name("demo.tar.xz")


@contextmanager
def extracted(archive: Path = ARCHIVE) -> Iterator[tuple[Path, ContextResolver]]:
    """The demo transcripts unpacked in a temporary dir, and their context resolver."""
    with tempfile.TemporaryDirectory(prefix="kapacitor-demo-") as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        context: dict[str, dict[str, Any]] = json.loads((Path(tmp) / "context.json").read_text())

        def resolve(cwd: str) -> dict[str, Any]:
            return dict(context.get(cwd, {}))

        yield Path(tmp) / "projects", resolve
