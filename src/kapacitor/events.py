"""The canonical event vocabulary: what can happen in an agent session.

Names, fields and stream layout mirror Kurrent's canonical agent schema v2
(PyPI ``kurrent-agent-schema`` 0.5.0). We mirror rather than import it: that
package is Protobuf-backed, and building a Protobuf message per transcript line
would cost more than the rest of the import together. ``tests/test_events.py``
checks our names against the package so the two cannot drift apart.

Every payload is a small frozen dataclass whose docstring says what happened.
Agent-specific fields go under ``extensions[<agent>]`` (e.g.
``extensions["claude_code"]``), as the schema prescribes. Types that the
schema lacks are marked ``# kapacitor`` below.
"""

from __future__ import annotations

import hashlib
import uuid
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

# Namespace for deterministic event ids (uuid5 of the source identity).
EVENT_ID_NAMESPACE = uuid.UUID("6f1b7c8e-2d4a-5b9c-8e3f-4a7d1c2b9e60")


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


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


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


# --- Session lifecycle -------------------------------------------------------


@dataclass(frozen=True)
class SessionStarted:
    """A session began: where (cwd, repo, branch), who, with which agent and model."""

    timestamp: str
    agent_name: str = ""
    model: str = ""
    user_id: str = ""
    app_name: str = ""
    previous_session_id: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionEnded:
    """A session ended (the agent exited, was cleared, logged out, ...)."""

    timestamp: str
    reason: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionContinuedAs:
    """The conversation goes on in another session id."""

    timestamp: str
    next_session_id: str = ""
    reason: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


# --- Conversation ------------------------------------------------------------


@dataclass(frozen=True)
class UserMessageReceived:
    """The user (or the client on the user's behalf) said something to the agent."""

    timestamp: str
    content: str
    message_id: str = ""
    author_name: str = "user"
    message_index: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssistantTextGenerated:
    """The model wrote a block of text."""

    timestamp: str
    content: str
    message_id: str = ""
    author_name: str = ""
    message_index: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssistantThinkingGenerated:
    """The model thought (possibly only a signature: encrypted thinking)."""

    timestamp: str
    content: str
    encrypted: bool = False
    signature: str = ""
    message_id: str = ""
    author_name: str = ""
    message_index: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssistantToolCallsGenerated:
    """The model asked to call tools: each with call_id, tool_name, arguments, tool_kind."""

    timestamp: str
    tool_calls: list[dict[str, Any]]
    content: str = ""
    message_id: str = ""
    author_name: str = ""
    message_index: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolResultReceived:
    """A tool call returned. ``tool_name`` is empty where the record does not say it:
    projections resolve it from ``call_id``."""

    timestamp: str
    call_id: str
    result: str
    tool_name: str = ""
    message_id: str = ""
    author_name: str = "tool"
    message_index: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InterruptIssued:
    """The agent was stopped to ask or was interrupted (permission prompt, user abort)."""

    timestamp: str
    request_id: str = ""
    kind: str = ""
    tool_name: str = ""
    prompt: str = ""
    message_id: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InterruptResolved:
    """An interrupt was answered (approved, denied, aborted)."""

    timestamp: str
    request_id: str = ""
    outcome: str = ""
    response: str = ""
    message_id: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


# --- Subagents ---------------------------------------------------------------


@dataclass(frozen=True)
class SubagentStarted:
    """A subagent began; its conversation is in ``subsession_stream``."""

    timestamp: str
    agent_id: str
    agent_type: str = ""
    prompt: str = ""
    subsession_stream: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SubagentCompleted:
    """A subagent finished and handed its result back."""

    timestamp: str
    agent_id: str
    outcome: str = ""
    summary: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


# --- Memory ------------------------------------------------------------------


@dataclass(frozen=True)
class FactRetained:
    """A fact was kept for later sessions to recall."""

    fact: str
    retained_at: str
    extensions: dict[str, Any] = field(default_factory=dict)


# --- Kapacitor's own types (the schema has none for these) -------------------


@dataclass(frozen=True)
class ContextCompacted:  # kapacitor
    """The conversation was compacted: history before this point was summarised."""

    timestamp: str
    trigger: str = ""
    pre_tokens: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiErrorOccurred:  # kapacitor
    """The model API failed (and may be retried)."""

    timestamp: str
    error: str = ""
    retry_attempt: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnCompleted:  # kapacitor
    """A turn ended; how long it took."""

    timestamp: str
    duration_ms: int = 0
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SystemNoticeRecorded:  # kapacitor
    """The client noted something about itself (hook summary, info, warning)."""

    timestamp: str
    subtype: str = ""
    level: str = ""
    content: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContextAttached:  # kapacitor
    """The client added context to the conversation (files, listings, hook output)."""

    timestamp: str
    kind: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionTitled:  # kapacitor
    """The session got a title (AI-generated, a summary, or set by the user)."""

    timestamp: str
    title: str
    source: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientStateRecorded:  # kapacitor
    """Client bookkeeping: prompt queue, mode, last prompt, file-history snapshots."""

    timestamp: str
    kind: str
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HookReceived:  # kapacitor
    """A live hook payload from the running agent (tool timing, permission, notice)."""

    timestamp: str
    hook_event_name: str
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnknownRecordReceived:  # kapacitor
    """A record we could not map (unknown type, unparseable line): kept verbatim so a
    later version can re-project it."""

    timestamp: str
    reason: str
    record_type: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionEvalCompleted:  # kapacitor
    """An LLM-as-judge evaluation of the session finished: scores, evidence, findings."""

    timestamp: str
    eval_id: str
    scores: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretsScrubbed:  # kapacitor
    """``kapacitor scrub`` rewrote stored events to mask secrets found by the
    current rules: the one logged exception to immutability. Names what was
    scrubbed (event ids, rule kinds and counts), never a value."""

    timestamp: str
    events: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def scrub_log_stream() -> str:
    """Where ``SecretsScrubbed`` events go: one stream for the whole store."""
    return "KapacitorScrub"


@dataclass(frozen=True)
class EvalVerdictReviewed:  # kapacitor
    """A person agreed or disagreed with one verdict of an eval (human calibration)."""

    timestamp: str
    eval_id: str
    question_id: str
    agree: bool
    reviewer: str = ""
    comment: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FactSuperseded:  # kapacitor
    """A retained fact was replaced by a newer one (``superseded_by``); the old
    event is kept, the facts read model stops recalling it."""

    fact_id: str
    superseded_by: str
    superseded_at: str
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FactRetired:  # kapacitor
    """A retained fact is no longer true or useful and is not recalled any more."""

    fact_id: str
    retired_at: str
    reason: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FactsRecalled:  # kapacitor
    """Facts were handed to an agent (at session start, or through the MCP ``recall``
    tool): each use is counted by the facts read model."""

    fact_ids: list[str]
    recalled_at: str
    session_id: str = ""
    via: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommentAdded:  # kapacitor
    """A person commented on a session. ``target`` says on what: ``{"kind":
    "session"}``, or a chat item (``kind`` ``chat``, ``anchor`` its event id) or a
    trace node (``kind`` ``trace``, ``anchor`` the node's id), both stable across
    rebuilds. ``text`` is markdown (secrets masked before it is stored)."""

    timestamp: str
    comment_id: str
    author: str
    text: str
    target: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommentEdited:  # kapacitor
    """A comment's author replaced its text (markdown); the earlier text stays in the log."""

    timestamp: str
    comment_id: str
    author: str
    text: str
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CommentRetracted:  # kapacitor
    """A comment was taken back (by its author, or an admin): it is no longer
    shown; the ``CommentAdded`` stays in the log."""

    timestamp: str
    comment_id: str
    author: str
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionMarked:  # kapacitor
    """A person marked the session as worth learning from, and why (optional).
    One mark per person: marking again replaces their reason."""

    timestamp: str
    author: str
    reason: str = ""
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionUnmarked:  # kapacitor
    """``author`` took back the mark ``marked_by`` made (their own, or as an admin)."""

    timestamp: str
    author: str
    marked_by: str
    extensions: dict[str, Any] = field(default_factory=dict)


CANONICAL_TYPES = (
    SessionStarted,
    SessionEnded,
    SessionContinuedAs,
    UserMessageReceived,
    AssistantTextGenerated,
    AssistantThinkingGenerated,
    AssistantToolCallsGenerated,
    ToolResultReceived,
    InterruptIssued,
    InterruptResolved,
    SubagentStarted,
    SubagentCompleted,
    FactRetained,
)
KAPACITOR_TYPES = (
    ContextCompacted,
    ApiErrorOccurred,
    TurnCompleted,
    SystemNoticeRecorded,
    ContextAttached,
    SessionTitled,
    ClientStateRecorded,
    HookReceived,
    UnknownRecordReceived,
    SessionEvalCompleted,
    EvalVerdictReviewed,
    SecretsScrubbed,
    FactSuperseded,
    FactRetired,
    FactsRecalled,
    CommentAdded,
    CommentEdited,
    CommentRetracted,
    SessionMarked,
    SessionUnmarked,
)
EVENT_TYPES: dict[str, type] = {t.__name__: t for t in CANONICAL_TYPES + KAPACITOR_TYPES}


def to_new_event(payload: Any, id: str, metadata: dict[str, Any] | None = None) -> NewEvent:
    """Wrap a payload dataclass as an event ready to append."""
    return NewEvent(
        id=id,
        type=type(payload).__name__,
        data=dict(vars(payload)),
        metadata=metadata or {},
    )
