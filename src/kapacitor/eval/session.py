"""One session as a judge sees it: its conversation flattened into entries,
each with a short reference the judge cites and the chat and trace positions
a reviewer's link opens.

Built from ``server.chat.chat_items`` (calls paired with results, subagents
inlined under the calls that started them: the chat's rules, not a copy), and
from the raw events of the session's own streams, which give the set of event
ids evidence may cite. Nothing here reads a stream of another session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kapacitor.events import RecordedEvent, agent_session_stream
from kapacitor.server.chat import ChatItem, chat_items
from kapacitor.server.trace import EVENT_KINDS, PROMPT_KINDS
from kapacitor.store.base import EventStore

REF_LENGTH = 8
"""Hex digits of an event id shown to the judge (a full id is accepted too)."""


@dataclass
class Entry:
    """One thing that happened: ``ref`` is the event id (of the call's event for
    a tool call), ``agent`` is empty for the main agent, else ``type:agent_id``;
    ``chat_index`` is the top-level chat item holding it (the chat page must
    load that far), ``trace_node`` the id of the trace node to select."""

    ref: str
    kind: str
    agent: str
    chat_index: int
    trace_node: str
    item: ChatItem

    @property
    def short(self) -> str:
        return self.ref[:REF_LENGTH]


@dataclass
class SessionView:
    session_id: str
    entries: list[Entry]
    event_ids: set[str]
    result_of_call: dict[str, str] = field(default_factory=dict)
    """call id -> the id of its ToolResultReceived event."""

    def resolve(self, ref: str) -> str | None:
        """The full event id ``ref`` names (a full id or a unique prefix of at
        least ``REF_LENGTH`` digits), None when the session has no such event."""
        ref = str(ref).strip().strip("[]#").lower()
        if ref in self.event_ids:
            return ref
        if len(ref) < REF_LENGTH:
            return None
        found = [i for i in self.event_ids if i.startswith(ref)]
        return found[0] if len(found) == 1 else None

    def entry(self, event_id: str) -> Entry | None:
        """The entry an event id belongs to: its own, or, for a tool result, its call's."""
        for e in self.entries:
            if e.ref == event_id:
                return e
        for call_id, result_id in self.result_of_call.items():
            if result_id == event_id:
                return self.call(call_id)
        return None

    def call(self, call_id: str) -> Entry | None:
        return next((e for e in self.entries if e.item.tool and e.item.tool.call_id == call_id), None)

    def position(self, event_id: str) -> dict[str, Any]:
        """Where a cited event is shown: ``chat_index`` and ``anchor`` in the chat,
        ``trace_node`` in the trace (empty when the event is not shown)."""
        e = self.entry(event_id)
        if e is None:
            return {"chat_index": None, "anchor": "", "trace_node": ""}
        return {"chat_index": e.chat_index, "anchor": f"e-{e.ref}", "trace_node": e.trace_node}


def session_events(store: EventStore, session_id: str) -> list[RecordedEvent]:
    """Every event of the session's main stream and of the subagent streams it names."""
    streams, seen, out = [agent_session_stream(session_id)], set(), []
    while streams:
        stream = streams.pop(0)
        if stream in seen:
            continue
        seen.add(stream)
        for event in store.read_stream(stream):
            out.append(event)
            sub = event.data.get("subsession_stream") if event.type == "SubagentStarted" else None
            if sub and _belongs(sub, session_id):
                streams.append(sub)
    return out


def _belongs(stream: str, session_id: str) -> bool:
    return stream.startswith(f"AgentSubsession-{session_id}-")


def load(store: EventStore, session_id: str) -> SessionView:
    """The session's entries in conversation order; a session without events has none."""
    events = session_events(store, session_id)
    view = SessionView(session_id, [], {e.id for e in events})
    for event in events:
        if event.type == "ToolResultReceived" and event.data.get("call_id"):
            view.result_of_call.setdefault(str(event.data["call_id"]), event.id)
    for index, item in enumerate(chat_items(store, session_id) if events else []):
        _flatten(view.entries, item, "", index, session_id)
    return view


def _flatten(out: list[Entry], item: ChatItem, agent: str, index: int, prompt_node: str) -> str:
    """Append ``item`` (and a subagent's items after its call); returns the
    trace node the conversation's next turns hang under."""
    if item.kind in PROMPT_KINDS:
        prompt_node = item.id
    if item.kind == "tool" and item.tool is not None:
        node = item.tool.call_id
    elif item.kind in ("text", "thinking"):
        node = item.message_id or item.id
    elif item.kind in PROMPT_KINDS or item.kind in EVENT_KINDS:
        node = item.id
    else:
        node = prompt_node
    if item.id:
        out.append(Entry(item.id, item.kind, agent, index, node, item))
    run = item.tool.subagent if item.tool else None
    if run is not None:
        sub_agent = f"{run.agent_type or 'subagent'}:{run.agent_id}"
        sub_prompt = run.agent_id
        for child in run.items:
            sub_prompt = _flatten(out, child, sub_agent, index, sub_prompt)
    return prompt_node
