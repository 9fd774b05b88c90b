"""One chat item as HTML, by kind: prompts as plain text (what was typed),
assistant text as markdown, thinking folded, tool calls through the tool
registry with their subagent's conversation nested inside, and errors,
compactions, interrupts and client notices as slim rows in place."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from markupsafe import Markup

from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.render.output import render_folded
from kapacitor.server.render.tools import render_tool, summary

if TYPE_CHECKING:
    from kapacitor.server.chat import ChatItem, ToolCall

_WRAPPED = re.compile(r"^\s*<([a-z][a-z0-9-]*)>(.*)</\1>\s*$", re.DOTALL)
SUBTLE = {
    "command_output": "command output",
    "bash_input": "shell command",
    "bash_output": "shell output",
    "notification": "notification",
    "hook_output": "hook output",
    "tool_result": "tool result",
}


def render_items(items: list[ChatItem]) -> Markup:
    return Markup("").join(render_item(item) for item in items)


def render_item(item: ChatItem) -> Markup:
    """The HTML of one item (each carries ``id="e-<event id>"`` to link to)."""
    return _RENDERERS.get(item.kind, _subtle)(item)


def _open(item: ChatItem, css: str, tag: str = "div") -> Markup:
    anchor = Markup(' id="e-{}"').format(item.id) if item.id else Markup("")
    return Markup('<{} class="item {}"{} data-kind="{}">').format(Markup(tag), css, anchor, item.kind)


def _prompt(item: ChatItem) -> Markup:
    images = item.detail.get("images") or []
    note = Markup('<div class="images">{} image(s) attached</div>').format(len(images)) if images else Markup("")
    who = "Subagent prompt" if item.kind == "subagent_prompt" else "User"
    return _open(item, f"user {item.kind}") + Markup('<div class="who">{}</div><div class="text">{}</div>{}</div>').format(
        who, item.text, note
    )


def _command(item: ChatItem) -> Markup:
    line = " ".join(p for p in (item.detail.get("command", ""), item.detail.get("args", "")) if p) or item.text
    return _open(item, "user command") + Markup('<code class="command-line">{}</code></div>').format(line)


def _subtle(item: ChatItem) -> Markup:
    match = _WRAPPED.match(item.text)
    text = match.group(2).strip("\n") if match else item.text
    label = SUBTLE.get(item.kind, item.kind.replace("_", " "))
    return _open(item, f"subtle {item.kind}") + Markup('<div class="label">{}</div>{}</div>').format(label, render_folded(text))


def _folded(item: ChatItem, label: str, body: Markup) -> Markup:
    return _open(item, f"folded {item.kind}", "details") + Markup("<summary>{}</summary>{}</details>").format(label, body)


def _meta(item: ChatItem) -> Markup:
    return _folded(item, "context added by the client", render_folded(item.text))


def _compact_summary(item: ChatItem) -> Markup:
    return _folded(item, "summary of the conversation so far", Markup('<div class="md">{}</div>').format(render_markdown(item.text)))


def _text(item: ChatItem) -> Markup:
    return _open(item, "assistant") + Markup('<div class="md">{}</div></div>').format(render_markdown(item.text))


def _thinking(item: ChatItem) -> Markup:
    if item.detail.get("encrypted") and not item.text:
        return _open(item, "thinking") + Markup('<span class="label">thinking (encrypted)</span></div>')
    return _folded(item, "thinking", Markup('<div class="md">{}</div>').format(render_markdown(item.text)))


def _tool(item: ChatItem) -> Markup:
    call = item.tool
    assert call is not None
    children = render_items(call.subagent.items) if call.subagent else Markup("")
    css = " ".join(["tool", f"tool-{re.sub(r'[^A-Za-z0-9_-]', '_', call.name)}"] + _states(call))
    head = Markup('<summary><span class="tool-name">{}</span> <span class="tool-summary">{}</span>{}</summary>').format(
        call.name, summary(call), _badges(call)
    )
    return _open(item, css, "details").replace(Markup("<details "), Markup("<details open "), 1) + head + Markup(
        '<div class="tool-body">{}</div></details>'
    ).format(render_tool(call, children))


def _states(call: ToolCall) -> list[str]:
    return [
        name
        for name, on in (("error", call.is_error), ("denied", _denied(call)), ("pending", call.result is None))
        if on
    ]


def _denied(call: ToolCall) -> bool:
    return bool(call.interrupt) and call.interrupt.get("outcome") == "denied"


def _badges(call: ToolCall) -> Markup:
    badges = []
    if _denied(call):
        badges.append(Markup('<span class="badge denied">permission denied</span>'))
    elif call.is_error:
        badges.append(Markup('<span class="badge error">error</span>'))
    elapsed = call.duration_ms
    if elapsed is not None:
        badges.append(Markup('<span class="badge time">{}</span>').format(seconds(elapsed)))
    return Markup(" ").join([Markup(""), *badges])


def seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def _api_error(item: ChatItem) -> Markup:
    retry = item.detail.get("retry_attempt")
    label = f"API error (retry {retry})" if retry else "API error"
    return _open(item, "api-error") + Markup('<span class="label">{}</span> {}</div>').format(label, item.text)


def _compaction(item: ChatItem) -> Markup:
    trigger = item.detail.get("trigger") or "auto"
    tokens = item.detail.get("pre_tokens") or 0
    return _open(item, "compaction") + Markup('<span class="label">context compacted</span> ({}, {:,} tokens before)</div>').format(
        trigger, tokens
    )


def _interrupt(item: ChatItem) -> Markup:
    outcome = item.detail.get("outcome") or item.detail.get("kind") or "interrupt"
    return _open(item, "interrupt") + Markup('<span class="label">{}</span> {}</div>').format(outcome.replace("_", " "), item.text)


def _notice(item: ChatItem) -> Markup:
    label = item.detail.get("level") or item.detail.get("subtype") or "notice"
    return _open(item, "notice") + Markup('<span class="label">{}</span> {}</div>').format(label, item.text)


_RENDERERS = {
    "prompt": _prompt,
    "subagent_prompt": _prompt,
    "command": _command,
    "meta": _meta,
    "compact_summary": _compact_summary,
    "text": _text,
    "thinking": _thinking,
    "tool": _tool,
    "api_error": _api_error,
    "compaction": _compaction,
    "interrupt": _interrupt,
    "notice": _notice,
}
