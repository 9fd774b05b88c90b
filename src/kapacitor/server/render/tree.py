"""The trace tree as HTML: nested ``<details>`` (collapsible without script),
one row per node with its tokens, duration and a bar on the session's time axis
(a waterfall), errors marked on the node and on every ancestor of it. Each node's details (input, output, text) sit in an inert
``<template>`` beside it; trace.js shows the selected node's in the side panel.
A large tree (more than ``INLINE_NODES``) leaves the details out and names a
``detail_url`` instead, from which trace.js fetches a node's details when it is
selected; and it renders at most ``TREE_NODES`` nodes: past that, a parent's
remaining children are one placeholder that htmx swaps, once it scrolls into
view, for the next ``TREE_NODES`` of them from ``children_url?path=P&skip=N``
(``P`` the parent's path of child indexes from the root). A long session's trace
page stays small and costs the same however long the session. Everything is escaped text:
no transcript string becomes markup here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from kapacitor import times
from kapacitor.server.format import seconds
from kapacitor.server.render.output import size
from kapacitor.server.render.redacted import shown
from kapacitor.server.terms import TERMS

if TYPE_CHECKING:
    from kapacitor.server.trace import TraceNode

OPEN_KINDS = {"session", "prompt", "task", "turn", "subagent", "tool", "todo"}
"""Kinds whose children show at first; deeper levels are one click away."""
SECTION_CAP = 4_000
"""Characters of one detail section in the page (the JSON twin has more)."""
FACTS = ("kind", "id", "model", "started", "ended")
INLINE_NODES = 400
"""Up to this many nodes, every node's details are in the page."""
TREE_NODES = 2_000
"""Nodes rendered at most per page or fetch of a large tree."""


class _Budget:
    """What one render of the tree keeps track of: what is left to render of a
    large tree and where to fetch the rest (``url`` None: a small tree, rendered
    whole), the session's time axis its waterfall bars sit on, and the viewer's
    zone its times are shown in."""

    def __init__(self, url: str | None, tree: TraceNode, tz: tzinfo = UTC):
        self.url, self.left, self.tz = url, TREE_NODES, tz
        self.axis = _Axis.of(tree)


class _Axis:
    """The session's time axis, from the root's start to its end: each row's bar
    starts where the node started and is as long as it lasted, in per cent of
    the session (CSS widths, no script), so turns and tool calls read as a
    waterfall."""

    def __init__(self, start: datetime | None, ms: float):
        self.start, self.ms = start, ms

    @classmethod
    def of(cls, tree: TraceNode) -> _Axis:
        start, end = times.parse(tree.started), times.parse(tree.ended)
        if start is None or end is None:
            return cls(None, 0.0)
        return cls(start, max((end - start).total_seconds() * 1000, 1.0))

    def bar(self, node: TraceNode) -> str:
        start = times.parse(node.started)
        if self.start is None or start is None:
            return '<span class="tbar"></span>'
        end = max(times.parse(node.ended) or start, start)
        offset = (start - self.start).total_seconds() * 1000
        length = (end - start).total_seconds() * 1000
        return (
            f'<span class="tbar" title="from +{seconds(offset)}, {seconds(length)} of {seconds(self.ms)}">'
            f'<span style="left: {100 * offset / self.ms:.2f}%; width: {100 * length / self.ms:.2f}%"></span></span>'
        )


def render_tree(tree: TraceNode, detail_url: str | None = None, children_url: str | None = None, tz: tzinfo = UTC) -> Markup:
    """Written into one list of strings, every transcript value through ``escape``:
    a tree has thousands of nodes, and this is the page's whole cost. Times in ``tz``."""
    lazy = detail_url is not None and _more_than(tree, INLINE_NODES)
    source = f' data-detail-url="{escape(detail_url)}"' if lazy else ""
    budget = _Budget(children_url if lazy else None, tree, tz)
    out = [f'<div class="trace" data-trace{source}><div class="trace-main">{_scale(budget.axis)}<ul class="trace-tree" role="tree">']
    _node(tree, out, inline=not lazy, budget=budget, path="")
    out.append(
        '</ul></div><aside class="trace-detail" aria-live="polite">'
        '<p class="hint">Select a node to see its details.</p></aside></div>'
    )
    return Markup("".join(out))


def render_children(tree: TraceNode, path: str, skip: int, children_url: str) -> Markup | None:
    """The children of the node at ``path`` (child indexes from the root, dotted)
    from ``skip`` on, as ``<li>`` rows of a large tree (what ``children_url``
    answers); None when there is no such node."""
    node = tree
    for index in filter(None, path.split(".")):
        if not index.isdigit() or int(index) >= len(node.children):
            return None
        node = node.children[int(index)]
    out: list[str] = []
    _children(node, out, inline=False, budget=_Budget(children_url, tree), path=path, skip=skip)
    return Markup("".join(out))


def node_detail(tree: TraceNode, node_id: str, tz: tzinfo = UTC) -> Markup | None:
    """The details panel of the node with ``node_id`` (times in ``tz``), None when there is none."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.id == node_id:
            return Markup(_detail(node, tz))
        stack.extend(reversed(node.children))
    return None


def _more_than(tree: TraceNode, limit: int) -> bool:
    """Whether the tree has more than ``limit`` nodes (counted no further: a page
    of a huge tree costs its own nodes)."""
    stack, seen = [tree], 0
    while stack:
        seen += 1
        if seen > limit:
            return True
        stack.extend(stack.pop().children)
    return False


def _node(node: TraceNode, out: list[str], inline: bool, budget: _Budget, path: str) -> None:
    budget.left -= 1
    states = (
        f"kind-{escape(node.kind)}"
        + (" error" if node.error else "")
        + (" has-error" if node.errors > int(node.error) else "")
    )
    attrs = f'class="tnode {states}" tabindex="0" role="treeitem" data-id="{escape(node.id)}"'
    row = (
        f'<span class="twisty"></span><span class="tkind">{escape(node.kind)}</span> '
        f'<span class="tlabel">{shown(node.label or "(empty)")}</span><span class="tmeta">{_meta(node)}</span>'
        f"{budget.axis.bar(node)}"
    )
    if node.children:
        out.append(
            f'<li><details{" open" if node.kind in OPEN_KINDS else ""}><summary {attrs}>{row}</summary><ul role="group">'
        )
        _children(node, out, inline, budget, path, 0)
        out.append("</ul></details>")
    else:
        out.append(f"<li><div {attrs}>{row}</div>")
    out.append(f'<template class="tdetail">{_detail(node, budget.tz)}</template></li>' if inline else "</li>")


def _children(node: TraceNode, out: list[str], inline: bool, budget: _Budget, path: str, skip: int) -> None:
    """``node``'s children from ``skip`` on, until the budget runs out: then one
    placeholder for the rest."""
    for index in range(skip, len(node.children)):
        if budget.url is not None and budget.left <= 0:
            url = f"{budget.url}?path={path}&skip={index}"
            left = len(node.children) - index
            out.append(
                f'<li class="tmore" hx-get="{escape(url)}" hx-trigger="revealed" hx-swap="outerHTML">'
                f"Loading {left:,} more…</li>"
            )
            return
        _node(node.children[index], out, inline, budget, f"{path}.{index}" if path else str(index))


def _scale(axis: _Axis) -> str:
    """The waterfall's scale above the tree: the session's start and length."""
    if axis.start is None:
        return ""
    return (
        '<div class="taxis" aria-hidden="true"><span class="tbar-scale">'
        f"<span>0</span><span>{seconds(axis.ms)}</span></span></div>"
    )


def _meta(node: TraceNode) -> str:
    parts = []
    total = sum(
        node.tokens.get(k, 0)
        for k in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        )
    )
    if total:
        parts.append(
            f'<span class="ttokens" title="{escape(TERMS["tokens"])}; descendants included">{_short(total)} tokens</span>'
        )
    elapsed = node.duration_ms
    if elapsed or (elapsed == 0 and node.kind == "tool"):
        parts.append(f'<span class="tdur">{seconds(elapsed)}</span>')
    if node.errors:
        parts.append(
            f'<span class="terrors">{node.errors} error{"" if node.errors == 1 else "s"}</span>'
        )
    status = node.detail.get("status") if node.kind == "subagent" else None
    if status:  # SessionSummary.subagent_status, set by TraceModel.time_subagents
        reason = escape(node.detail.get("reason") or "")
        parts.append(f'<span class="tstatus status-{escape(status)}" title="{reason}">{escape(status)}</span>')
    return "".join(parts)


def _short(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _detail(node: TraceNode, tz: tzinfo) -> str:
    facts = [(name, times.precise(value, tz) if name in ("started", "ended") else value) for name in FACTS if (value := getattr(node, name))]
    if node.duration_ms is not None:
        facts.append(("duration", seconds(node.duration_ms)))
    facts += [
        (name.replace("_", " "), f"{value:,}") for name, value in node.tokens.items() if value
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{shown(v)}</td></tr>" for k, v in facts if v)
    sections = "".join(
        f'<h4>{escape(name)}</h4><pre class="output">{shown(_capped(value))}</pre>'
        for name, value in node.detail.items()
        if value not in (None, "", {}, [])
    )
    return f'<div class="tdetail-body"><h3>{shown(node.label or node.kind)}</h3><table class="tfacts">{table}</table>{sections}</div>'


def _capped(value: Any) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    )
    if len(text) <= SECTION_CAP:
        return text
    return f"{text[:SECTION_CAP]}\n… {size(len(text) - SECTION_CAP)} not shown (the chat JSON has all of it)"
