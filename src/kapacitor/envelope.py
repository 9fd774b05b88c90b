"""What every event shares, apart from the payload vocabulary (``events.py``):
deterministic ids, stream names, the event as appended and as stored, and the
metadata keys read models use. The store, the runner and the ``sessions`` read
model need only this, so ``kapacitor sessions --json`` does not build the ~30
payload dataclasses (``events.py`` re-exports all of it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 2
USAGE_METADATA_KEY = "$usage"
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
)
"""The token counts of an API call's usage (``metadata[USAGE_METADATA_KEY]``), as
the Messages API names them (the two ``ephemeral_*`` split cache creation by TTL)."""
SCHEMA_VERSION_METADATA_KEY = "$schema_version"

EVENT_ID_NAMESPACE_HEX = "6f1b7c8e-2d4a-5b9c-8e3f-4a7d1c2b9e60"
"""Namespace for deterministic event ids (uuid5 of the source identity)."""


def agent_session_stream(session_id: str) -> str:
    """Primary conversation stream for a session."""
    return f"AgentSession-{session_id}"


def agent_subsession_stream(session_id: str, agent_id: str) -> str:
    """A subagent's conversation, scoped under its parent session."""
    return f"AgentSubsession-{session_id}-{agent_id}"


def agent_memory_stream(app_name: str, user_id: str) -> str:
    """Facts retained for one app and user."""
    return f"AgentMemory-{app_name}-{user_id}"


def session_eval_stream(session_id: str) -> str:  # kapacitor
    """A session's evaluations and their human reviews: a stream of its own, so
    an eval is never mistaken for agent activity (end time, live dot)."""
    return f"SessionEval-{session_id}"


def session_comments_stream(session_id: str) -> str:  # kapacitor
    """People's comments on a session (and on its chat items and trace nodes): a
    stream of its own, like the eval stream, so a comment is not session activity."""
    return f"SessionComments-{session_id}"


def session_marks_stream(session_id: str) -> str:  # kapacitor
    """Who marked a session as worth learning from, and who took a mark back."""
    return f"SessionMarks-{session_id}"


_NAMESPACE_BYTES = bytes.fromhex(EVENT_ID_NAMESPACE_HEX.replace("-", ""))


def event_id(*parts: object) -> str:
    """A deterministic event id: the same source record always gets the same id,
    so importing or sending it twice never duplicates it. Equal to
    ``uuid.uuid5(EVENT_ID_NAMESPACE, "/".join(parts))``, computed without building
    UUID objects (it runs for every event of an import)."""
    name = "/".join(map(str, parts)).encode("utf-8", "surrogatepass")
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended: id, type name, JSON-able data and metadata."""

    id: str
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: with its stream, version in that stream and global position."""

    id: str
    stream: str
    type: str
    version: int
    position: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: str
