"""The trace: a session as a call tree, for seeing where time, tokens and errors went.

session → prompt → task in progress (when the agent keeps a todo or task list)
→ assistant turn (one API message, grouped by message id) → tool call
(TodoWrite/TaskCreate/TaskUpdate as ``todo`` nodes) → subagent → its own turns
and calls, recursively. Built from the chat items (``chat.chat_items``), so calls and
results are paired, and subagents linked, by the same rules as the chat.

Tokens: every assistant event carries its API call's usage in metadata
``$usage``; a call is counted once per (message id, request id) with
``session_summary.call_key``/``merged_call``, on the turn it belongs to. A
node's ``tokens`` are its own plus its descendants', so the root holds the
session's totals (subagents included) and every parent is the sum of its parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from kapacitor.projections.session_summary import TOKEN_FIELDS, Call, call_key, merged_call
from kapacitor.server.chat import ChatItem, ToolCall, chat_items, duration_ms
from kapacitor.server.render.tools import summary
from kapacitor.server.render.tree import node_detail, render_children, render_tree
from kapacitor.store.base import EventStore

PROMPT_KINDS = {"prompt", "command", "subagent_prompt"}
EVENT_KINDS = {"api_error", "compaction", "interrupt", "tool_result", "notice"}
TODO_TOOLS = {"TodoWrite", "TaskCreate", "TaskUpdate"}
DETAIL_CAP = 20_000
"""Characters of a node's text kept in the tree (the chat has the whole of it)."""


@dataclass
class TraceNode:
    """One node of the call tree. ``tokens`` and ``errors`` include descendants."""

    kind: str
    label: str
    id: str = ""
    started: str = ""
    ended: str = ""
    error: bool = False
    model: str = ""
    tokens: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    children: list[TraceNode] = field(default_factory=list)
    call: ToolCall | None = field(default=None, repr=False, compare=False)
    calls: dict[tuple[str, str], Call] = field(default_factory=dict, repr=False, compare=False)

    @property
    def duration_ms(self) -> float | None:
        return duration_ms(self.started, self.ended)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "id": self.id,
            "started": self.started,
            "ended": self.ended,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "errors": self.errors,
            "model": self.model,
            "tokens": self.tokens,
            "detail": self.detail,
            "children": [child.as_json() for child in self.children],
        }


def trace_tree(
    store: EventStore, session_id: str, items: list[ChatItem] | None = None, inherited: Mapping[int, str] | None = None
) -> TraceNode:
    """The session's call tree with tokens, durations and errors rolled up (from
    its chat ``items`` when the caller has them). Inherited history (``inherited``,
    as for ``chat_items``) is left out: it is the owning session's work, in that
    session's tree."""
    root = TraceNode("session", session_id, id=session_id)
    items = chat_items(store, session_id, inherited) if items is None else items
    _grow(root, [i for i in items if not i.detail.get("inherited_from")])
    _roll_up(root)
    return root


def _grow(parent: TraceNode, items: list[ChatItem]) -> None:
    """Hang a conversation's items under ``parent``: prompts, the tasks in
    progress, their turns, the turns' tool calls, subagents below the calls
    that started them."""
    cursor = _Cursor(parent)
    turns: dict[str, TraceNode] = {}
    for item in items:
        if item.kind in PROMPT_KINDS:
            cursor = _Cursor(_add(parent, _prompt_node(item)))
        elif item.kind in ("text", "thinking", "tool"):
            turn = turns.get(item.message_id) if item.message_id else None
            if turn is None:
                turn = TraceNode("turn", "", id=item.message_id or item.id, model=item.model)
                _add(cursor.parent(), turn)
                if item.message_id:
                    turns[item.message_id] = turn
            _into_turn(turn, item)
            if item.tool is not None and item.tool.name in TODO_TOOLS and not item.tool.is_error:
                cursor.follow(item.tool)
        elif item.kind in EVENT_KINDS or (item.kind == "notification" and item.detail.get("status")):
            _add(cursor.parent(), _event_node(item))


@dataclass
class _Cursor:
    """Where the next turn goes: under the prompt, or, while the agent's todo
    list (TodoWrite) or task list (TaskUpdate) has a task in progress, under a
    node for that task."""

    prompt: TraceNode
    task: str = ""
    call_id: str = ""
    node: TraceNode | None = None

    def parent(self) -> TraceNode:
        if not self.task:
            return self.prompt
        if self.node is None:
            self.node = _add(self.prompt, TraceNode("task", self.task, id=self.call_id))
        return self.node

    def follow(self, call: ToolCall) -> None:
        """Move to the task ``call`` puts in progress, or out of the one it ends."""
        args = call.arguments
        task = self.task
        if call.name == "TodoWrite":
            todos = [t for t in args.get("todos") or [] if isinstance(t, dict)]
            task = next(
                (str(t.get("content", "")) for t in todos if t.get("status") == "in_progress"), ""
            )
        elif call.name == "TaskUpdate":
            label = f"#{args.get('taskId', '?')} {call.task_subject}".strip()
            if args.get("status") == "in_progress":
                task = label
            elif args.get("status") in ("completed", "deleted") and label == self.task:
                task = ""
        if task != self.task:
            self.task, self.call_id, self.node = task, call.call_id, None


def _add(parent: TraceNode, child: TraceNode) -> TraceNode:
    parent.children.append(child)
    return child


def _prompt_node(item: ChatItem) -> TraceNode:
    text = (
        " ".join(p for p in (item.detail.get("command"), item.detail.get("args")) if p) or item.text
    )
    return TraceNode(
        "prompt",
        _first_line(text),
        id=item.id,
        started=item.timestamp,
        ended=item.timestamp,
        detail={"text": text[:DETAIL_CAP]},
    )


def _into_turn(turn: TraceNode, item: ChatItem) -> None:
    if item.usage:
        key = call_key(item.usage)
        turn.calls[key] = merged_call(turn.calls.get(key), item.usage, None)
        asked = {k: item.usage[k] for k in ("requested_model", "effort", "thinking_tokens") if k in item.usage}
        if asked or item.detail.get("request"):
            turn.detail["request"] = item.detail.get("request", {}) | asked | {"served_model": item.model}
    turn.started = min(filter(None, (turn.started, item.timestamp)), default="")
    turn.ended = max(turn.ended, item.timestamp)
    if item.kind == "tool" and item.tool is not None:
        turn.children.append(_tool_node(item.tool))
    elif item.text:
        key = "thinking" if item.kind == "thinking" else "text"
        turn.detail[key] = (turn.detail.get(key, "") + "\n\n" + item.text).strip()[:DETAIL_CAP]
    if not turn.label and item.kind == "text":
        turn.label = _first_line(item.text)


def _tool_node(call: ToolCall) -> TraceNode:
    denied = (call.interrupt or {}).get("outcome") == "denied"
    node = TraceNode(
        "todo" if call.name in TODO_TOOLS else "tool",
        f"{call.name} {summary(call)}".strip(),
        id=call.call_id,
        started=call.started,
        ended=call.finished,
        error=call.is_error or denied,
        detail={
            "tool": call.name,
            "input": call.arguments,
            "output": None if call.result is None else call.result[:DETAIL_CAP],
        }
        | (
            {"output_chars": len(call.result)}
            if call.result and len(call.result) > DETAIL_CAP
            else {}
        )
        | ({"interrupt": call.interrupt} if call.interrupt else {})
        | ({"background": call.background} if call.background else {}),
        call=call,
    )
    if call.subagent is not None:
        run = call.subagent
        sub = _add(
            node,
            TraceNode(
                "subagent",
                f"{run.agent_type or 'subagent'}: {run.description}".strip(),
                id=run.agent_id,
            ),
        )
        sub.detail = {
            "agent_id": run.agent_id,
            "agent_type": run.agent_type,
            "outcome": run.outcome,
        } | ({"background": call.background} if call.background else {})
        _grow(sub, run.items)
    return node


def _event_node(item: ChatItem) -> TraceNode:
    label = {
        "api_error": "API error",
        "compaction": "context compacted",
        "tool_result": "orphan tool result",
        "notification": f"background agent {item.detail.get('status', '')}",
    }.get(item.kind, item.kind)
    node = TraceNode(
        item.kind,
        f"{label}: {_first_line(item.text)}".rstrip(": "),
        id=item.id,
        started=item.timestamp,
        ended=item.timestamp,
    )
    node.error = item.kind == "api_error"
    node.detail = {"text": item.text[:DETAIL_CAP], **item.detail}
    return node


def _first_line(text: str, width: int = 120) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line[:width] + ("…" if len(line) > width else "")


def _roll_up(node: TraceNode) -> None:
    """Tokens, errors and time spans of each node, its descendants included."""
    totals = dict.fromkeys(TOKEN_FIELDS, 0) | {"requests": 0}
    for call in node.calls.values():
        totals["requests"] += 1
        for name in TOKEN_FIELDS:
            totals[name] += call.usage.get(name, 0)
        node.model = node.model or call.model
    node.errors = int(node.error)
    for child in node.children:
        _roll_up(child)
        if child.tokens["requests"]:  # no request, no tokens: most nodes
            for name, value in child.tokens.items():
                totals[name] += value
        node.errors += child.errors
        if child.started and (not node.started or child.started < node.started):
            node.started = child.started
        node.ended = max(node.ended, child.ended)
    node.tokens = totals
    if node.kind == "turn" and not node.label:
        node.label = ", ".join(child.label.split(" ")[0] for child in node.children) or "(no text)"


def render_trace(tree: TraceNode, detail_url: str | None = None, children_url: str | None = None) -> Markup:
    """The tree as nested, collapsible HTML with a details panel (see trace.js);
    a large tree's details are fetched from ``detail_url?node=ID`` when selected,
    and what it has past its first nodes from ``children_url`` (``render.tree``)."""
    return render_tree(tree, detail_url, children_url)


def render_node_detail(tree: TraceNode, node_id: str) -> Markup | None:
    """One node's details panel (what ``detail_url`` answers), None if unknown."""
    return node_detail(tree, node_id)


def render_trace_children(tree: TraceNode, path: str, skip: int, children_url: str) -> Markup | None:
    """Rows of a large tree past its first nodes (what ``children_url`` answers),
    None when no node has that ``path``."""
    return render_children(tree, path, skip, children_url)
