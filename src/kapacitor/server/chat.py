"""The chat replay: a session's conversation as the developer saw it.

``chat_items`` reads the session stream (and the subagent streams it links to)
and turns its events into ``ChatItem``s: prompts and slash commands, assistant
text and thinking, each tool call paired with its result by ``call_id``, API
errors, compactions and interrupts in place. A subagent's own conversation is
inlined under the Agent/Task call that started it (``SubagentStarted`` names the
call in ``extensions.claude_code.tool_use_id``). Client bookkeeping (queue,
mode, attachments, titles, turn timings) is left out. History a resumed or
forked session inherited (``projections/ownership.py``) is marked with the
session that owns it (``detail.inherited_from``) and rendered collapsed.

``render_chat`` renders a page of items; a long session is lazy-loaded by htmx
one page at a time. The trace view (``trace.py``) regroups the same items, so
the pairing rules live here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from kapacitor.events import USAGE_METADATA_KEY, RecordedEvent, agent_session_stream
from kapacitor.projections.session_summary import tool_failed
from kapacitor.server.render.items import render_item
from kapacitor.server.render.media import attach_sources
from kapacitor.server.render.sanitize import html
from kapacitor.store.base import NO_STREAM, EventStore

AGENT_TOOLS = ("Agent", "Task")


@dataclass
class SubagentRun:
    """A subagent started by a tool call, with its own conversation."""

    agent_id: str
    agent_type: str = ""
    description: str = ""
    stream: str = ""
    outcome: str = ""
    items: list[ChatItem] = field(default_factory=list)


@dataclass
class ToolCall:
    """A tool call and, once it came back, its result."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    started: str = ""
    result: str | None = None
    structured: Any = None
    is_error: bool = False
    finished: str = ""
    interrupt: dict[str, str] | None = None
    subagent: SubagentRun | None = None
    task_subject: str = ""
    """For TaskUpdate: the subject of the task, from the TaskCreate that made it."""
    media: list[dict[str, Any]] = field(default_factory=list)
    """Images and documents in the result, with ``src`` where they can be shown
    (``render.media``; left out of the JSON)."""
    background: dict[str, Any] | None = None
    """For an Agent call run in the background: its ``status`` (running until its
    task notification arrives, then completed / failed / killed), ``result``,
    ``duration_ms``, ``total_tokens``, ``tool_use_count`` and ``notification`` (the
    id of the chat item that announced it)."""

    @property
    def duration_ms(self) -> float | None:
        return duration_ms(self.started, self.finished)


@dataclass
class ChatItem:
    """One thing shown in the conversation. ``kind`` is a user message's kind
    (prompt, command, command_output, meta, compact_summary, subagent_prompt,
    bash_input, bash_output, notification, hook_output), or text, thinking,
    tool, tool_result (a result whose call is unknown), api_error, compaction,
    interrupt, notice."""

    kind: str
    timestamp: str = ""
    text: str = ""
    id: str = ""
    message_id: str = ""
    model: str = ""
    usage: dict[str, Any] | None = None
    tool: ToolCall | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    media: list[dict[str, Any]] = field(default_factory=list)
    """Images and documents of a prompt, as ``ToolCall.media``."""

    def as_json(self) -> dict[str, Any]:
        return _pruned(asdict(self))


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v not in (None, "", [], {}) and k != "media"}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def duration_ms(start: str, end: str) -> float | None:
    """Milliseconds between two ISO timestamps, None when either is missing."""
    if not (start and end):
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    try:
        return (parse(end) - parse(start)).total_seconds() * 1000
    except ValueError:
        return None


def chat_items(store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None) -> list[ChatItem]:
    """The session's conversation, subagents inlined under the calls that started
    them. ``inherited``: position → owning session of the events this session
    inherited (``ownership.inherited_positions``), marked on their items."""
    return read_chat(store, session_id, inherited)[0]


def read_chat(
    store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None
) -> tuple[list[ChatItem], dict[str, int]]:
    """``chat_items`` and the version each stream read for them had (stream → last
    version read, ``NO_STREAM`` for none): while those stand, the items are current."""
    stream = agent_session_stream(session_id)
    events = store.read_stream(stream)
    builder = _Builder(store, {}, inherited=inherited or {})
    builder.read(stream, events)
    builder.collect_links(events)
    items = builder.build(events)
    for run in builder.unclaimed():
        started = run.items[0].timestamp if run.items else ""
        call = ToolCall("", "Agent", {"description": run.description}, started, subagent=run)
        items.append(ChatItem("tool", call.started, tool=call))
    return items, builder.versions


@dataclass
class _Builder:
    store: EventStore
    links: dict[str, dict[str, Any]]
    """tool_use_id → SubagentStarted data, for every subagent of the session."""
    claimed: set[str] = field(default_factory=set)
    tasks: dict[str, str] = field(default_factory=dict)
    """Task id → subject, from TaskCreate results (the session's task list)."""
    versions: dict[str, int] = field(default_factory=dict)
    """Stream → the version of the last event read from it (``NO_STREAM``: none)."""

    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``api-request`` id → what the client asked the API for (model, effort, limits):
    joined to the assistant blocks that answer it by their ``request_ref``."""

    inherited: Mapping[int, str] = field(default_factory=dict)
    completed: dict[str, str] = field(default_factory=dict)
    """tool_use_id → agent id, from the parent's Agent/Task results (SubagentCompleted)."""
    raws: dict[str, str] = field(default_factory=dict)
    """Event id → raw line, for the events that carry images (``raw_ref`` resolves here)."""

    def raw_of(self, event: RecordedEvent) -> str | None:
        return event.metadata.get("raw") or self.raws.get(event.metadata.get("raw_ref", ""))

    def read(self, stream: str, events: list[RecordedEvent]) -> None:
        self.versions[stream] = events[-1].version if events else NO_STREAM

    def collect_links(self, events: list[RecordedEvent]) -> None:
        for event in events:
            if event.type == "SubagentStarted":
                ext = _ext(event.data)
                key = ext.get("tool_use_id") or f"unlinked:{event.data.get('agent_id', '')}"
                self.links.setdefault(key, event.data)
            elif event.type == "SubagentCompleted" and _ext(event.data).get("tool_use_id"):
                self.completed[_ext(event.data)["tool_use_id"]] = str(event.data.get("agent_id", ""))

    def link_for(self, call: ToolCall) -> str | None:
        """The link key of the subagent ``call`` started: by its id (``meta.json``),
        else (2.0.x files beside the parent, inline sidechains) by the agent its
        result names or the prompt it was given."""
        if call.call_id in self.links:
            return call.call_id
        if call.name not in AGENT_TOOLS:
            return None
        agent = self.completed.get(call.call_id)
        if agent and f"unlinked:{agent}" in self.links:
            return f"unlinked:{agent}"
        prompt = call.arguments.get("prompt")
        for key, data in self.links.items():
            if key.startswith("unlinked:") and key not in self.claimed and prompt and data.get("prompt") == prompt:
                return key
        return None

    def unclaimed(self) -> list[SubagentRun]:
        return [self.run_of(key) for key in list(self.links) if key not in self.claimed]

    def run_of(self, key: str) -> SubagentRun:
        """The subagent linked under ``key``, its stream read and built (once)."""
        self.claimed.add(key)
        data = self.links[key]
        stream = data.get("subsession_stream", "")
        events = self.store.read_stream(stream) if stream else []
        if stream:
            self.read(stream, events)
        self.collect_links(events)
        return SubagentRun(
            agent_id=data.get("agent_id", ""),
            agent_type=data.get("agent_type", ""),
            description=_ext(data).get("description") or "",
            stream=stream,
            items=self.build(events),
        )

    def build(self, events: list[RecordedEvent]) -> list[ChatItem]:
        conversation = _Conversation(self)
        for event in events:
            raw = event.metadata.get("raw")
            if raw and ('"image"' in raw or '"document"' in raw):
                self.raws[event.id] = raw
            handler = _HANDLERS.get(event.type)
            if handler:
                handler(conversation, event)
        return conversation.items


@dataclass
class _Conversation:
    """One stream being turned into items: its open tool calls by id."""

    builder: _Builder
    items: list[ChatItem] = field(default_factory=list)
    calls: dict[str, ToolCall] = field(default_factory=dict)

    def add(self, kind: str, event: RecordedEvent, text: str = "", /, **detail: Any) -> None:
        """An item for a non-assistant event."""
        self.items.append(
            ChatItem(kind, event.data.get("timestamp", ""), text, event.id, detail=detail | self.marks(event))
        )

    def marks(self, event: RecordedEvent) -> dict[str, Any]:
        owner = self.builder.inherited.get(event.position)
        return {"inherited_from": owner} if owner else {}

    def add_assistant(self, kind: str, event: RecordedEvent, **fields: Any) -> None:
        """An item for an assistant block, with its API message id and usage, and
        (newer clients) the API request it answers."""
        data = event.data
        marks = self.marks(event) | ({"synthetic": True} if _ext(data).get("synthetic") else {})
        if marks:
            fields["detail"] = fields.get("detail", {}) | marks
        request = self.builder.requests.get(_ext(data).get("request_ref", ""))
        if request:
            fields["detail"] = fields.get("detail", {}) | {"request": request}
        self.items.append(
            ChatItem(
                kind,
                data.get("timestamp", ""),
                id=event.id,
                message_id=data.get("message_id", ""),
                model=data.get("author_name", ""),
                usage=event.metadata.get(USAGE_METADATA_KEY),
                **fields,
            )
        )


def _ext(data: dict[str, Any]) -> dict[str, Any]:
    return (data.get("extensions") or {}).get("claude_code") or {}


def _user(c: _Conversation, event: RecordedEvent) -> None:
    ext = _ext(event.data)
    detail = {k: ext[k] for k in ("command", "args", "images", "injected", "queued") if ext.get(k)}
    c.add(ext.get("kind") or "prompt", event, event.data.get("content", ""), **detail)
    if ext.get("images"):
        c.items[-1].media = attach_sources(c.builder.raw_of(event), ext["images"])


def _text(c: _Conversation, event: RecordedEvent) -> None:
    c.add_assistant("text", event, text=event.data.get("content", ""))


def _thinking(c: _Conversation, event: RecordedEvent) -> None:
    text = event.data.get("content", "")
    encrypted = bool(event.data.get("encrypted")) or not text
    c.add_assistant("thinking", event, text=text, detail={"encrypted": encrypted})


def _tool_calls(c: _Conversation, event: RecordedEvent) -> None:
    b = c.builder
    for raw in event.data.get("tool_calls") or []:
        arguments = raw.get("arguments")
        call = ToolCall(
            call_id=str(raw.get("call_id", "")),
            name=str(raw.get("tool_name", "")),
            arguments=arguments if isinstance(arguments, dict) else {"input": arguments},
            started=event.data.get("timestamp", ""),
        )
        if call.name == "TaskUpdate":
            call.task_subject = b.tasks.get(str(call.arguments.get("taskId")), "")
        link = b.link_for(call)
        if link is not None and link not in b.claimed:
            call.subagent = b.run_of(link)
        c.calls[call.call_id] = call
        c.add_assistant("tool", event, tool=call)


def _tool_result(c: _Conversation, event: RecordedEvent) -> None:
    data = event.data
    call = c.calls.get(data.get("call_id", ""))
    if call is None or call.result is not None:
        c.add("tool_result", event, data.get("result", ""), call_id=data.get("call_id", ""))
        return
    call.result = data.get("result", "")
    call.structured = _ext(data).get("tool_use_result")
    if _ext(data).get("images"):
        call.media = attach_sources(c.builder.raw_of(event), _ext(data)["images"])
    if isinstance(call.structured, dict) and call.structured.get("status") == "async_launched":
        call.background = (call.background or {}) | {"status": "running"}
    call.is_error = tool_failed(data)
    call.finished = data.get("timestamp", "")
    if call.name == "TaskCreate" and isinstance(call.structured, dict):
        task = call.structured.get("task")
        if isinstance(task, dict) and task.get("id"):
            c.builder.tasks[str(task["id"])] = str(task.get("subject", ""))


def _interrupt(c: _Conversation, event: RecordedEvent) -> None:
    data = event.data
    call = c.calls.get(data.get("request_id", ""))
    facts = {k: str(data[k]) for k in ("kind", "prompt", "outcome", "response") if data.get(k)}
    facts |= {k: str(v) for k, v in _ext(data).items() if k in ("decided_by", "denial_kind") and v}
    if call is not None:
        call.interrupt = (call.interrupt or {}) | facts
    else:
        c.add("interrupt", event, data.get("prompt") or data.get("response") or "", **facts)


def _compacted(c: _Conversation, event: RecordedEvent) -> None:
    data = event.data
    c.add(
        "compaction", event, trigger=data.get("trigger", ""), pre_tokens=data.get("pre_tokens", 0)
    )


def _api_error(c: _Conversation, event: RecordedEvent) -> None:
    c.add(
        "api_error",
        event,
        event.data.get("error", ""),
        retry_attempt=event.data.get("retry_attempt", 0),
    )


def _notice(c: _Conversation, event: RecordedEvent) -> None:
    data = event.data
    if _ext(data).get("command_run") is False:  # a slash command the client refused to run
        c.add("command", event, data.get("content", ""), command=_ext(data).get("command", ""), not_run=True)
    elif event.type == "UnknownRecordReceived":
        if _ext(data).get("has_content", True):
            c.add("notice", event, data.get("reason", ""), level="unknown record")
    elif data.get("content") or data.get("level") in ("warning", "error"):
        c.add(
            "notice",
            event,
            data.get("content", ""),
            level=data.get("level", ""),
            subtype=data.get("subtype", ""),
        )


def _client_state(c: _Conversation, event: RecordedEvent) -> None:
    if event.data.get("kind") == "api-request":
        ext = _ext(event.data)
        facts = {k: ext.get(k) for k in ("model", "effort", "max_tokens", "thinking", "query_source", "shape_hash")}
        c.builder.requests[str(ext.get("request_ref", ""))] = {k: v for k, v in facts.items() if v not in (None, "")}


def _subagent_done(c: _Conversation, event: RecordedEvent) -> None:
    ext = _ext(event.data)
    call = c.calls.get(ext.get("tool_use_id", ""))
    if call is not None and call.subagent is not None:
        call.subagent.outcome = event.data.get("outcome", "")
    if ext.get("background"):
        _background_done(c, event, call)


def _background_done(c: _Conversation, event: RecordedEvent, call: ToolCall | None) -> None:
    """A background subagent's task notification: its outcome onto the Agent call
    that launched it, and the notification item (the one just added, from the same
    record; or, for a notification delivered mid-turn as an attachment, one made
    here) linked to that call rather than standing alone."""
    ext = _ext(event.data)
    source = event.metadata.get("raw_ref")
    notice = next((i for i in reversed(c.items) if i.kind == "notification" and i.id == source), None)
    if notice is None:
        c.add("notification", event, f"{ext.get('notice') or 'background agent'}\n\n{event.data.get('summary', '')}".strip())
        notice = c.items[-1]
    if notice is not None:
        call_item = next((i.id for i in c.items if call is not None and i.tool is call), "")
        notice.detail.update(call_id=ext.get("tool_use_id", ""), call_item=call_item,
                             agent_id=event.data.get("agent_id", ""), status=event.data.get("outcome", ""),
                             result=event.data.get("summary", ""))
    if call is not None:
        call.background = (call.background or {}) | {
            "status": event.data.get("outcome", ""),
            "result": event.data.get("summary", ""),
            "duration_ms": ext.get("duration_ms"),
            "total_tokens": ext.get("total_tokens"),
            "tool_use_count": ext.get("tool_use_count"),
            "finished": event.data.get("timestamp", ""),
            "notification": notice.id if notice else "",
        }


_HANDLERS = {
    "UserMessageReceived": _user,
    "AssistantTextGenerated": _text,
    "AssistantThinkingGenerated": _thinking,
    "AssistantToolCallsGenerated": _tool_calls,
    "ToolResultReceived": _tool_result,
    "InterruptIssued": _interrupt,
    "InterruptResolved": _interrupt,
    "ContextCompacted": _compacted,
    "ApiErrorOccurred": _api_error,
    "SystemNoticeRecorded": _notice,
    "UnknownRecordReceived": _notice,
    "SubagentCompleted": _subagent_done,
    "ClientStateRecorded": _client_state,
}


def render_chat(session_id: str, items: list[ChatItem], start: int = 0, limit: int = 200) -> Markup:
    """Sanitised HTML for at most ``limit`` items from ``start``, counting the
    subagent items nested in them (an item is never split, so a page holds at
    least one); when more remain, a placeholder that htmx swaps for the next
    page once it scrolls into view."""
    start = max(0, start)
    end, weight = start, 0
    while end < len(items) and (end == start or weight + size_of(items[end]) <= limit):
        weight += size_of(items[end])
        end += 1
    page = _render_page(items[start:end])
    if end < len(items):
        url = f"/sessions/{quote(session_id, safe='')}/chat?start={end}"
        page += html(
            '<div class="chat-more" hx-get="{}" hx-trigger="revealed" hx-swap="outerHTML">Loading {} more…</div>',
            url,
            len(items) - end,
        )
    return page


def _render_page(items: list[ChatItem]) -> Markup:
    """The items' HTML; each run of inherited history folded under one line that
    names the session it belongs to (and is counted in)."""
    parts: list[Markup] = []
    run: list[ChatItem] = []

    def flush() -> None:
        if run:
            owner = run[0].detail["inherited_from"]
            parts.append(
                html(
                    '<details class="inherited"><summary>{} items of history from session <a href="/sessions/{}">{}</a>'
                    " (counted there)</summary>{}</details>",
                    len(run),
                    quote(owner, safe=""),
                    owner[:8],
                    Markup("").join(render_item(i) for i in run),
                )
            )
            run.clear()

    for item in items:
        owner = item.detail.get("inherited_from")
        if owner and (not run or run[0].detail["inherited_from"] == owner):
            run.append(item)
            continue
        flush()
        if owner:
            run.append(item)
        else:
            parts.append(render_item(item))
    flush()
    return Markup("").join(parts)


def size_of(item: ChatItem) -> int:
    """The item and the subagent items nested in it, recursively."""
    run = item.tool.subagent if item.tool else None
    return 1 + (sum(size_of(child) for child in run.items) if run else 0)
