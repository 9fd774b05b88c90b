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

import uuid
from dataclasses import dataclass, field
from typing import Any

from kapacitor.envelope import (  # noqa: F401  (re-exported: the vocabulary's one import)
    EVENT_ID_NAMESPACE_HEX,
    SCHEMA_VERSION,
    SCHEMA_VERSION_METADATA_KEY,
    TOKEN_FIELDS,
    USAGE_METADATA_KEY,
    NewEvent,
    RecordedEvent,
    agent_memory_stream,
    agent_session_stream,
    agent_subsession_stream,
    event_id,
    session_comments_stream,
    session_eval_stream,
    session_marks_stream,
)

# Namespace for deterministic event ids (uuid5 of the source identity).
EVENT_ID_NAMESPACE = uuid.UUID(EVENT_ID_NAMESPACE_HEX)


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
