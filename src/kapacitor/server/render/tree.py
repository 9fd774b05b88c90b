"""The trace tree as HTML: nested ``<details>`` (collapsible without script),
one row per node with its tokens and duration, errors marked on the node and on
every ancestor of it. Each node's details (input, output, text) sit in an inert
``<template>`` beside it; trace.js shows the selected node's in the side panel.
Everything is escaped text: no transcript string becomes markup here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from kapacitor.server.render.items import seconds

if TYPE_CHECKING:
    from kapacitor.server.trace import TraceNode

OPEN_KINDS = {"session", "prompt", "turn", "subagent", "tool", "todo"}
"""Kinds whose children show at first; deeper levels are one click away."""


def render_tree(tree: TraceNode) -> Markup:
    return Markup(
        '<div class="trace" data-trace>'
        '<ul class="trace-tree" role="tree">{}</ul>'
        '<aside class="trace-detail" aria-live="polite"><p class="hint">Select a node to see its details.</p></aside>'
        "</div>"
    ).format(_node(tree))


def _node(node: TraceNode) -> Markup:
    states = [f"kind-{node.kind}"] + (["error"] if node.error else []) + (["has-error"] if node.errors > int(node.error) else [])
    row = Markup(
        '<span class="twisty"></span><span class="tkind">{}</span> <span class="tlabel">{}</span>'
        '<span class="tmeta">{}</span>'
    ).format(node.kind, node.label or "(empty)", _meta(node))
    attrs = Markup('class="tnode {}" tabindex="0" role="treeitem" data-id="{}"').format(" ".join(states), node.id)
    detail = Markup('<template class="tdetail">{}</template>').format(_detail(node))
    if not node.children:
        return Markup("<li><div {}>{}</div>{}</li>").format(attrs, row, detail)
    is_open = Markup(" open") if node.kind in OPEN_KINDS else Markup("")
    children = Markup("").join(_node(child) for child in node.children)
    return Markup('<li><details{}><summary {}>{}</summary><ul role="group">{}</ul></details>{}</li>').format(
        is_open, attrs, row, children, detail
    )


def _meta(node: TraceNode) -> Markup:
    parts = []
    total = sum(node.tokens.get(k, 0) for k in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    if total:
        parts.append(Markup('<span class="ttokens" title="tokens, descendants included">{} tok</span>').format(_short(total)))
    if node.duration_ms or (node.duration_ms == 0 and node.kind == "tool"):
        parts.append(Markup('<span class="tdur">{}</span>').format(seconds(node.duration_ms)))
    if node.errors:
        parts.append(Markup('<span class="terrors">{} error{}</span>').format(node.errors, "" if node.errors == 1 else "s"))
    return Markup("").join(parts)


def _short(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _detail(node: TraceNode) -> Markup:
    rows = [("kind", node.kind), ("id", node.id), ("model", node.model), ("started", node.started), ("ended", node.ended)]
    if node.duration_ms is not None:
        rows.append(("duration", seconds(node.duration_ms)))
    table = Markup("").join(Markup("<tr><th>{}</th><td>{}</td></tr>").format(k, v) for k, v in rows if v)
    tokens = Markup("").join(
        Markup("<tr><th>{}</th><td>{:,}</td></tr>").format(k.replace("_", " "), v) for k, v in node.tokens.items() if v
    )
    sections = Markup("").join(
        Markup('<h4>{}</h4><pre class="output">{}</pre>').format(name, _text(value))
        for name, value in node.detail.items()
        if value not in (None, "", {}, [])
    )
    return Markup('<div class="chat"><h3>{}</h3><table class="tfacts">{}{}</table>{}</div>').format(
        node.label or node.kind, table, tokens, sections
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
