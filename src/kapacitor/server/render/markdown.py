"""Assistant text as markdown: CommonMark plus tables, strikethrough, task lists
(``- [x]`` as ☑/☐) and footnotes, raw HTML disabled (it is shown as text), fenced code highlighted by Pygments, and the
result sanitised. markdown-it already refuses ``javascript:`` and ``data:``
links; the sanitiser's scheme allow-list is the second fence."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from kapacitor.server.render.code import highlight
from kapacitor.server.render.sanitize import clean


def _fence(code: str, language: str, _attrs: str) -> str:
    if not language:
        return ""  # markdown-it then emits an escaped <pre><code> itself
    return str(highlight(code, language=language))


_MD = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _fence})
    .enable(["table", "strikethrough"])
    .use(tasklists_plugin)
    .use(footnote_plugin)
)
_CHECKBOX = re.compile(r'<input class="task-list-item-checkbox"( checked="checked")?[^>]*>')
"""The task-list plugin's checkbox (raw HTML in the text is escaped, so only the
plugin writes ``<input``); shown as a mark, since forms never pass the sanitiser."""


def render_markdown(text: str) -> Markup:
    """Untrusted markdown as safe HTML."""
    rendered = _CHECKBOX.sub(lambda m: '<span class="task-box">' + ("☑" if m.group(1) else "☐") + "</span>", _MD.render(text))
    return clean(rendered)


def plain_text(text: str, limit: int = 200) -> str:
    """Markdown as one line of its words, the syntax dropped, for a table cell
    (the stats tab's subagent results): blocks, list items and table rows joined
    by `` · ``, a row's cells by ``, ``, code kept as its text; cut at a word to at
    most ``limit`` characters, ``…`` marking the cut. Plain text: the page escapes it."""
    parts: list[str] = []
    row: list[str] | None = None
    for token in _MD.parse(text):
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            parts.append(", ".join(cell for cell in row if cell))
            row = None
        elif token.type == "inline":
            words = _words(token.children or [])
            if row is not None:
                row.append(words)
            else:
                parts.append(words)
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
    line = " · ".join(" ".join(part.split()) for part in parts if part.strip())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if line[limit - 1] != " " and " " in cut:  # a word cut in two: leave it out
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ·,") + "…"


def _words(children: list[Token]) -> str:
    """An inline token's text: its text and code spans, breaks as spaces."""
    return "".join(
        " " if child.type in ("softbreak", "hardbreak") else child.content
        for child in children
        if child.type in ("text", "code_inline", "softbreak", "hardbreak")
    )
