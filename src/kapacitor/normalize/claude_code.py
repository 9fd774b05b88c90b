"""Claude Code transcript records → canonical events. The one place for that rule.

A transcript is JSON lines. Each line becomes one or more events; the line's
text is kept (redacted) on the first of them, so a later version can re-project
it. Nothing is dropped: a line we cannot parse or a record type we do not know
becomes an ``UnknownRecordReceived`` carrying the raw text.

The mapping is per line and needs no memory of earlier lines, so a live session
(lines arriving a few at a time) and the same transcript imported later give
the identical event set. (One exception: the inline sidechains of clients before
2.0, whose records carry no agent id, are told apart by following ``parentUuid``
within the file.) Ids are derived from the session, the record's ``uuid`` (or,
for records without one, its byte offset in the file and a hash of its text)
and the block index.

Identity comes from the records: a record's ``sessionId`` names its session and
``agentId``/``isSidechain`` its subagent, whatever the file is called or where
it lies (2.0.x wrote ``agent-<id>.jsonl`` beside the parent's file; files get
renamed and copied). The path (``Source``) is only the fallback for records
that do not say.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kapacitor.capture.layout import valid_session_id
from kapacitor.events import (
    SCHEMA_VERSION,
    SCHEMA_VERSION_METADATA_KEY,
    USAGE_METADATA_KEY,
    ApiErrorOccurred,
    AssistantTextGenerated,
    AssistantThinkingGenerated,
    AssistantToolCallsGenerated,
    ClientStateRecorded,
    ContextAttached,
    ContextCompacted,
    InterruptIssued,
    InterruptResolved,
    NewEvent,
    SessionStarted,
    SessionTitled,
    SubagentCompleted,
    SubagentStarted,
    SystemNoticeRecorded,
    ToolResultReceived,
    TurnCompleted,
    UnknownRecordReceived,
    UserMessageReceived,
    agent_session_stream,
    agent_subsession_stream,
    event_id,
    to_new_event,
)
from kapacitor.normalize import redact, validate
from kapacitor.normalize.client_records import (
    CLIENT_RECORD_TYPES,
    assistant_fields,
    client_record,
    denial_of,
    local_command_fields,
    result_text,
    task_notification,
    thinking_usage,
)
from kapacitor.normalize.injected import split_injected
from kapacitor.normalize.repair import split_line
from kapacitor.store import codec

AGENT = "claude-code"
EXT = "claude_code"

Routed = tuple[str, NewEvent]
"""An event and the stream it goes to."""

# Fields every record repeats; what is left over goes into the extension.
_COMMON = frozenset(
    "type uuid parentUuid sessionId timestamp cwd gitBranch version isSidechain userType"
    " entrypoint message slug agentId requestId".split()
)
_CLIENT_STATE = frozenset(
    "queue-operation last-prompt mode permission-mode file-history-snapshot tag agent-name"
    " agent-color agent-setting pr-link progress worktree-state content-replacement"
    " marble-origami-commit marble-origami-snapshot".split()
)
_TITLES = {"ai-title": ("aiTitle", "ai"), "custom-title": ("customTitle", "user"), "summary": ("summary", "summary")}
_DENIAL = re.compile(
    r"requested permissions|require[sd]? approval|doesn't want to proceed|"
    r"permission to use \S+ has been denied|was rejected by the user|Permission denied by|"
    r"was blocked\. For security",
    re.IGNORECASE,
)
_TAG = re.compile(r"^\s*<([a-z][a-z0-9-]*)>", re.IGNORECASE)
_USER_KINDS = {
    "command-name": "command",
    "command-message": "command",
    "local-command-stdout": "command_output",
    "local-command-stderr": "command_output",
    "local-command-caveat": "meta",
    "bash-input": "bash_input",
    "bash-stdout": "bash_output",
    "bash-stderr": "bash_output",
    "task-notification": "notification",
    "user-prompt-submit-hook": "hook_output",
    "system-reminder": "meta",
}


@dataclass(frozen=True)
class Source:
    """Which transcript a line comes from: the session, and for a subagent transcript
    its agent id and ``agent-*.meta.json`` content, as the file's location says.
    ``from_records``: a record's own ``sessionId`` overrides ``session_id`` (import);
    live ingest pins the session the batch was posted to."""

    session_id: str
    agent_id: str | None = None
    subagent_meta: dict[str, Any] = field(default_factory=dict)
    from_records: bool = True


ContextResolver = Callable[[str], dict[str, Any]]
"""Given a cwd, what the machine knows about it: repository, remote, user."""


def is_transcript_record(record: Any) -> bool:
    """Whether a parsed line is a record Claude Code writes to a transcript: a JSON
    object with a ``type`` (a non-empty string), known or not. Anything else in a
    ``.jsonl`` (a hook's payload log has ``session_id`` and ``cwd`` but no ``type``)
    is kept as an unknown record, opens no session, and does not make its file a
    transcript (the import's file test counts these: ``Normalizer.transcript_records``)."""
    return isinstance(record, dict) and isinstance(record.get("type"), str) and record["type"] != ""


class Normalizer:
    """Normalizes the lines of one transcript file, in order.

    State: the sessions it already emitted ``SessionStarted`` for (a performance
    shortcut: that event's id is fixed per session and the store would skip a
    second copy anyway), the inline sidechains it has seen (record uuid to
    sidechain id, for clients before 2.0), and ``transcript_records``: how many
    of the lines fed so far held a transcript record (``is_transcript_record``).
    """

    def __init__(self, source: Source, resolve_context: ContextResolver | None = None,
                 redactor: redact.Redactor | None = None):
        self.redactor = redactor or redact.default(accelerate=True)
        if source.subagent_meta:  # a subagent's description may quote a secret too
            source = replace(source, subagent_meta=self.redactor.redact_json(source.subagent_meta))
        self.source = source
        self.resolve_context = resolve_context
        self._started: set[str] = set()
        self._sidechains: dict[str, str] = {}
        self.transcript_records = 0

    def feed(self, line: bytes, offset: int, line_no: int, *, masked: bool = False) -> list[Routed]:
        """The events for one transcript line (without its newline; ``masked``:
        its secrets masked already, by ``Redactor.masked_lines``). A damaged line
        (see ``repair``) gives the events of every complete record inside it; the
        first event of a recovered record says what was repaired in
        ``metadata.repair``."""
        text, raw_b64, bad_utf8 = _decoded(line if masked else self.redactor.redact_bytes(line))
        try:
            record, lenient = validate.parse(text)
        except ValueError as exc:
            pieces = split_line(text)
            if pieces is None:
                return [self._unknown(text, offset, line_no, f"invalid JSON: {exc}", raw_b64)]
            return self._recovered(pieces, text, offset, line_no)
        except RecursionError:
            return [self._unknown(text, offset, line_no, "invalid JSON: nested too deep", raw_b64)]
        if not isinstance(record, dict):
            return [self._unknown(text, offset, line_no, "record is not a JSON object", raw_b64)]
        return self._record(record, text, offset, line_no, raw_b64, bad_utf8, lenient)

    def unmappable(self, line: bytes, offset: int, line_no: int, reason: str) -> Routed:
        """One line kept whole as an ``UnknownRecordReceived`` (raw text, secrets
        masked): for a caller whose ``feed`` of that line raised, so that one
        record can never stop the lines after it."""
        text, raw_b64, _ = _decoded(self.redactor.redact_bytes(line))
        return self._unknown(text, offset, line_no, reason, raw_b64)

    def _record(
        self, record: dict[str, Any], text: str, offset: int, line_no: int, raw_b64: str | None, bad_utf8: str | None,
        lenient: bool = True,
    ) -> list[Routed]:
        # The validation boundary (validate.py): the envelope before mapping, every event after.
        record, notes = validate.envelope(record)
        transcript = is_transcript_record(record)
        self.transcript_records += transcript
        session_id, agent_id = self._identity(record)
        line_ctx = _Line(self.source, record, offset, line_no, text, raw_b64, bad_utf8, session_id, agent_id)
        try:
            routed = _map_record(line_ctx)
            if transcript and session_id not in self._started and record.get("cwd") and agent_id is None:
                routed.insert(0, self._session_started(line_ctx))
            facts = validate.line_facts(text, record, notes, lenient)
            checked = [(stream, validate.checked(new, facts)) for stream, new in routed]
        except Exception as exc:  # a shape the mapping cannot follow: kept whole, as unknown
            return [self._unknown(text, offset, line_no, f"cannot map record: {type(exc).__name__}: {exc}", raw_b64)]
        if any(new.type == "SessionStarted" for _, new in checked):
            self._started.add(session_id)
        return checked

    def _recovered(self, pieces: list[Any], text: str, offset: int, line_no: int) -> list[Routed]:
        """The events of the pieces of a damaged line: each piece at its own byte
        offset (so ids stay distinct and stable), fragments as unknown records."""
        out: list[Routed] = []
        for piece in pieces:
            at = offset + len(text[: piece.start].encode("utf-8", "surrogatepass"))
            if piece.record is None:
                out.append(self._unknown(piece.text, at, line_no, "cut-off fragment of a damaged line", None))
                continue
            routed = self._record(piece.record, piece.text, at, line_no, None, None)
            if piece.repair and routed:
                routed[0][1].metadata["repair"] = piece.repair
            out.extend(routed)
        return out

    def _identity(self, record: dict[str, Any]) -> tuple[str, str | None]:
        """(session, subagent or None) of a record: what the record says, else the
        file's location. Inline sidechains without an agent id (before 2.0) are
        named after their first record and followed by ``parentUuid``."""
        source = self.source
        session_id = source.session_id
        named = record.get("sessionId")
        if source.from_records and valid_session_id(named):
            session_id = named
        agent = source.agent_id
        if agent is None:
            named_agent = record.get("agentId")
            if valid_session_id(named_agent):
                agent = named_agent
            elif record.get("isSidechain"):
                parent = record.get("parentUuid")
                agent = self._sidechains.get(parent) if isinstance(parent, str) else None
                if agent is None:
                    uuid = record.get("uuid")
                    agent = f"sidechain-{uuid[:8]}" if isinstance(uuid, str) and uuid else "sidechain"
                if isinstance(record.get("uuid"), str):
                    self._sidechains[record["uuid"]] = agent
        return session_id, agent

    def _unknown(self, text: str, offset: int, line_no: int, reason: str, raw_b64: str | None) -> Routed:
        ctx = _Line(self.source, {}, offset, line_no, text, raw_b64, None, self.source.session_id, self.source.agent_id)
        stream, new = ctx.route(UnknownRecordReceived(timestamp="", reason=reason[:500]), "unparsed")
        return stream, validate.checked(new)

    def _session_started(self, ctx: _Line) -> Routed:
        record = ctx.record
        cwd = record["cwd"]
        machine = self.resolve_context(cwd) if self.resolve_context else {}
        payload = SessionStarted(
            timestamp=record.get("timestamp", ""),
            agent_name=AGENT,
            app_name=AGENT,
            user_id=machine.get("user", ""),
            extensions={
                EXT: {
                    "cwd": cwd,
                    "git_branch": record.get("gitBranch", ""),
                    "version": record.get("version", ""),
                    "entrypoint": record.get("entrypoint", ""),
                    "permission_mode": record.get("permissionMode", ""),
                    **machine,
                }
            },
        )
        stream = agent_session_stream(ctx.session_id)
        new = to_new_event(payload, event_id(AGENT, ctx.session_id, "SessionStarted"), ctx.metadata())
        return stream, new


def _decoded(masked: bytes) -> tuple[str, str | None, str | None]:
    """(text, raw_b64, bad_utf8) of a line (secrets masked): invalid UTF-8 keeps
    the original bytes as base64 and decodes what it can."""
    try:
        return masked.decode("utf-8"), None, None
    except UnicodeDecodeError as exc:
        text = masked.decode("utf-8", errors="replace")
        return text, base64.b64encode(masked).decode("ascii"), f"invalid UTF-8 at byte {exc.start}"


@dataclass
class _Line:
    """One parsed line and everything needed to turn it into events."""

    source: Source
    record: dict[str, Any]
    offset: int
    line_no: int
    text: str
    raw_b64: str | None
    bad_utf8: str | None
    session_id: str
    """The record's session (see ``Normalizer._identity``)."""
    agent_id: str | None
    """The record's subagent, None for the main agent."""
    first_id: str | None = None

    @property
    def stream(self) -> str:
        if self.agent_id:
            return agent_subsession_stream(self.session_id, self.agent_id)
        return agent_session_stream(self.session_id)

    def identity(self) -> str:
        uuid = self.record.get("uuid")
        if isinstance(uuid, str) and uuid:
            return f"uuid:{uuid}"
        # No uuid: where it is and what it says (so a rewritten file cannot make
        # two different records share an id).
        return f"offset:{self.offset}:{hashlib.sha1(self.text.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"

    def metadata(self, usage: dict[str, Any] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            SCHEMA_VERSION_METADATA_KEY: SCHEMA_VERSION,
            "agent": {"name": AGENT, "version": self.record.get("version", "")},
            "source": {
                "session_id": self.session_id,
                "agent_id": self.agent_id,
                "line": self.line_no,
                "offset": self.offset,
            },
        }
        if usage:
            meta[USAGE_METADATA_KEY] = usage
        if self.first_id is None:
            if self.raw_b64 is not None:
                meta["raw_b64"] = self.raw_b64
                meta["raw_error"] = self.bad_utf8
            else:
                meta["raw"] = self.text
        else:
            meta["raw_ref"] = self.first_id
        return meta

    def route(
        self, payload: Any, block: object, usage: dict[str, Any] | None = None, stream: str | None = None
    ) -> Routed:
        """Wrap one payload as an event of this line. The first event carries the raw
        line; the others point at it."""
        new_id = event_id(AGENT, self.session_id, self.agent_id or "", self.identity(), block)
        new = to_new_event(payload, new_id, self.metadata(usage))
        if self.first_id is None:
            self.first_id = new_id
        return stream or self.stream, new

    def ext(self, **fields: Any) -> dict[str, Any]:
        """The claude_code extension: the record's own fields plus ``fields``."""
        rec = self.record
        base = {"uuid": rec.get("uuid"), "parent_uuid": rec.get("parentUuid")}
        if rec.get("sessionId") and rec["sessionId"] != self.session_id:
            base["record_session_id"] = rec["sessionId"]
        base.update(fields)
        return {EXT: base}


def _map_record(ctx: _Line) -> list[Routed]:
    kind = ctx.record.get("type")
    mapper = _MAPPERS.get(kind) if isinstance(kind, str) else None
    if mapper is not None:
        return mapper(ctx)
    if kind in _CLIENT_STATE:
        return [_client_state(ctx)]
    if kind in _TITLES:
        return [_title(ctx)]
    if kind in CLIENT_RECORD_TYPES:
        return [ctx.route(client_record(ctx.record, _COMMON), "state")]
    reason = f"unknown record type {kind!r}" if kind is not None else "record has no type"
    # Only a record that says something (a message or content) is worth a notice in the chat.
    has_content = bool(ctx.record.get("message") or ctx.record.get("content"))
    return [
        ctx.route(
            UnknownRecordReceived(
                timestamp=ctx.record.get("timestamp", ""), reason=reason, record_type=str(kind or ""),
                extensions={EXT: {"has_content": has_content}},
            ),
            "unknown",
        )
    ]


# --- user records ------------------------------------------------------------


def _user(ctx: _Line) -> list[Routed]:
    record = ctx.record
    ts = record.get("timestamp", "")
    content = (record.get("message") or {}).get("content")
    if isinstance(content, str):
        said = _user_text(ctx, content, [])  # first: the line's raw text goes with it
        done = _background_done(ctx, content) if _user_kind(record, content) == "notification" else None
        return [said, *([done] if done else [])]
    if not isinstance(content, list):
        return [ctx.route(UnknownRecordReceived(timestamp=ts, reason="user message without content", record_type="user"), "unknown")]
    out: list[Routed] = []
    texts, images, results = [], [], []
    for index, block in enumerate(content):
        if not isinstance(block, dict):
            texts.append(str(block))
        elif block.get("type") == "tool_result":
            results.append((index, block))
        elif block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") in ("image", "document"):
            images.append(media_of(block) | {"block": index})
        else:
            texts.append(f"[{block.get('type')} block]")
    for n, (index, block) in enumerate(results):
        out.extend(_tool_result(ctx, index, block, record.get("toolUseResult") if n == 0 else None))
    if texts or images or not results:
        out.append(_user_text(ctx, "\n".join(texts), images))
    return out


def _user_kind(record: dict[str, Any], text: str) -> str:
    if record.get("isCompactSummary"):
        return "compact_summary"
    if record.get("isMeta"):
        return "meta"
    tag = _TAG.match(text)
    if tag and tag.group(1).lower() in _USER_KINDS:
        return _USER_KINDS[tag.group(1).lower()]
    if record.get("isSidechain") and not record.get("parentUuid"):
        return "subagent_prompt"
    return "prompt"


def _user_text(ctx: _Line, text: str, images: list[dict[str, Any]]) -> Routed:
    record = ctx.record
    ts = record.get("timestamp", "")
    if text.startswith("[Request interrupted by user"):
        return ctx.route(
            InterruptIssued(timestamp=ts, kind="user_interrupt", prompt=text, extensions=ctx.ext()), "interrupt"
        )
    words, injected = split_injected(text)
    if injected and words:
        # The user's words are the content; the context the client or IDE put
        # around them rides apart.
        kind = _user_kind(record, words)
        text = words
    else:
        kind = _user_kind(record, text)
        if injected and kind == "prompt":
            kind = "meta"  # nothing but injected context
    fields: dict[str, Any] = {"kind": kind}
    if injected:
        fields["injected"] = injected
    if images:
        fields["images"] = images
    if kind == "command":
        name = re.search(r"<command-name>(.*?)</command-name>", text, re.DOTALL)
        args = re.search(r"<command-args>(.*?)</command-args>", text, re.DOTALL)
        fields["command"] = name.group(1).strip() if name else ""
        fields["args"] = args.group(1).strip() if args else ""
    for key in ("promptId", "permissionMode", "promptSource", "origin", "turnOrigin"):
        if key in record:
            fields[key] = record[key]
    payload = UserMessageReceived(
        timestamp=ts, content=text, message_id=record.get("uuid", ""), message_index=ctx.line_no, extensions=ctx.ext(**fields)
    )
    return ctx.route(payload, "text")


def _background_done(ctx: _Line, text: str) -> Routed | None:
    """A ``<task-notification>``: a background subagent finished (2.1.3xx). It comes as
    a user record, or, when the agent was mid-turn, as a ``queued_command`` attachment."""
    task = task_notification(text)
    if task is None:
        return None
    payload = SubagentCompleted(
        timestamp=ctx.record.get("timestamp", ""),
        agent_id=task["task_id"],
        outcome=task["status"],
        summary=task["result"],
        extensions=ctx.ext(
            tool_use_id=task["tool_use_id"], background=True, total_tokens=task["total_tokens"],
            duration_ms=task["duration_ms"], tool_use_count=task["tool_use_count"], notice=task["summary"],
        ),
    )
    return ctx.route(payload, "task-notification")


def _tool_result(ctx: _Line, index: int, block: dict[str, Any], structured: Any) -> list[Routed]:
    record = ctx.record
    ts = record.get("timestamp", "")
    call_id = str(block.get("tool_use_id", ""))
    result = result_text(_flatten(block.get("content")))
    is_error = bool(block.get("is_error"))
    fields: dict[str, Any] = {"is_error": is_error, "source_tool_assistant_uuid": record.get("sourceToolAssistantUUID")}
    if structured is not None:
        fields["tool_use_result"] = structured
    media = _result_media(block.get("content"), index)
    if media:
        fields["images"] = media
    tool_name = "Agent" if isinstance(structured, dict) and structured.get("agentId") else ""
    out = [
        ctx.route(
            ToolResultReceived(
                timestamp=ts,
                call_id=call_id,
                result=result,
                tool_name=tool_name,
                message_id=record.get("uuid", ""),
                message_index=ctx.line_no,
                extensions=ctx.ext(**fields),
            ),
            index,
        )
    ]
    denial = denial_of(record) if is_error else None
    if denial or (is_error and _DENIAL.search(result)):
        who = denial or {}
        out.append(ctx.route(InterruptIssued(timestamp=ts, request_id=call_id, kind="permission", prompt=result, extensions=ctx.ext(**who)), (index, "ask")))
        out.append(ctx.route(InterruptResolved(timestamp=ts, request_id=call_id, outcome="denied", response=result, extensions=ctx.ext(**who)), (index, "denied")))
    if tool_name == "Agent" and structured.get("status") != "async_launched":  # a background one completes later
        out.append(
            ctx.route(
                SubagentCompleted(
                    timestamp=ts,
                    agent_id=str(structured["agentId"]),
                    outcome=str(structured.get("status", "")),
                    summary=result_text(_flatten(structured.get("content"))),
                    extensions=ctx.ext(
                        tool_use_id=call_id,
                        agent_type=structured.get("agentType", ""),
                        total_tokens=structured.get("totalTokens"),
                        duration_ms=structured.get("totalDurationMs"),
                        tool_use_count=structured.get("totalToolUseCount"),
                    ),
                ),
                (index, "subagent"),
            )
        )
    return out


def media_of(block: dict[str, Any]) -> dict[str, Any]:
    """What an image or document block holds, without its data: type, media type
    and decoded size in bytes (from the base64 length)."""
    src = block.get("source") if isinstance(block.get("source"), dict) else {}
    data = src.get("data") if isinstance(src.get("data"), str) else ""
    return {"type": str(block.get("type", "")), "media_type": str(src.get("media_type", "")), "bytes": len(data) * 3 // 4}


def describe_media(media: dict[str, Any]) -> str:
    """A media block (``media_of``) as text: ``image image/png, 12.3 KB``."""
    size = int(media.get("bytes") or 0)
    shown = f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{size / 1024:.1f} KB"
    return f"{media.get('type') or 'media'} {media.get('media_type') or 'of unknown type'}, {shown}"


def _result_media(content: Any, index: int) -> list[dict[str, Any]]:
    """The image and document blocks of a tool result, with where they sit
    (``block``: the result's index in the message, ``item``: within the result)."""
    if not isinstance(content, list):
        return []
    return [
        media_of(b) | {"block": index, "item": n}
        for n, b in enumerate(content)
        if isinstance(b, dict) and b.get("type") in ("image", "document")
    ]


def _flatten(content: Any) -> str:
    """Tool-result content as text: strings joined, images, documents and other
    blocks named (never their data)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == "text":
                    parts.append(str(block.get("text", "")))
                elif block.get("type") in ("image", "document"):
                    parts.append(f"[{describe_media(media_of(block))}]")
                else:
                    parts.append(f"[{block.get('type', 'unknown')} block]")
            else:
                parts.append(str(block))
        return "\n".join(parts)
    return str(content)


# --- assistant records -------------------------------------------------------


def _usage(record: dict[str, Any]) -> dict[str, Any] | None:
    message = record.get("message") or {}
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return None
    cache = usage.get("cache_creation") or {}
    return {
        "model": message.get("model", ""),
        "message_id": message.get("id", ""),
        "request_id": record.get("requestId", ""),
        "input_tokens": usage.get("input_tokens") or 0,
        "output_tokens": usage.get("output_tokens") or 0,
        "cache_read_input_tokens": usage.get("cache_read_input_tokens") or 0,
        "cache_creation_input_tokens": usage.get("cache_creation_input_tokens") or 0,
        "ephemeral_5m_input_tokens": cache.get("ephemeral_5m_input_tokens") or 0,
        "ephemeral_1h_input_tokens": cache.get("ephemeral_1h_input_tokens") or 0,
        **thinking_usage(usage),
        **{k: v for k, v in (("requested_model", record.get("requestedModel")), ("effort", record.get("effort"))) if v},
    }


def _assistant(ctx: _Line) -> list[Routed]:
    record = ctx.record
    message = record.get("message") or {}
    ts = record.get("timestamp", "")
    model = str(message.get("model", ""))
    content = message.get("content")
    if record.get("isApiErrorMessage") or (model == "<synthetic>" and record.get("error")):
        error = _flatten(content) or str(record.get("error", ""))
        return [ctx.route(ApiErrorOccurred(timestamp=ts, error=error, extensions=ctx.ext(model=model, error_kind=record.get("error"))), "api-error")]
    synthetic = model == "<synthetic>" and not record.get("requestId")
    # A message the client wrote itself ("No response requested.") is no API call.
    usage = None if synthetic else _usage(record)
    common = {
        "message_id": str(message.get("id", "")),
        "author_name": model,
        "message_index": ctx.line_no,
    }
    ext = ctx.ext(stop_reason=message.get("stop_reason"), request_id=record.get("requestId", ""), **assistant_fields(record))
    if synthetic:
        ext[EXT]["synthetic"] = True
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        return [ctx.route(UnknownRecordReceived(timestamp=ts, reason="assistant message without content blocks", record_type="assistant"), "unknown", usage)]
    out = []
    for index, block in enumerate(content):
        btype = block.get("type") if isinstance(block, dict) else None
        if btype == "text":
            payload: Any = AssistantTextGenerated(timestamp=ts, content=str(block.get("text", "")), extensions=ext, **common)
        elif btype in ("thinking", "redacted_thinking"):
            thought = str(block.get("thinking", ""))
            payload = AssistantThinkingGenerated(
                timestamp=ts,
                content=thought,
                encrypted=btype == "redacted_thinking" or not thought,
                signature=str(block.get("signature", "") or block.get("data", "")),
                extensions=ext,
                **common,
            )
        elif btype in ("tool_use", "server_tool_use", "mcp_tool_use"):
            name = str(block.get("name", ""))
            kind = "server" if btype == "server_tool_use" else ("mcp" if name.startswith("mcp__") or btype == "mcp_tool_use" else "function")
            call = {"call_id": str(block.get("id", "")), "tool_name": name, "arguments": block.get("input") or {}, "tool_kind": kind}
            payload = AssistantToolCallsGenerated(timestamp=ts, tool_calls=[call], extensions=ext, **common)
        elif btype and btype.endswith("_tool_result"):
            payload = ToolResultReceived(
                timestamp=ts,
                call_id=str(block.get("tool_use_id", "")),
                result=_flatten(block.get("content")),
                tool_name=btype.removesuffix("_tool_result"),
                message_id=common["message_id"],
                message_index=ctx.line_no,
                extensions=ext,
            )
        else:
            payload = UnknownRecordReceived(timestamp=ts, reason=f"unknown assistant block type {btype!r}", record_type="assistant")
        out.append(ctx.route(payload, index, usage))
    return out


# --- other records -----------------------------------------------------------


def _system(ctx: _Line) -> list[Routed]:
    record = ctx.record
    ts = record.get("timestamp", "")
    subtype = str(record.get("subtype", ""))
    rest = {k: v for k, v in record.items() if k not in _COMMON and k not in ("subtype", "content", "level")}
    if subtype == "compact_boundary":
        meta = record.get("compactMetadata") or {}
        payload: Any = ContextCompacted(
            timestamp=ts, trigger=str(meta.get("trigger", "")), pre_tokens=int(meta.get("preTokens") or 0), extensions=ctx.ext(**rest)
        )
    elif subtype == "api_error":
        error = record.get("error")
        payload = ApiErrorOccurred(
            timestamp=ts,
            error=error if isinstance(error, str) else codec.dumps(error).decode(),
            retry_attempt=int(record.get("retryAttempt") or 0),
            extensions=ctx.ext(**rest),
        )
    elif subtype == "turn_duration":
        payload = TurnCompleted(timestamp=ts, duration_ms=int(record.get("durationMs") or 0), extensions=ctx.ext(**rest))
    else:
        if subtype == "local_command":
            rest.update(local_command_fields(record))
        payload = SystemNoticeRecorded(
            timestamp=ts, subtype=subtype, level=str(record.get("level", "")), content=_flatten(record.get("content")), extensions=ctx.ext(**rest)
        )
    return [ctx.route(payload, "system")]


def _attachment(ctx: _Line) -> list[Routed]:
    record = ctx.record
    attachment = record.get("attachment") or {}
    queued = attachment.get("type") == "queued_command" and isinstance(attachment.get("prompt"), str)
    if queued and task_notification(attachment["prompt"]) is None:
        prompt = _queued_prompt(ctx, attachment)  # typed while a tool ran: the user's input
        if prompt is not None:
            return [prompt]
    summary = {k: v for k, v in attachment.items() if isinstance(v, (str, int, bool)) and k not in ("content",) and len(str(v)) < 500}
    payload = ContextAttached(timestamp=record.get("timestamp", ""), kind=str(attachment.get("type", "")), extensions=ctx.ext(**summary))
    out = [ctx.route(payload, "attachment")]
    if queued:
        done = _background_done(ctx, attachment["prompt"])
        out.extend([done] if done else [])
    return out


def _queued_prompt(ctx: _Line, attachment: dict[str, Any]) -> Routed | None:
    """A prompt the user typed while a tool ran: the client queues it and hands it
    to the model as an attachment. Only human input counts (not task notifications)."""
    origin = attachment.get("origin")
    if isinstance(origin, dict) and origin.get("kind") not in (None, "human"):
        return None
    mode = attachment.get("commandMode") or "prompt"
    text = str(attachment["prompt"])
    kind = "bash_input" if mode == "bash" else _user_kind({}, text) if mode == "prompt" else None
    if kind is None:
        return None
    fields: dict[str, Any] = {"kind": kind, "queued": True}
    if kind == "prompt":
        words, injected = split_injected(text)
        if injected:
            text, fields["injected"] = words, injected
    if isinstance(origin, dict):
        fields["origin"] = origin
    payload = UserMessageReceived(
        timestamp=ctx.record.get("timestamp", ""),
        content=text,
        message_id=ctx.record.get("uuid", ""),
        message_index=ctx.line_no,
        extensions=ctx.ext(**fields),
    )
    return ctx.route(payload, "attachment")


def _client_state(ctx: _Line) -> Routed:
    record = ctx.record
    rest = {k: v for k, v in record.items() if k not in _COMMON and k != "snapshot"}
    payload = ClientStateRecorded(timestamp=record.get("timestamp", ""), kind=str(record["type"]), extensions=ctx.ext(**rest))
    return ctx.route(payload, "state")


def _title(ctx: _Line) -> Routed:
    record = ctx.record
    key, source = _TITLES[record["type"]]
    rest = {k: v for k, v in record.items() if k not in _COMMON and k != key}
    payload = SessionTitled(timestamp=record.get("timestamp", ""), title=str(record.get(key, "")), source=source, extensions=ctx.ext(**rest))
    return ctx.route(payload, "title")


def subagent_started(ctx: _Line) -> Routed | None:
    """The parent-stream event that opens a subagent's conversation: on its first
    prompt, in whichever file that lies (its own, beside the parent's, or inline)."""
    source, record = ctx.source, ctx.record
    if not ctx.agent_id or record.get("type") != "user" or record.get("parentUuid"):
        return None
    meta = source.subagent_meta if source.agent_id == ctx.agent_id else {}
    content = (record.get("message") or {}).get("content")
    payload = SubagentStarted(
        timestamp=record.get("timestamp", ""),
        agent_id=ctx.agent_id,
        agent_type=str(meta.get("agentType", "")),
        prompt=content if isinstance(content, str) else _flatten(content),
        subsession_stream=agent_subsession_stream(ctx.session_id, ctx.agent_id),
        extensions={EXT: {"tool_use_id": meta.get("toolUseId"), "description": meta.get("description"), "spawn_depth": meta.get("spawnDepth")}},
    )
    return ctx.route(payload, "SubagentStarted", stream=agent_session_stream(ctx.session_id))


def _user_or_subagent(ctx: _Line) -> list[Routed]:
    out = _user(ctx)
    started = subagent_started(ctx)
    return [started, *out] if started else out


_MAPPERS: dict[str, Callable[[_Line], list[Routed]]] = {
    "user": _user_or_subagent,
    "assistant": _assistant,
    "system": _system,
    "attachment": _attachment,
}
