"""Fixtures for the chat and trace tests: the real samples imported into a real
store (``samples``), and ``Transcript``, which writes Claude Code transcripts (the
client's record shapes) for sessions the samples lack: hostile strings,
thousands of events, a 10 MB tool output. Tests import those with the real
importer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.store import open_store

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Transcript:
    def __init__(self, session_id: str, cwd: str = "/home/dev/src/demo"):
        self.session_id, self.cwd = session_id, cwd
        self.records: list[dict[str, Any]] = []
        self.parent: str | None = None
        self.calls = 0

    def _record(self, kind: str, **fields: Any) -> dict[str, Any]:
        record_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.session_id}/{len(self.records)}"))
        stamp = (START + timedelta(milliseconds=100 * len(self.records))).isoformat().replace("+00:00", "Z")
        record = {
            "parentUuid": self.parent, "isSidechain": False, "type": kind, "uuid": record_id, "timestamp": stamp,
            "cwd": self.cwd, "sessionId": self.session_id, "version": "2.1.197", "gitBranch": "main", **fields,
        }  # fmt: skip
        self.records.append(record)
        self.parent = record_id
        return record

    def user(self, content: Any, **fields: Any) -> None:
        self._record("user", message={"role": "user", "content": content}, **fields)

    def assistant(self, *blocks: dict[str, Any], message_id: str | None = None, output_tokens: int = 10) -> str:
        message_id = message_id or f"msg_{len(self.records):012d}"
        usage = {"input_tokens": 3, "output_tokens": output_tokens, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
        for block in blocks:  # the client writes one line per content block, repeating the usage
            message = {"id": message_id, "type": "message", "role": "assistant", "model": "claude-opus-4-8",
                       "content": [block], "usage": usage}  # fmt: skip
            self._record("assistant", message=message, requestId=f"req_{message_id[4:]}")
        return message_id

    def text(self, text: str) -> str:
        return self.assistant({"type": "text", "text": text})

    def tool(self, name: str, arguments: dict[str, Any], result: Any, *, is_error: bool = False, structured: Any = None) -> str:
        self.calls += 1
        call_id = f"toolu_{self.calls:020d}"
        self.assistant({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
        block = {"type": "tool_result", "tool_use_id": call_id, "content": result, "is_error": is_error}
        extra = {"toolUseResult": structured} if structured is not None else {}
        self.user([block], **extra)
        return call_id

    def system(self, subtype: str, **fields: Any) -> None:
        self._record("system", subtype=subtype, **fields)

    def write(self, root: Path) -> Path:
        path = root / "projects" / self.cwd.replace("/", "-") / f"{self.session_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        return root


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The recorded sample transcripts imported into a real SQLite store."""
    store = open_store(f"sqlite://{tmp_path_factory.mktemp('samples') / 'events.db'}")
    import_paths(store, SAMPLE_DIRS)
    yield store
    store.close()
