"""Stores for the chat and trace tests: the real samples imported into a real
store (``sample_store``), and ``Transcript``, which writes Claude Code transcripts (the
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
    def __init__(
        self, session_id: str, cwd: str = "/home/dev/src/demo", agent_id: str = "", start: int = 0
    ):
        self.session_id, self.cwd, self.agent_id = session_id, cwd, agent_id
        self.records: list[dict[str, Any]] = []
        self.parent: str | None = None
        self.calls = start
        self.subagents: list[tuple[Transcript, dict[str, Any]]] = []

    def subagent(
        self, agent_id: str, tool_use_id: str | None, agent_type: str = "Explore"
    ) -> Transcript:
        """A subagent's transcript (written beside this one), started by ``tool_use_id``."""
        sub = Transcript(
            self.session_id, self.cwd, agent_id, start=1000 * (len(self.subagents) + 1) + self.calls
        )
        meta = {"agentType": agent_type, "description": f"run {agent_id}", "spawnDepth": 1}
        if tool_use_id:
            meta["toolUseId"] = tool_use_id
        self.subagents.append((sub, meta))
        return sub

    def next_call_id(self) -> str:
        return f"toolu_{self.calls + 1:020d}"

    def _record(self, kind: str, **fields: Any) -> dict[str, Any]:
        record_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{self.session_id}/{self.agent_id}/{len(self.records)}")
        )
        stamp = (
            (START + timedelta(milliseconds=100 * len(self.records)))
            .isoformat()
            .replace("+00:00", "Z")
        )
        record = {
            "parentUuid": self.parent, "isSidechain": False, "type": kind, "uuid": record_id, "timestamp": stamp,
            "cwd": self.cwd, "sessionId": self.session_id, "version": "2.1.197", "gitBranch": "main", **fields,
        }  # fmt: skip
        if self.agent_id:
            record |= {"isSidechain": True, "agentId": self.agent_id}
        self.records.append(record)
        self.parent = record_id
        return record

    def user(self, content: Any, **fields: Any) -> None:
        self._record("user", message={"role": "user", "content": content}, **fields)

    def assistant(
        self, *blocks: dict[str, Any], message_id: str | None = None, output_tokens: int = 10
    ) -> str:
        # Unique across sessions, as the API's are (a shared id is a replayed call: ownership.py).
        message_id = message_id or f"msg_{self.session_id[:8]}{self.agent_id}{len(self.records):012d}"
        usage = {
            "input_tokens": 3,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
        }
        for block in blocks:  # the client writes one line per content block, repeating the usage
            message = {"id": message_id, "type": "message", "role": "assistant", "model": "claude-opus-4-8",
                       "content": [block], "usage": usage}  # fmt: skip
            self._record("assistant", message=message, requestId=f"req_{message_id[4:]}")
        return message_id

    def text(self, text: str) -> str:
        return self.assistant({"type": "text", "text": text})

    def tool(
        self,
        name: str,
        arguments: dict[str, Any],
        result: Any,
        *,
        is_error: bool = False,
        structured: Any = None,
    ) -> str:
        self.calls += 1
        call_id = f"toolu_{self.calls:020d}"
        self.assistant({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
        block = {
            "type": "tool_result",
            "tool_use_id": call_id,
            "content": result,
            "is_error": is_error,
        }
        extra = {"toolUseResult": structured} if structured is not None else {}
        self.user([block], **extra)
        return call_id

    def system(self, subtype: str, **fields: Any) -> None:
        self._record("system", subtype=subtype, **fields)

    def write(self, root: Path) -> Path:
        folder = root / "projects" / self.cwd.replace("/", "-")
        self._write(folder / f"{self.session_id}.jsonl")
        for sub, meta in self._all_subagents():
            path = folder / self.session_id / "subagents" / f"agent-{sub.agent_id}.jsonl"
            sub._write(path)
            path.with_suffix(".meta.json").write_text(json.dumps(meta))
        return root

    def _all_subagents(self):
        for sub, meta in self.subagents:
            yield sub, meta
            yield from sub._all_subagents()

    def _write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in self.records))


def imported_store(tmp_path_factory, paths: list[Path]):
    """A real SQLite store with ``paths`` imported, for a module-scoped fixture.
    Module fixtures run before the per-test private HOME, so the import gets one
    of its own: nothing of this machine's git config reaches the store."""
    store = open_store(f"sqlite://{tmp_path_factory.mktemp('store') / 'events.db'}")
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("home")
        for name, value in (
            ("HOME", home),
            ("XDG_CONFIG_HOME", home / ".config"),
            ("XDG_DATA_HOME", home / ".local"),
        ):
            patch.setenv(name, str(value))
        patch.delenv("GIT_CONFIG_GLOBAL", raising=False)
        import_paths(store, paths)
    return store


def sample_store(tmp_path_factory):
    """For a module's ``samples`` fixture: the recorded sample transcripts
    imported into a real SQLite store, closed afterwards."""
    store = imported_store(tmp_path_factory, SAMPLE_DIRS)
    yield store
    store.close()


EDGE = "0000ed6e-0000-4000-8000-000000000001"


def edge_transcript() -> Transcript:
    """Shapes the samples lack: nested and orphan subagents, an image, encrypted
    thinking, a stray result, an API error, a user interrupt."""
    t = Transcript(EDGE)
    t.user(
        [
            {"type": "text", "text": "look at this"},
            {"type": "image", "source": {"media_type": "image/png", "data": "AAAA"}},
        ]
    )
    t.assistant({"type": "thinking", "thinking": "", "signature": "encrypted"})
    sub = t.subagent("a1111111111111111", t.next_call_id())
    sub.user("explore the repo")
    nested = sub.subagent("a2222222222222222", sub.next_call_id())
    nested.user("look deeper")
    nested.tool("Bash", {"command": "ls deep"}, "deep")
    nested.text("deep done")
    sub.tool(
        "Agent",
        {"description": "deeper", "prompt": "look deeper", "subagent_type": "Explore"},
        "deep done",
    )
    sub.text("explored")
    t.tool("Agent", {"description": "explore", "prompt": "explore the repo"}, "explored")
    orphan = t.subagent("a3333333333333333", None)
    orphan.user("nobody called me")
    orphan.text("alone")
    t.user([{"type": "tool_result", "tool_use_id": "toolu_unknown", "content": "stray"}])
    t.system("api_error", error="overloaded", retryAttempt=2)
    t.user("[Request interrupted by user]")
    t.text("after")
    return t


def edge_store(tmp_path_factory):
    """For a module's fixture: the ``edge_transcript`` session in a real store."""
    store = imported_store(
        tmp_path_factory, [edge_transcript().write(tmp_path_factory.mktemp("transcripts"))]
    )
    yield store
    store.close()
