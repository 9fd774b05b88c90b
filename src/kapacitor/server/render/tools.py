"""One renderer per tool, chosen by name from ``REGISTRY``; anything else gets
``generic`` (the input as pretty JSON, the output as text).

A renderer turns a ``ToolCall`` (input, paired result, error flag) into the body
of its chat item; ``children`` is the already rendered conversation of the
subagent the call started (empty for every tool but Agent/Task). Long text is
folded and capped by ``output.render_folded``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from kapacitor.server.format import span
from kapacitor.server.render.code import highlight
from kapacitor.server.render.diff import render_diff
from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.render.output import HARD_CAP, render_folded
from kapacitor.server.render.sanitize import html
from kapacitor.server.terms import TERMS

if TYPE_CHECKING:
    from kapacitor.server.chat import ToolCall

Renderer = Callable[["ToolCall", Markup], Markup]
NOTHING = Markup("")
SUMMARY_KEYS = (
    "command",
    "file_path",
    "notebook_path",
    "pattern",
    "url",
    "query",
    "subject",
    "description",
    "skill",
    "prompt",
)
_NUMBERED = re.compile(r"^\s*(\d+)\t", re.MULTILINE)


def summary(call: ToolCall) -> str:
    """A one-line description of the call for its header."""
    args = call.arguments
    if call.name == "TaskUpdate":
        return f"#{args.get('taskId', '?')} {_task_subject(call)} → {args.get('status', 'updated')}".replace(
            "  ", " "
        )
    if call.name == "TodoWrite":
        todos = args.get("todos") or []
        done = sum(1 for t in todos if isinstance(t, dict) and t.get("status") == "completed")
        return f"{done}/{len(todos)} done"
    for key in SUMMARY_KEYS:
        value = args.get(key)
        if isinstance(value, str) and value.strip():
            line = value.strip().splitlines()[0]
            return line[:160] + ("…" if len(line) > 160 else "")
    return ""


def result_block(call: ToolCall) -> Markup:
    """The call's output: folded text, marked when it is an error."""
    if call.result is None:
        return Markup('<p class="pending">no result recorded</p>')
    css = "result error" if call.is_error else "result"
    return html('<div class="{}">{}</div>', css, render_folded(call.result))


def generic(call: ToolCall, _children: Markup) -> Markup:
    return generic_input(call.arguments) + result_block(call)


def bash(call: ToolCall, _children: Markup) -> Markup:
    command = str(call.arguments.get("command", ""))
    return html(
        '<div class="input command">{}</div>{}',
        render_folded(command, lambda part, _n: highlight(part, language="bash")),
        result_block(call),
    )


def read(call: ToolCall, _children: Markup) -> Markup:
    """A file excerpt, highlighted for its file type, with the file's line numbers."""
    path = str(call.arguments.get("file_path", ""))
    text = call.result or ""
    numbers = _NUMBERED.findall(text)
    if call.is_error or not numbers or len(numbers) < text.count("\n"):
        return result_block(call)
    code = _NUMBERED.sub("", text)
    first, last = int(numbers[0]), int(numbers[-1])
    return html(
        '<div class="result file">{}</div>',
        render_folded(
            code,
            lambda part, n: highlight(part, filename=path, first_line=first + n - 1, last_line=last),
        ),
    )


def file_edit(call: ToolCall, _children: Markup) -> Markup:
    diff = render_diff(call.name, call.arguments, call.structured)
    return diff + (result_block(call) if call.is_error or call.result is None else Markup(""))


def todo_write(call: ToolCall, _children: Markup) -> Markup:
    items = [t for t in call.arguments.get("todos") or [] if isinstance(t, dict)]
    return checklist(
        [(str(t.get("content", "")), str(t.get("status", ""))) for t in items]
    ) + _errors_only(call)


def task_create(call: ToolCall, _children: Markup) -> Markup:
    args = call.arguments
    description = html('<p class="task-description">{}</p>', args.get("description", ""))
    return checklist([(str(args.get("subject", "")), "pending")]) + description + _errors_only(call)


def task_update(call: ToolCall, _children: Markup) -> Markup:
    args = call.arguments
    changes = {k: v for k, v in args.items() if k != "taskId"}
    subject = _task_subject(call)
    label = f"Task #{args.get('taskId', '?')}" + (f": {subject}" if subject else "")
    return (
        checklist([(label, str(changes.get("status", "")))])
        + _details_of(changes)
        + _errors_only(call)
    )


def agent(call: ToolCall, children: Markup, figures: Mapping[str, Any] | None = None) -> Markup:
    """A subagent: where it stands and what it used (``figures``: its entry in the
    session's row, ``SessionSummary.subagent_figures``), its conversation inlined
    (which opens with its prompt), then its answer, folded as it repeats the
    conversation's end. Without a recorded conversation: the prompt it was given
    and the answer, open."""
    args = call.arguments
    kind = str(
        args.get("subagent_type") or (call.subagent.agent_type if call.subagent else "") or "agent"
    )
    head = html(
        '<div class="agent-head"><span class="agent-type">{}</span> {}</div>',
        kind,
        args.get("description", ""),
    )
    background = call.background or {}
    head += _subagent_line(call, figures)
    if background.get("result"):
        answer = html('<div class="result agent-answer">{}</div>', render_markdown(str(background["result"])[:HARD_CAP]))
    elif call.result is None or call.is_error:
        answer = result_block(call)
    else:
        answer = html(
            '<div class="result agent-answer">{}</div>', render_markdown(call.result[:HARD_CAP])
        )
    if children:
        run = html('<div class="subagent">{}</div>', children)
        if call.result is None:  # a subagent whose call is unknown: nothing came back
            return head + run
        return (
            head
            + run
            + html('<details class="answer"><summary>answer</summary>{}</details>', answer)
        )
    prompt = html(
        '<details class="agent-prompt"><summary>prompt</summary>{}</details>',
        render_markdown(str(args.get("prompt", ""))[:HARD_CAP]),
    )
    return head + prompt + answer


def _subagent_line(call: ToolCall, figures: Mapping[str, Any] | None) -> Markup:
    """Where the subagent stands (its row's ``status``, ``SessionSummary.subagent_status``,
    the reason on hover; a background one's linked to its notification; a
    synchronous one's only when not ``completed``: its answer says that), then its
    time and tokens as the trace and the stats count them. Nothing for a call with none."""
    background = call.background or {}
    status = (figures or {}).get("status") or background.get("status") or ("running" if background else "")
    word = html('<span class="agent-status status-{}" title="{}">{}</span>', status, (figures or {}).get("reason") or "", status)
    facts = [html("background · {}", word)] if background else [word] if status not in ("", "completed") else []
    if figures and figures.get("duration_seconds") is not None:
        facts.append(html('<span class="term" title="{}">{}</span>', TERMS["subagent_time"], span(figures["duration_seconds"])))
    if figures and figures.get("tokens"):
        facts.append(html('<span class="term" title="{}">{:,} tokens</span>', TERMS["subagent_tokens"], figures["tokens_total"]))
    if not facts:
        return NOTHING
    text = Markup(" · ").join(facts)
    if background.get("notification"):
        return html('<div class="agent-figures"><a href="#e-{}">{}</a></div>', background["notification"], text)
    return html('<div class="agent-figures">{}</div>', text)


def _task_subject(call: ToolCall) -> str:
    """The subject a TaskUpdate sets, else the one its task was created with."""
    return str(call.arguments.get("subject") or call.task_subject or "")


def checklist(entries: list[tuple[str, str]]) -> Markup:
    marks = {"completed": "☑", "in_progress": "◐", "deleted": "☒"}
    rows = Markup("").join(
        html(
            '<li class="todo todo-{}"><span class="mark">{}</span> {}</li>',
            status or "pending",
            marks.get(status, "☐"),
            text,
        )
        for text, status in entries
    )
    return html('<ul class="checklist">{}</ul>', rows)


def _details_of(changes: dict[str, Any]) -> Markup:
    rest = {k: v for k, v in changes.items() if k not in ("status", "subject")}
    return generic_input(rest) if rest else Markup("")


def generic_input(arguments: dict[str, Any]) -> Markup:
    """Tool input as pretty, highlighted JSON (folded when long)."""
    pretty = json.dumps(arguments, indent=2, ensure_ascii=False, default=str)
    return html(
        '<div class="input">{}</div>',
        render_folded(pretty, lambda part, _n: highlight(part, language="json")),
    )


def _errors_only(call: ToolCall) -> Markup:
    return result_block(call) if call.is_error else Markup("")


REGISTRY: dict[str, Renderer] = {
    "Bash": bash,
    "Read": read,
    "Edit": file_edit,
    "MultiEdit": file_edit,
    "Write": file_edit,
    "TodoWrite": todo_write,
    "TaskCreate": task_create,
    "TaskUpdate": task_update,
    "Agent": agent,
    "Task": agent,
}


def render_tool(call: ToolCall, children: Markup = NOTHING, figures: Mapping[str, Any] | None = None) -> Markup:
    """The body of a tool call's chat item, by the tool's renderer; an Agent/Task
    call's also shows its subagent's ``figures`` (see ``agent``)."""
    renderer = REGISTRY.get(call.name, generic)
    return agent(call, children, figures) if renderer is agent else renderer(call, children)
