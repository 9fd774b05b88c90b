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
from datetime import UTC, tzinfo
from typing import Any

from markupsafe import Markup

from kapacitor.cycles import young_collections_only
from kapacitor.projections.session_summary import TOKEN_FIELDS, Call, call_key, merged_call
from kapacitor.server.chat import ChatItem, ChatModel, ToolCall, chat_items, duration_ms
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
    _Grower(root).feed(_own(items))
    _roll_up(root)
    return root


def _own(items: list[ChatItem]) -> list[ChatItem]:
    return [i for i in items if not i.detail.get("inherited_from")]


class TraceModel:
    """The trace tree of a ``ChatModel``, grown as the chat grows.

    ``update()`` hangs the items each conversation gained since under the node
    it was growing (``_Grower`` keeps its prompt, task and turns), refreshes the
    nodes of calls changed since (a result, a denial, a subagent's outcome or late
    link: ``ChatModel``'s ``changed``), and rolls the sums up from the nodes that
    changed to the root only (each ancestor gets the difference), so its cost
    follows what arrived, not the session's length. The tree is built again when
    the chat was (``rebuilds``), when the chat has unclaimed subagents (they sit
    after the conversation), when a notification that was already hung changes,
    or when a todo call that moved the task cursor turns out to have failed.
    ``tree`` is then what ``trace_tree`` gives for the chat's items.
    """

    def __init__(self, chat: ChatModel):
        self.chat = chat
        self._build()

    def _build(self) -> None:
        self.rebuilds = self.chat.rebuilds
        self.seen = len(self.chat.builder.changed)
        self.tree = TraceNode("session", self.chat.session_id, id=self.chat.session_id)
        self.parent: dict[int, TraceNode] = {}
        self.of_call: dict[int, TraceNode] = {}
        self.todo_error: dict[int, bool] = {}
        self.notices: set[int] = set()
        self.auto_labels: set[int] = set()
        self.subagents: dict[str, TraceNode] = {}
        """Each subagent's node, by agent id (``time_subagents``)."""
        self.growers: list[_Grower] = []
        self.before: dict[int, tuple[TraceNode, dict[str, int], int]] | None = None
        """While updating: each node changed or added (id → the node, its tokens and
        errors before: none for a new one)."""
        with young_collections_only():  # a node per item: tens of thousands of cycle-free objects
            main = _Grower(self.tree, self, self.chat.items, own=True)
            main.catch_up()
            _roll_up(self.tree, self.auto_labels)

    def update(self) -> TraceNode:
        """The tree with what the chat gained since the last call."""
        chat = self.chat
        if chat.rebuilds != self.rebuilds or chat.tail:
            self._build()
            return self.tree
        changed, self.seen = chat.builder.changed[self.seen :], len(chat.builder.changed)
        self.before = {}
        for thing in changed:
            if isinstance(thing, ChatItem):
                if id(thing) in self.notices:
                    self._build()
                    return self.tree
                continue
            node = self.of_call.get(id(thing))
            if node is None:
                continue
            if self.todo_error.get(id(thing), thing.is_error) != thing.is_error:
                self._build()
                return self.tree
            self.touch(node)
            _fill_tool_node(node, thing, self)
        for grower in list(self.growers):
            grower.catch_up()
        self._settle()
        return self.tree

    def time_subagents(self, subagents: Mapping[str, Mapping[str, Any]]) -> None:
        """Span each subagent node as its subagent's entry in the session row says
        (``subagents`` by agent id: ``SessionSummary.subagent_figures``, from its first
        transcript record to its last, the time the chat and the stats show), not by
        its items alone, and give it the entry's ``status`` and ``reason``
        (``SessionSummary.subagent_status``; a background call's ``background.status``
        too). A node whose subagent the row lacks keeps its own span.

        Then every ancestor of a subagent node spans it as well: the Agent call's
        bar runs from the call to its result or to its subagent's last record,
        whichever is later (a subagent's bookkeeping may be written after the
        result), and so on up, so every bar lies within its parent's."""
        for agent_id, node in self.subagents.items():
            entry = subagents.get(agent_id)
            if not entry:
                continue
            if entry.get("started") and entry.get("ended"):
                node.started, node.ended = entry["started"], entry["ended"]
            status = {"status": entry.get("status"), "reason": entry.get("reason")}
            node.detail = node.detail | status
            call = self.parent.get(id(node))
            for holder in (node, call):
                if holder is not None and holder.detail.get("background"):
                    holder.detail = holder.detail | {"background": holder.detail["background"] | {"status": status["status"]}}
        for node in self.subagents.values():
            up = self.parent.get(id(node))
            while up is not None:
                if node.started and (not up.started or node.started < up.started):
                    up.started = node.started
                up.ended = max(up.ended, node.ended)
                up = self.parent.get(id(up))

    def added(self, child: TraceNode, parent: TraceNode) -> None:
        self.parent[id(child)] = parent
        if self.before is not None:
            self.before[id(child)] = (child, {}, 0)

    def touch(self, node: TraceNode) -> None:
        """``node`` is about to change: its sums as they were, and an automatic
        turn label dropped (a full build labels a turn after all its items)."""
        if id(node) in self.auto_labels:
            self.auto_labels.discard(id(node))
            node.label = ""
        if self.before is not None and id(node) not in self.before:
            self.before[id(node)] = (node, dict(node.tokens), node.errors)

    def _settle(self) -> None:
        """Roll up each changed node from its children (deepest first), and give
        its ancestors the difference, up to the first that is rolled up itself."""
        before, self.before = self.before or {}, None
        nodes = {key: entry[0] for key, entry in before.items()}

        def depth(key: int) -> int:
            n, node = 0, nodes[key]
            while id(node) in self.parent:
                node, n = self.parent[id(node)], n + 1
            return n

        for key in sorted(nodes, key=depth, reverse=True):
            node, tokens, errors = before[key]
            _total(node, self.auto_labels)
            delta = {name: value - tokens.get(name, 0) for name, value in node.tokens.items()}
            errors = node.errors - errors
            up = self.parent.get(id(node))
            while up is not None and id(up) not in nodes:
                if any(delta.values()):
                    up.tokens = {name: value + delta.get(name, 0) for name, value in up.tokens.items()}
                up.errors += errors
                if node.started and (not up.started or node.started < up.started):
                    up.started = node.started
                up.ended = max(up.ended, node.ended)
                up = self.parent.get(id(up))


class _Grower:
    """Hangs one conversation's items under ``parent``: prompts, the tasks in
    progress, their turns, the turns' tool calls, subagents below the calls that
    started them. Fed again, it goes on where it stopped (``TraceModel``)."""

    def __init__(self, parent: TraceNode, model: TraceModel | None = None, items: list[ChatItem] | None = None, own: bool = False):
        self.parent, self.model, self.own = parent, model, own
        self.items = items if items is not None else []
        self.cursor = _Cursor(self, parent)
        self.turns: dict[str, TraceNode] = {}
        self.fed = 0
        if model is not None:
            model.growers.append(self)

    def catch_up(self) -> None:
        """Hang the items the conversation gained since the last time."""
        new, self.fed = self.items[self.fed :], len(self.items)
        self.feed(_own(new) if self.own else new)

    def add(self, parent: TraceNode, child: TraceNode) -> TraceNode:
        parent.children.append(child)
        if self.model is not None:
            self.model.added(child, parent)
        return child

    def feed(self, items: list[ChatItem]) -> None:
        for item in items:
            if item.kind in PROMPT_KINDS:
                self.cursor = _Cursor(self, self.add(self.parent, _prompt_node(item)))
            elif item.kind in ("text", "thinking", "tool"):
                turn = self.turns.get(item.message_id) if item.message_id else None
                if turn is None:
                    turn = self.add(self.cursor.parent(), TraceNode("turn", "", id=item.message_id or item.id, model=item.model))
                    if item.message_id:
                        self.turns[item.message_id] = turn
                elif self.model is not None:
                    self.model.touch(turn)
                self._into_turn(turn, item)
                if item.tool is not None and item.tool.name in TODO_TOOLS:
                    if self.model is not None:
                        self.model.todo_error[id(item.tool)] = item.tool.is_error
                    if not item.tool.is_error:
                        self.cursor.follow(item.tool)
            elif item.kind in EVENT_KINDS or (item.kind == "notification" and item.detail.get("status")):
                self.add(self.cursor.parent(), _event_node(item))
            if item.kind == "notification" and self.model is not None:
                self.model.notices.add(id(item))

    def _into_turn(self, turn: TraceNode, item: ChatItem) -> None:
        if item.usage:
            key = call_key(item.usage)
            turn.calls[key] = merged_call(turn.calls.get(key), item.usage, None)
            asked = {k: item.usage[k] for k in ("requested_model", "effort", "thinking_tokens") if k in item.usage}
            if asked or item.detail.get("request"):
                turn.detail["request"] = item.detail.get("request", {}) | asked | {"served_model": item.model}
        turn.started = min(filter(None, (turn.started, item.timestamp)), default="")
        turn.ended = max(turn.ended, item.timestamp)
        if item.kind == "tool" and item.tool is not None:
            node = self.add(turn, TraceNode("tool", ""))
            _fill_tool_node(node, item.tool, self.model)
        elif item.text:
            key = "thinking" if item.kind == "thinking" else "text"
            turn.detail[key] = (turn.detail.get(key, "") + "\n\n" + item.text).strip()[:DETAIL_CAP]
        if not turn.label and item.kind == "text":
            turn.label = _first_line(item.text)


@dataclass
class _Cursor:
    """Where the next turn goes: under the prompt, or, while the agent's todo
    list (TodoWrite) or task list (TaskUpdate) has a task in progress, under a
    node for that task."""

    grower: _Grower
    prompt: TraceNode
    task: str = ""
    call_id: str = ""
    node: TraceNode | None = None

    def parent(self) -> TraceNode:
        if not self.task:
            return self.prompt
        if self.node is None:
            self.node = self.grower.add(self.prompt, TraceNode("task", self.task, id=self.call_id))
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


def _fill_tool_node(node: TraceNode, call: ToolCall, model: TraceModel | None) -> None:
    """The node of a tool call, from the call as it stands (again when it changes):
    a subagent it started hangs below it, grown once and then fed as it grows."""
    denied = (call.interrupt or {}).get("outcome") == "denied"
    node.kind = "todo" if call.name in TODO_TOOLS else "tool"
    node.label = f"{call.name} {summary(call)}".strip()
    node.id = call.call_id
    node.started, node.ended = call.started, call.finished
    node.error = call.is_error or denied
    node.detail = (
        {
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
        | ({"background": call.background} if call.background else {})
    )
    node.call = call
    if model is not None:
        model.of_call[id(call)] = node
    run = call.subagent
    if run is None:
        return
    sub = node.children[0] if node.children else None
    if sub is None:
        sub = TraceNode("subagent", f"{run.agent_type or 'subagent'}: {run.description}".strip(), id=run.agent_id)
        grower = _Grower(sub, model, run.items)
        grower.add(node, sub)
        grower.catch_up()
        if model is not None:
            model.subagents[run.agent_id] = sub
    sub.detail = {
        "agent_id": run.agent_id,
        "agent_type": run.agent_type,
        "outcome": run.outcome,
    } | ({"background": call.background} if call.background else {})


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


def _roll_up(node: TraceNode, auto_labels: set[int] | None = None) -> None:
    """Tokens, errors and time spans of each node, its descendants included."""
    for child in node.children:
        _roll_up(child, auto_labels)
    _total(node, auto_labels)


def _total(node: TraceNode, auto_labels: set[int] | None = None) -> None:
    """One node's sums from its own calls and its children's sums; a turn without
    text is labelled by its calls (noted in ``auto_labels``)."""
    totals = dict.fromkeys(TOKEN_FIELDS, 0) | {"requests": 0}
    for call in node.calls.values():
        totals["requests"] += 1
        for name in TOKEN_FIELDS:
            totals[name] += call.usage.get(name, 0)
        node.model = node.model or call.model
    node.errors = int(node.error)
    for child in node.children:
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
        if auto_labels is not None:
            auto_labels.add(id(node))


def render_trace(tree: TraceNode, detail_url: str | None = None, children_url: str | None = None, tz: tzinfo = UTC) -> Markup:
    """The tree as nested, collapsible HTML with a details panel (see trace.js),
    times in ``tz``; a large tree's details are fetched from ``detail_url?node=ID``
    when selected, and what it has past its first nodes from ``children_url`` (``render.tree``)."""
    return render_tree(tree, detail_url, children_url, tz)


def render_node_detail(tree: TraceNode, node_id: str, tz: tzinfo = UTC) -> Markup | None:
    """One node's details panel (what ``detail_url`` answers), times in ``tz``; None if unknown."""
    return node_detail(tree, node_id, tz)


def render_trace_children(tree: TraceNode, path: str, skip: int, children_url: str) -> Markup | None:
    """Rows of a large tree past its first nodes (what ``children_url`` answers),
    None when no node has that ``path``."""
    return render_children(tree, path, skip, children_url)
