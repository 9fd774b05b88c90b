"""What the client sent the model besides the conversation: the system prompt and
the tool list of each distinct request shape (``api-request-shape`` records of
Claude Code 2.1.3xx), for the session page.

The event keeps only the shape's hash and a summary; the text is in the record's
raw line, which the store keeps once per distinct content (``store.blobs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kapacitor.events import agent_session_stream
from kapacitor.store import codec
from kapacitor.store.base import EventStore


@dataclass
class RequestShape:
    """One system prompt and tool list, and how many API requests of the session used it."""

    shape_hash: str
    system: list[str] = field(default_factory=list)
    tools: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0


def request_shapes(store: EventStore, session_id: str) -> list[RequestShape]:
    """The main agent's request shapes, in order of first use (empty for older clients)."""
    shapes: dict[str, RequestShape] = {}
    uses: dict[str, int] = {}
    for event in store.read_stream(agent_session_stream(session_id)):
        if event.type != "ClientStateRecorded":
            continue
        ext = (event.data.get("extensions") or {}).get("claude_code") or {}
        if event.data.get("kind") == "api-request":
            uses[str(ext.get("shape_hash", ""))] = uses.get(str(ext.get("shape_hash", "")), 0) + 1
        elif event.data.get("kind") == "api-request-shape" and "raw" in event.metadata:
            shape = _parse(str(ext.get("shape_hash", "")), event.metadata["raw"])
            shapes.setdefault(shape.shape_hash, shape)
    for shape in shapes.values():
        shape.requests = uses.get(shape.shape_hash, 0)
    return list(shapes.values())


def _parse(shape_hash: str, raw: str) -> RequestShape:
    try:
        record: Any = codec.loads(raw)
    except ValueError:
        return RequestShape(shape_hash)
    shape = record.get("shape") if isinstance(record, dict) and isinstance(record.get("shape"), dict) else {}
    system = [str(b.get("text", "")) for b in shape.get("system") or [] if isinstance(b, dict)]
    tools = [
        {"name": str(t.get("name", "")), "description": str(t.get("description", ""))}
        for t in shape.get("tools") or []
        if isinstance(t, dict)
    ]
    return RequestShape(shape_hash, system, tools)
