"""Small Claude Code transcripts written by tests: records in the client's own
shapes (field names, nesting, usage blocks), with the values a test needs."""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SONNET = "claude-sonnet-4-5-20250929"


def usage(inp: int, out: int, read: int, write: int) -> dict[str, Any]:
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": out,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": write},
    }


def new_uuid(seed: str) -> str:
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, seed))


@dataclass
class Transcript:
    """One transcript file's records, in order. ``add`` appends a record with the
    fields every record repeats; the helpers build the common kinds."""

    session_id: str
    cwd: str = "/home/dev/src/ledger"
    version: str = "2.1.197"
    entrypoint: str = "cli"
    records: list[dict[str, Any]] = field(default_factory=list)
    last_uuid: str | None = None

    def add(self, record: dict[str, Any], *, chain: bool = True, **common: Any) -> dict[str, Any]:
        base = {
            "parentUuid": self.last_uuid if chain else None,
            "isSidechain": False,
            "userType": "external",
            "entrypoint": self.entrypoint,
            "cwd": self.cwd,
            "sessionId": self.session_id,
            "version": self.version,
            "gitBranch": "main",
        }
        full = base | common | record
        self.records.append(full)
        if full.get("uuid"):
            self.last_uuid = full["uuid"]
        return full

    def user(self, content: Any, ts: str, uid: str | None = None, **extra: Any) -> dict[str, Any]:
        uid = uid or new_uuid(f"{self.session_id}/{ts}/{content}")
        return self.add({"type": "user", "message": {"role": "user", "content": content}, "uuid": uid, "timestamp": ts}, **extra)

    def assistant(
        self,
        blocks: list[dict[str, Any]],
        ts: str,
        msg: str,
        tokens: tuple[int, int, int, int],
        *,
        req: str | None = None,
        model: str = SONNET,
        uid: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        message = {
            "id": msg,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": "tool_use" if any(b.get("type") == "tool_use" for b in blocks) else "end_turn",
            "stop_sequence": None,
            "usage": usage(*tokens),
        }
        record = {"type": "assistant", "message": message, "uuid": uid or new_uuid(f"{self.session_id}/{msg}/{ts}"), "timestamp": ts}
        record["requestId"] = req if req is not None else "req_" + msg.removeprefix("msg_")
        return self.add(record, **extra)

    def text(self, text: str, ts: str, msg: str, tokens: tuple[int, int, int, int], **kw: Any) -> dict[str, Any]:
        return self.assistant([{"type": "text", "text": text}], ts, msg, tokens, **kw)

    def tool(self, call_id: str, name: str, args: dict[str, Any], ts: str, msg: str, tokens: tuple[int, int, int, int], **kw: Any) -> dict[str, Any]:
        return self.assistant([{"type": "tool_use", "id": call_id, "name": name, "input": args}], ts, msg, tokens, **kw)

    def result(self, call_id: str, content: Any, ts: str, structured: Any = None, **extra: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "type": "user",
            "message": {"role": "user", "content": [{"tool_use_id": call_id, "type": "tool_result", "content": content}]},
            "uuid": new_uuid(f"{self.session_id}/result/{call_id}/{ts}"),
            "timestamp": ts,
        }
        if structured is not None:
            record["toolUseResult"] = structured
        return self.add(record, **extra)

    def lines(self) -> list[str]:
        return [json.dumps(r, separators=(",", ":")) for r in self.records]

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in self.lines()))
        return path


def replayed(original: Transcript, session_id: str, *, fresh_uuids: bool = False) -> Transcript:
    """A resumed/forked session's file: ``original``'s records with ``sessionId``
    rewritten (and, with ``fresh_uuids``, new uuids over the same API calls)."""
    copy = Transcript(session_id, original.cwd, original.version, original.entrypoint)
    renamed: dict[str, str] = {}
    for record in original.records:
        record = json.loads(json.dumps(record)) | {"sessionId": session_id}
        if fresh_uuids and record.get("uuid"):
            renamed[record["uuid"]] = new_uuid(f"fresh/{session_id}/{record['uuid']}")
            record["uuid"] = renamed[record["uuid"]]
            record["parentUuid"] = renamed.get(record.get("parentUuid"), record.get("parentUuid"))
        copy.records.append(record)
        copy.last_uuid = record.get("uuid") or copy.last_uuid
    return copy
