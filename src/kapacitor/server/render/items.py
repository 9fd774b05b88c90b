"""One chat item as HTML, by kind: prompts as plain text (what was typed),
assistant text as markdown, thinking folded, tool calls through the tool
registry with their subagent's conversation nested inside, and errors,
compactions, interrupts and client notices as slim rows in place."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from kapacitor.server.format import seconds
from kapacitor.server.render.api_error import readable
from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.render.media import render_media
from kapacitor.server.render.output import render_folded
from kapacitor.server.render.redacted import badges
from kapacitor.server.render.sanitize import html
from kapacitor.server.render.tools import render_tool, summary
from kapacitor.server.terms import TERMS

if TYPE_CHECKING:
    from kapacitor.server.chat import ChatItem, ToolCall

SUBAGENT_CAP = 500
Subagents = Mapping[str, Mapping[str, Any]]
"""A session row's ``subagents`` entries by agent id (``sessions_pages.subagents_of``)."""
NO_SUBAGENTS: Subagents = {}
_WRAPPED = re.compile(r"^\s*<([a-z][a-z0-9-]*)>(.*)</\1>\s*$", re.DOTALL)
SUBTLE = {
    "command_output": "command output",
    "bash_input": "shell command",
    "bash_output": "shell output",
    "notification": "notification",
    "hook_output": "hook output",
    "tool_result": "tool result",
}


def render_items(items: list[ChatItem], subagents: Subagents = NO_SUBAGENTS) -> Markup:
    return Markup("").join(render_item(item, subagents) for item in items)


def render_item(item: ChatItem, subagents: Subagents = NO_SUBAGENTS) -> Markup:
    """The HTML of one item (each carries ``id="e-<event id>"`` to link to);
    masked secrets show as badges. ``subagents``: the session row's subagents by
    agent id (``SessionSummary.subagent_figures``), whose time and tokens an
    Agent call's box shows."""
    if item.kind == "tool":
        return badges(_tool(item, subagents))
    return badges(_RENDERERS.get(item.kind, _subtle)(item))


def _open(item: ChatItem, css: str, tag: str = "div") -> Markup:
    """The item's opening tag; ``tag`` is a trusted literal (``details open``)."""
    anchor = html(' id="e-{}"', item.id) if item.id else Markup("")
    return html('<{} class="chat-item {}"{} data-kind="{}">', Markup(tag), css, anchor, item.kind)


def _prompt(item: ChatItem) -> Markup:
    media = item.media or [dict(entry) for entry in item.detail.get("images") or []]
    who = "User (typed while a tool ran)" if item.detail.get("queued") else "User"
    return _open(item, f"user {item.kind}") + html(
        '<div class="who">{}</div>{}<div class="text">{}</div>{}</div>',
        who,
        _injected(item.detail.get("injected") or []),
        item.text,
        render_media(media),
    )


def _injected(blocks: list[dict[str, str]]) -> Markup:
    """Context the client or IDE put around the user's words, folded apart."""
    if not blocks:
        return Markup("")
    kinds = ", ".join(dict.fromkeys(b.get("kind", "").replace("_", " ").replace("-", " ") for b in blocks))
    body = Markup("").join(html('<pre class="output">{}</pre>', b.get("text", "")) for b in blocks)
    return html('<details class="injected"><summary>context added by the client: {}</summary>{}</details>', kinds, body)


def _subagent_prompt(item: ChatItem) -> Markup:
    return _folded(
        item, "prompt to the subagent", html('<div class="md">{}</div>', render_markdown(item.text))
    )


def _command(item: ChatItem) -> Markup:
    line = (
        " ".join(p for p in (item.detail.get("command", ""), item.detail.get("args", "")) if p)
        or item.text
    )
    refused = Markup(' <span class="badge denied">not run</span>') if item.detail.get("not_run") else Markup("")
    return _open(item, "user command") + html('<code class="command-line">{}</code>{}</div>', line, refused)


def _subtle(item: ChatItem) -> Markup:
    match = _WRAPPED.match(item.text)
    text = match.group(2).strip("\n") if match else item.text
    label = SUBTLE.get(item.kind, item.kind.replace("_", " "))
    return _open(item, f"subtle {item.kind}") + html(
        '<div class="label">{}</div>{}</div>', label, render_folded(text)
    )


def _notification(item: ChatItem) -> Markup:
    """A client notification; a background agent's completion names its outcome and
    links to the Agent call that launched it."""
    status = item.detail.get("status")
    if not status:
        return _subtle(item)
    target = item.detail.get("call_item")
    link = html(' · <a href="#e-{}">its Agent call</a>', target) if target else Markup("")
    return _open(item, "subtle notification task-notification") + html(
        '<div class="label">background agent {}{}</div>{}</div>', status, link, render_folded(item.detail.get("result") or item.text)
    )


def _folded(item: ChatItem, label: str, body: Markup) -> Markup:
    return _open(item, f"folded {item.kind}", "details") + html(
        "<summary>{}</summary>{}</details>", label, body
    )


def _meta(item: ChatItem) -> Markup:
    return _folded(item, "context added by the client", render_folded(item.text))


def _compact_summary(item: ChatItem) -> Markup:
    return _folded(
        item,
        "summary of the conversation so far",
        html('<div class="md">{}</div>', render_markdown(item.text)),
    )


def _text(item: ChatItem) -> Markup:
    if item.detail.get("synthetic"):
        return _open(item, "assistant synthetic") + html(
            '<span class="label">written by the client, not the model</span> {}</div>', item.text
        )
    return _open(item, "assistant") + html(
        '<div class="md">{}</div></div>', render_markdown(item.text)
    )


def _thinking(item: ChatItem) -> Markup:
    if item.detail.get("encrypted") and not item.text:
        return _open(item, "thinking") + Markup(
            '<span class="label">thinking (encrypted)</span></div>'
        )
    return _folded(item, "thinking", html('<div class="md">{}</div>', render_markdown(item.text)))


def _tool(item: ChatItem, subagents: Subagents) -> Markup:
    call = item.tool
    assert call is not None
    children = _subagent_items(call.subagent.items, subagents) if call.subagent else Markup("")
    css = " ".join(["tool", f"tool-{re.sub(r'[^A-Za-z0-9_-]', '_', call.name)}"] + _states(call))
    head = html(
        '<summary><span class="tool-name">{}</span> <span class="tool-summary">{}</span>{}</summary>',
        call.name,
        summary(call),
        _badges(call),
    )
    figures = subagents.get(call.subagent.agent_id) if call.subagent else None
    body = html('<div class="tool-body">{}{}</div></details>', render_tool(call, children, figures), render_media(call.media))
    return _open(item, css, "details open") + head + body


def _subagent_items(items: list[ChatItem], subagents: Subagents) -> Markup:
    """A subagent's conversation, its first ``SUBAGENT_CAP`` items: a page never
    holds more than one capped subagent run (``chat.render_chat`` pages by size)."""
    shown = render_items(items[:SUBAGENT_CAP], subagents)
    if len(items) <= SUBAGENT_CAP:
        return shown
    note = html(
        '<p class="cut">{:,} more items of this subagent not shown: they are in the session JSON.</p>',
        len(items) - SUBAGENT_CAP,
    )
    return shown + note


def _states(call: ToolCall) -> list[str]:
    return [
        name
        for name, on in (
            ("error", call.is_error),
            ("denied", _denied(call)),
            ("pending", call.result is None),
        )
        if on
    ]


def _denied(call: ToolCall) -> bool:
    return bool(call.interrupt) and call.interrupt.get("outcome") == "denied"


def _badges(call: ToolCall) -> Markup:
    badges = []
    if _denied(call):
        by = (call.interrupt or {}).get("decided_by")
        badges.append(html('<span class="badge denied">permission denied{}</span>', f" by {by}" if by else ""))
    elif call.is_error:
        badges.append(Markup('<span class="badge error">error</span>'))
    elapsed = call.duration_ms
    if elapsed is not None and (call.subagent or call.background):  # beside the subagent's own time: say which is which
        badges.append(html('<span class="badge time term" title="{}">call {}</span>', TERMS["agent_call_time"], seconds(elapsed)))
    elif elapsed is not None:
        badges.append(html('<span class="badge time">{}</span>', seconds(elapsed)))
    return Markup(" ").join([Markup(""), *badges])


def _api_error(item: ChatItem) -> Markup:
    retry = item.detail.get("retry_attempt")
    label = f"API error (retry {retry})" if retry else "API error"
    line, raw = readable(item.text)
    folded = html('<details class="raw-error"><summary>the error as recorded</summary><pre>{}</pre></details>', raw) if raw else Markup("")
    return _open(item, "api-error") + html('<span class="label">{}</span> {}{}</div>', label, line, folded)


def _compaction(item: ChatItem) -> Markup:
    trigger = item.detail.get("trigger") or "auto"
    tokens = item.detail.get("pre_tokens") or 0
    return _open(item, "compaction") + html(
        '<span class="label">context compacted</span> ({}, {:,} tokens before)</div>',
        trigger,
        tokens,
    )


def _interrupt(item: ChatItem) -> Markup:
    outcome = item.detail.get("outcome") or item.detail.get("kind") or "interrupt"
    return _open(item, "interrupt") + html(
        '<span class="label">{}</span> {}</div>', outcome.replace("_", " "), item.text
    )


def _notice(item: ChatItem) -> Markup:
    label = item.detail.get("level") or item.detail.get("subtype") or "notice"
    return _open(item, "notice") + html('<span class="label">{}</span> {}</div>', label, item.text)


_RENDERERS = {
    "prompt": _prompt,
    "subagent_prompt": _subagent_prompt,
    "command": _command,
    "meta": _meta,
    "compact_summary": _compact_summary,
    "text": _text,
    "thinking": _thinking,
    "api_error": _api_error,
    "compaction": _compaction,
    "interrupt": _interrupt,
    "notice": _notice,
    "notification": _notification,
}
