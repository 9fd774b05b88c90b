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

import threading
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from kapacitor import times
from kapacitor.cycles import young_collections_only
from kapacitor.events import USAGE_METADATA_KEY, RecordedEvent, agent_session_stream
from kapacitor.projections.session_summary import AGENT_TOOLS, SUBAGENT_FIGURES, subagent_client_reported, tool_failed
from kapacitor.server.render.items import NO_SUBAGENTS, Subagents, render_item
from kapacitor.server.render.media import attach_sources
from kapacitor.server.render.sanitize import html
from kapacitor.store.base import NO_STREAM, EventStore


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
    ``finished``, ``notification`` (the id of the chat item that announced it) and
    ``client_reported``: what the notification said (``session_summary.subagent_client_reported``).
    The subagent's time and tokens as the pages count them are the session row's
    (``SessionSummary.subagent_figures``), not these."""

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
    """Milliseconds between two ISO timestamps, None when either is missing (``times.seconds_between``)."""
    seconds = times.seconds_between(start, end)
    return None if seconds is None else seconds * 1000


def chat_items(store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None) -> list[ChatItem]:
    """The session's conversation, subagents inlined under the calls that started
    them. ``inherited``: position → owning session of the events this session
    inherited (``ownership.inherited_positions``), marked on their items."""
    return ChatModel(store, session_id, inherited).items


Key = tuple[str, str]
"""A piece of state the streams of a session share while folded: ("task", id),
("request", ref), ("link", key), ("done", tool_use_id), ("claimed", key),
("sub", call_id), ("unlinked", "*") (every unlinked subagent at once)."""
MAIN: tuple[Any, ...] = ("main",)


class _Rebuild(Exception):
    """Folding the new events alone could differ from folding all of them again."""


class BuildStopped(Exception):
    """A build given up because its ``stop`` was set (the server is stopping)."""


STOP_EVERY = 512
"""Events folded, or read a quarter as many, between two looks at a build's
``stop`` (a few milliseconds)."""


class ChatModel:
    """The chat of one session, folded from its streams and extended as they grow.

    The fold is one pass over the session stream, each subagent's stream folded
    in where the call that started it is (the subagent links of the session
    stream collected first), then the subagents no call claimed. ``update()``
    folds only the events appended since (read from each stream's last version):
    new events of a stream go after that stream's items, a subagent whose link
    arrives after its call is folded in under that call, a tool call's late result
    updates the call in place. That equals a fold of everything only while the
    moved events share no state with what was folded after their place in the
    full order (the task list, API requests, subagent links); every touch of that
    state is logged with the fold clock and the conversation it came from, and
    when a moved event meets one, or a link changes how an earlier call was
    linked, the model is folded again from the start. ``items`` are then what
    ``chat_items`` gives; ``versions`` (stream → last version read) say whether it
    is current; ``rebuilds`` counts the full folds.

    ``stop`` (a build ahead of any read, ``chat_warmup``): once set, the first
    build gives up (``BuildStopped``) within ``STOP_EVERY`` events read or
    folded (it reads its streams in pages then); later folds do not look at it.
    """

    def __init__(self, store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None,
                 stop: threading.Event | None = None):
        self.store, self.session_id = store, session_id
        self.stream = agent_session_stream(session_id)
        self.inherited = dict(inherited or {})
        self.rebuilds = 0
        self._fold_all(stop)

    @property
    def versions(self) -> dict[str, int]:
        return self.builder.versions

    def current(self) -> bool:
        """Whether no stream read moved since (one version query per stream)."""
        return all(self.store.stream_version(s) == v for s, v in self.versions.items())

    def update(self) -> bool:
        """Fold what the session's streams gained since; False when nothing did."""
        new = {s: self.store.read_stream(s, v + 1) for s, v in list(self.versions.items()) if self.store.stream_version(s) != v}
        new = {s: events for s, events in new.items() if events}
        if not new:
            return False
        try:
            self._extend(new)
        except _Rebuild:
            self._fold_all()
        return True

    def _fold_all(self, stop: threading.Event | None = None) -> None:
        self.rebuilds += 1
        with young_collections_only():  # tens of thousands of cycle-free objects
            self.builder = b = _Builder(self.store, {}, inherited=self.inherited, stop=stop)
            events = b.read_whole(self.stream)
            b.read(self.stream, events)
            b.collect_links(events, MAIN)
            self.main = _Conversation(b, path=MAIN, stream=self.stream)
            self.main.fold(events)
            self.tail: list[tuple[str, SubagentRun]] = []
            self._claim_rest()
            b.stop = None

    def _claim_rest(self) -> None:
        """The subagents no call claimed, after the conversation (in link order; not
        those only these subagents link to, as a full fold has not seen them)."""
        b = self.builder
        self.tail += [(key, b.run_of(key, None)) for key in self._unclaimed() if key not in b.claimed]
        self.items = self.main.items + [_unclaimed_item(run) for _, run in self.tail] if self.tail else self.main.items

    def _extend(self, new: dict[str, list[RecordedEvent]]) -> None:
        b = self.builder
        for stream in new:
            if len(b.conversations.get(stream, ())) != 1:
                raise _Rebuild
        self._link(new.get(self.stream, []))
        tail = [b.conversations[run.stream][0] for _, run in self.tail if run.stream]
        for conversation in [self.main, *tail]:
            self._extend_conversation(conversation, new)
        order = {key: n for n, key in enumerate(b.links)}
        if self.tail and any(order[key] < order[self.tail[-1][0]] for key in self._unclaimed()):
            raise _Rebuild
        self._claim_rest()

    def _unclaimed(self) -> list[str]:
        b = self.builder
        return [key for key in b.links if key not in b.claimed and key not in b.tail_links]

    def _extend_conversation(self, conversation: _Conversation, new: dict[str, list[RecordedEvent]]) -> None:
        """The conversation's new events after those of the subagents folded into it
        (each subagent's before the next: the order of a full fold)."""
        for child in list(conversation.children):
            self._extend_conversation(child, new)
        events = new.get(conversation.stream)
        if not events:
            return
        b = self.builder
        b.read(conversation.stream, events)
        if conversation is not self.main and any(_is_link(e) for e in events):
            raise _Rebuild
        b.moved = set()
        conversation.fold(events)
        b.check_moved(conversation.since, conversation.path)

    def _link(self, events: list[RecordedEvent]) -> None:
        """The subagent links among the session stream's new events: a full fold
        collects them before anything, so one may belong to a call folded already
        (its subagent is then folded in under it now), or must not touch anything
        folded so far."""
        b = self.builder
        starts = [e for e in events if e.type == "SubagentStarted"]
        dones = [e for e in events if e.type == "SubagentCompleted" and _ext(e.data).get("tool_use_id")]
        late: list[tuple[int, _Conversation, ToolCall, str]] = []
        for event in starts:
            key = _link_key(event.data)
            if key in b.links:
                if key in b.nested:
                    raise _Rebuild
                continue
            if b.touched(("link", key)) or (key.startswith("unlinked:") and b.touched(("unlinked", "*"))):
                sites = b.sites.get(key, [])
                if key.startswith("unlinked:") or len(sites) != 1 or sites[0][1].subagent is not None:
                    raise _Rebuild
                if b.touched(("claimed", key)) or b.touched(("sub", key)) or event.data.get("subsession_stream") in b.conversations:
                    raise _Rebuild
                conversation, call, clock = sites[0]
                late.append((clock, conversation, call, key))
            b.links[key] = event.data
        for event in dones:
            tool_use_id = _ext(event.data)["tool_use_id"]
            agent = str(event.data.get("agent_id", ""))
            if tool_use_id in b.nested_done or (b.touched(("done", tool_use_id)) and f"unlinked:{agent}" in b.links):
                raise _Rebuild
            b.completed[tool_use_id] = agent
        if b.nested:
            b.links = dict(sorted(b.links.items(), key=lambda kv: kv[0] in b.nested))
        for clock, conversation, call, key in sorted(late, key=lambda site: site[0]):
            b.moved = {(("sub", call.call_id), True)}
            call.subagent = b.run_of(key, conversation, clock)
            b.changed.append(call)
            b.check_moved(clock, conversation.children[-1].path)


def _is_link(event: RecordedEvent) -> bool:
    return event.type == "SubagentStarted" or (event.type == "SubagentCompleted" and bool(_ext(event.data).get("tool_use_id")))


def _link_key(data: dict[str, Any]) -> str:
    return str(_ext(data).get("tool_use_id") or f"unlinked:{data.get('agent_id', '')}")


def _unclaimed_item(run: SubagentRun) -> ChatItem:
    started = run.items[0].timestamp if run.items else ""
    call = ToolCall("", "Agent", {"description": run.description}, started, subagent=run)
    return ChatItem("tool", call.started, tool=call)


def read_chat(
    store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None
) -> tuple[list[ChatItem], dict[str, int]]:
    """``chat_items`` and the version each stream read for them had (stream → last
    version read, ``NO_STREAM`` for none): while those stand, the items are current."""
    model = ChatModel(store, session_id, inherited)
    return model.items, model.versions


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

    nested: set[str] = field(default_factory=set)
    """Link keys collected from subagent streams (a full fold has the session
    stream's first), and ``nested_done`` the tool_use_ids of their completions."""
    nested_done: set[str] = field(default_factory=set)
    tail_links: set[str] = field(default_factory=set)
    """Link keys first collected from the streams of unclaimed subagents."""
    conversations: dict[str, list[_Conversation]] = field(default_factory=dict)
    """Stream → the conversations folded from it."""
    sites: dict[str, list[tuple[_Conversation, ToolCall, int]]] = field(default_factory=dict)
    """call_id → where the call was folded and the clock after its link was looked up."""
    clock: int = 0
    tails: int = 0
    changed: list[ToolCall | ChatItem] = field(default_factory=list)
    """Calls and items changed after they were made (a result, an outcome, a late
    subagent), for what is built from the items (``trace``) to follow."""
    reads: dict[Key, list[tuple[int, tuple[Any, ...]]]] = field(default_factory=dict)
    writes: dict[Key, list[tuple[int, tuple[Any, ...]]]] = field(default_factory=dict)
    """Every read and write of shared state: (clock, conversation path), by key."""
    moved: set[tuple[Key, bool]] | None = None
    """While events are folded out of their full-fold order: the keys they touched."""
    stop: threading.Event | None = None
    """Set: the build under way gives up (``ChatModel``'s ``stop``)."""

    def check_stop(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise BuildStopped

    def read_whole(self, stream: str) -> list[RecordedEvent]:
        """Every event of ``stream``: one read, or while ``stop`` may end the build,
        pages of ``STOP_EVERY`` * 4 events with a look at it before each (reading
        40,000 events takes seconds on a busy machine)."""
        if self.stop is None:
            return self.store.read_stream(stream)
        events: list[RecordedEvent] = []
        while True:
            self.check_stop()
            page = self.store.read_stream(stream, events[-1].version + 1 if events else 0, limit=STOP_EVERY * 4)
            events += page
            if len(page) < STOP_EVERY * 4:
                return events

    def touch(self, path: tuple[Any, ...], key: Key, write: bool = False) -> None:
        self.clock += 1
        (self.writes if write else self.reads).setdefault(key, []).append((self.clock, path))
        if self.moved is not None:
            self.moved.add((key, write))

    def touched(self, key: Key) -> bool:
        return key in self.reads or key in self.writes

    def check_moved(self, since: int, subtree: tuple[Any, ...]) -> None:
        """Raise ``_Rebuild`` when what was folded out of order (``moved``, in place
        at clock ``since``, conversations under ``subtree``) shares a key with
        something another conversation folded after ``since``, one of them writing."""
        moved, self.moved = self.moved or set(), None
        for key, write in moved:
            for log in (self.writes, self.reads) if write else (self.writes,):
                entries = log.get(key, [])
                for _, path in entries[bisect_right(entries, since, key=lambda entry: entry[0]) :]:
                    if path[: len(subtree)] != subtree:
                        raise _Rebuild

    def raw_of(self, event: RecordedEvent) -> str | None:
        return event.metadata.get("raw") or self.raws.get(event.metadata.get("raw_ref", ""))

    def read(self, stream: str, events: list[RecordedEvent]) -> None:
        if events or stream not in self.versions:
            self.versions[stream] = events[-1].version if events else NO_STREAM

    def collect_links(self, events: list[RecordedEvent], path: tuple[Any, ...]) -> None:
        for event in events:
            if event.type == "SubagentStarted":
                key = _link_key(event.data)
                if key not in self.links and path != MAIN:
                    self.nested.add(key)
                    if path[0] == "tail":
                        self.tail_links.add(key)
                self.links.setdefault(key, event.data)
                self.touch(path, ("link", key), True)
                if key.startswith("unlinked:"):
                    self.touch(path, ("unlinked", "*"), True)
            elif event.type == "SubagentCompleted" and _ext(event.data).get("tool_use_id"):
                tool_use_id = _ext(event.data)["tool_use_id"]
                self.completed[tool_use_id] = str(event.data.get("agent_id", ""))
                if path != MAIN:
                    self.nested_done.add(tool_use_id)
                self.touch(path, ("done", tool_use_id), True)

    def link_for(self, call: ToolCall, path: tuple[Any, ...]) -> str | None:
        """The link key of the subagent ``call`` started: by its id (``meta.json``),
        else (2.0.x files beside the parent, inline sidechains) by the agent its
        result names or the prompt it was given."""
        self.touch(path, ("link", call.call_id))
        if call.call_id in self.links:
            return call.call_id
        if call.name not in AGENT_TOOLS:
            return None
        self.touch(path, ("done", call.call_id))
        agent = self.completed.get(call.call_id)
        if agent:
            self.touch(path, ("link", f"unlinked:{agent}"))
            if f"unlinked:{agent}" in self.links:
                return f"unlinked:{agent}"
        prompt = call.arguments.get("prompt")
        if prompt:
            self.touch(path, ("unlinked", "*"))
        for key, data in self.links.items():
            if key.startswith("unlinked:") and key not in self.claimed and prompt and data.get("prompt") == prompt:
                return key
        return None

    def run_of(self, key: str, parent: _Conversation | None, since: int | None = None) -> SubagentRun:
        """The subagent linked under ``key``, its stream read and folded (once), as a
        conversation under ``parent`` (None: after the session's, unclaimed), in
        place at clock ``since`` (now when None)."""
        if parent is None:
            path: tuple[Any, ...] = ("tail", self.tails)
            self.tails += 1
        else:
            path = (*parent.path, len(parent.children))
        self.claimed.add(key)
        self.touch(path, ("claimed", key), True)
        if key.startswith("unlinked:"):
            self.touch(path, ("unlinked", "*"), True)
        data = self.links[key]
        stream = data.get("subsession_stream", "")
        events = self.read_whole(stream) if stream else []
        if stream:
            self.read(stream, events)
        self.collect_links(events, path)
        conversation = _Conversation(self, path=path, stream=stream, since=self.clock if since is None else since)
        if stream:
            self.conversations.setdefault(stream, []).append(conversation)
        if parent is not None:
            parent.children.append(conversation)
        conversation.fold(events)
        return SubagentRun(
            agent_id=data.get("agent_id", ""),
            agent_type=data.get("agent_type", ""),
            description=_ext(data).get("description") or "",
            stream=stream,
            items=conversation.items,
        )


@dataclass
class _Conversation:
    """One stream being turned into items: its open tool calls by id, the
    subagents folded into it (``children``), its place in the fold (``path``,
    and ``since``, the clock at which a full fold starts it)."""

    builder: _Builder
    items: list[ChatItem] = field(default_factory=list)
    calls: dict[str, ToolCall] = field(default_factory=dict)
    path: tuple[Any, ...] = MAIN
    stream: str = ""
    since: int = 0
    children: list[_Conversation] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.path == MAIN and self.stream:
            self.builder.conversations.setdefault(self.stream, []).append(self)

    def fold(self, events: list[RecordedEvent]) -> None:
        b = self.builder
        for n, event in enumerate(events):
            if n % STOP_EVERY == 0:
                b.check_stop()
            raw = event.metadata.get("raw")
            if raw and ('"image"' in raw or '"document"' in raw):
                b.raws[event.id] = raw
            handler = _HANDLERS.get(event.type)
            if handler:
                handler(self, event)

    def touch(self, key: Key, write: bool = False) -> None:
        self.builder.touch(self.path, key, write)

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
        ref = _ext(data).get("request_ref", "")
        self.touch(("request", str(ref)))
        request = self.builder.requests.get(ref)
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
    if ext.get("command") == "/compact":
        _before_its_compaction(c.items)


def _before_its_compaction(items: list[ChatItem]) -> None:
    """Claude Code writes a ``/compact``'s boundary and summary before the command
    (and the caveat about local commands) that caused them: move the command, just
    appended, and its caveat in front of them, so the chat reads in the order it
    happened (the command's time is the earlier)."""
    caveat = end = len(items) - 1
    while caveat and items[caveat - 1].kind == "meta":
        caveat -= 1
    start = caveat
    while start and items[start - 1].kind in ("compaction", "compact_summary"):
        start -= 1
    compacted = items[start:caveat]
    if any(i.kind == "compaction" for i in compacted) and all(i.timestamp >= items[end].timestamp for i in compacted):
        items[start:] = items[caveat:] + compacted


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
            c.touch(("task", str(call.arguments.get("taskId"))))
            call.task_subject = b.tasks.get(str(call.arguments.get("taskId")), "")
        link = b.link_for(call, c.path)
        if link is not None:
            c.touch(("claimed", link))
            if link not in b.claimed:
                call.subagent = b.run_of(link, c)
        b.sites.setdefault(call.call_id, []).append((c, call, b.clock))
        c.calls[call.call_id] = call
        c.add_assistant("tool", event, tool=call)


def _tool_result(c: _Conversation, event: RecordedEvent) -> None:
    data = event.data
    call = c.calls.get(data.get("call_id", ""))
    if call is None or call.result is not None:
        c.add("tool_result", event, data.get("result", ""), call_id=data.get("call_id", ""))
        return
    c.builder.changed.append(call)
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
            c.touch(("task", str(task["id"])), True)
            c.builder.tasks[str(task["id"])] = str(task.get("subject", ""))


def _interrupt(c: _Conversation, event: RecordedEvent) -> None:
    data = event.data
    call = c.calls.get(data.get("request_id", ""))
    facts = {k: str(data[k]) for k in ("kind", "prompt", "outcome", "response") if data.get(k)}
    facts |= {k: str(v) for k, v in _ext(data).items() if k in ("decided_by", "denial_kind") and v}
    if call is not None:
        c.builder.changed.append(call)
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
        c.touch(("request", str(ext.get("request_ref", ""))), True)
        c.builder.requests[str(ext.get("request_ref", ""))] = {k: v for k, v in facts.items() if v not in (None, "")}


def _subagent_done(c: _Conversation, event: RecordedEvent) -> None:
    ext = _ext(event.data)
    call = c.calls.get(ext.get("tool_use_id", ""))
    c.touch(("sub", str(ext.get("tool_use_id", ""))))
    if call is not None and call.subagent is not None:
        c.builder.changed.append(call)
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
    c.builder.changed.append(notice)
    if notice is not None:
        call_item = next((i.id for i in c.items if call is not None and i.tool is call), "")
        notice.detail.update(call_id=ext.get("tool_use_id", ""), call_item=call_item,
                             agent_id=event.data.get("agent_id", ""), status=event.data.get("outcome", ""),
                             result=event.data.get("summary", ""))
    if call is not None:
        c.builder.changed.append(call)
        call.background = (call.background or {}) | {
            "status": event.data.get("outcome", ""),
            "result": event.data.get("summary", ""),
            "client_reported": subagent_client_reported(ext),
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


def render_chat(session_id: str, items: list[ChatItem], start: int = 0, limit: int = 200,
                subagents: Subagents = NO_SUBAGENTS) -> Markup:
    """Sanitised HTML for at most ``limit`` items from ``start``, counting the
    subagent items nested in them (an item is never split, so a page holds at
    least one); when more remain, a placeholder that htmx swaps for the next
    page once it scrolls into view. ``subagents``: the session row's subagents
    by agent id (their time and tokens, shown on their Agent calls)."""
    start = max(0, start)
    end, weight = start, 0
    while end < len(items) and (end == start or weight + size_of(items[end]) <= limit):
        weight += size_of(items[end])
        end += 1
    page = _render_page(items[start:end], subagents)
    if end < len(items):
        url = f"/sessions/{quote(session_id, safe='')}/chat?start={end}"
        page += html(
            '<div class="chat-more" hx-get="{}" hx-trigger="revealed" hx-swap="outerHTML">Loading {} more…</div>',
            url,
            len(items) - end,
        )
    return page


def _render_page(items: list[ChatItem], subagents: Subagents) -> Markup:
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
                    Markup("").join(render_item(i) for i in run),  # counted there: no figures of this session
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
            parts.append(render_item(item, subagents))
    flush()
    return Markup("").join(parts)


def items_json(items: list[ChatItem], subagents: Subagents = NO_SUBAGENTS) -> list[dict[str, Any]]:
    """The items as JSON (``ChatItem.as_json``), each subagent run (``tool.subagent``,
    nested ones too) with its ``figures`` from the session row's ``subagents`` (by
    agent id): ``SUBAGENT_FIGURES``, the time and tokens the pages show, and its
    ``status`` and ``reason`` (``SessionSummary.subagent_status``), which a background
    call's ``background.status`` states too."""
    out = [item.as_json() for item in items]
    tools = [tool for item in out if (tool := item.get("tool") or {}).get("subagent")]
    while tools:
        tool = tools.pop()
        run = tool["subagent"]
        entry = subagents.get(run.get("agent_id", ""))
        if entry is not None:
            run["figures"] = {key: entry.get(key) for key in SUBAGENT_FIGURES}
            run["status"], run["reason"] = entry.get("status"), entry.get("reason")
            if tool.get("background"):
                tool["background"]["status"] = entry.get("status")
        tools.extend(sub for item in run.get("items") or [] if (sub := item.get("tool") or {}).get("subagent"))
    return out


def size_of(item: ChatItem) -> int:
    """The item and the subagent items nested in it, recursively."""
    run = item.tool.subagent if item.tool else None
    return 1 + (sum(size_of(child) for child in run.items) if run else 0)
