"""The compact trace: a session as text a judge reads in one prompt.

One line (or paragraph) per entry, each starting with the entry's short ref in
brackets, which the judge cites as evidence: user messages, assistant text and
thinking, tool calls with their arguments and results, subagent entries marked
with their agent. The plan (the last ``ExitPlanMode`` plan and the final todo
or task list) comes first. A tool result (or a tool call's arguments) longer
than ``threshold`` bytes becomes a marker naming the tool and the size; a judge
with session tools fetches the full text with ``tool_output``.
"""

from __future__ import annotations

import json
from typing import Any

from kapacitor.eval.session import Entry, SessionView

DEFAULT_THRESHOLD = 2_000
"""Bytes of a tool result shown in full; longer ones become a marker."""

LABELS = {"prompt": "USER", "text": "ASSISTANT", "thinking": "THINKING"}


def compact_trace(view: SessionView, threshold: int = DEFAULT_THRESHOLD) -> str:
    """The whole session: the plan, then every entry."""
    parts = [f"# Session {view.session_id}"]
    plan = plan_text(view)
    if plan:
        parts += ["## Plan", plan]
    parts.append("## Transcript")
    parts += [render_entry(e, threshold) for e in view.entries]
    return "\n".join(parts)


def render_entry(entry: Entry, threshold: int = DEFAULT_THRESHOLD) -> str:
    item = entry.item
    who = f" {{{entry.agent}}}" if entry.agent else ""
    head = f"[{entry.short}]{who}"
    if item.kind == "tool" and item.tool is not None:
        call = item.tool
        args = _clipped(json.dumps(call.arguments, ensure_ascii=False), threshold, f"arguments of {call.name}")
        lines = [f"{head} TOOL CALL {call.name} (call {call.call_id}): {args}"]
        if call.interrupt:
            lines.append(f"    interrupted: {json.dumps(call.interrupt, ensure_ascii=False)}")
        if call.result is None:
            lines.append("    (no result)")
        else:
            status = "ERROR" if call.is_error else "result"
            lines.append(f"    {status}: {_clipped(call.result, threshold, f'output of {call.name} (call {call.call_id})')}")
        return "\n".join(lines)
    if item.kind == "thinking" and item.detail.get("encrypted"):
        return f"{head} THINKING: (encrypted)"
    label = LABELS.get(item.kind, item.kind.upper().replace("_", " "))
    if item.kind in ("command",):
        text = " ".join(str(p) for p in (item.detail.get("command"), item.detail.get("args")) if p) or item.text
    else:
        text = item.text
    return f"{head} {label}: {text}"


def _clipped(text: str, threshold: int, what: str) -> str:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size <= threshold:
        return text
    return f"[{what}: {size:,} bytes, not shown]"


def plan_text(view: SessionView) -> str:
    """The last plan the agent presented (ExitPlanMode) and its final todo or task list."""
    plan, todos, tasks = "", None, {}
    for entry in view.entries:
        call = entry.item.tool
        if call is None or entry.agent:
            continue
        args: dict[str, Any] = call.arguments
        if call.name == "ExitPlanMode" and args.get("plan"):
            plan = str(args["plan"])
        elif call.name == "TodoWrite" and isinstance(args.get("todos"), list):
            todos = [t for t in args["todos"] if isinstance(t, dict)]
        elif call.name == "TaskCreate" and isinstance(call.structured, dict):
            task = call.structured.get("task")
            if isinstance(task, dict) and task.get("id"):
                tasks[str(task["id"])] = [str(task.get("subject", "")), "pending"]
        elif call.name == "TaskUpdate" and str(args.get("taskId")) in tasks and args.get("status"):
            tasks[str(args["taskId"])][1] = str(args["status"])
    lines = [plan] if plan else []
    if todos:
        lines.append("Final todo list:")
        lines += [f"- [{t.get('status', '?')}] {t.get('content', '')}" for t in todos]
    if tasks:
        lines.append("Final task list:")
        lines += [f"- #{tid} [{status}] {subject}" for tid, (subject, status) in tasks.items()]
    return "\n".join(lines)
