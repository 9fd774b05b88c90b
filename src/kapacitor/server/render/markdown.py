"""Assistant text as markdown: CommonMark plus tables, strikethrough, task lists
(``- [x]`` as ☑/☐) and footnotes, raw HTML disabled (it is shown as text), fenced code highlighted by Pygments, and the
result sanitised. markdown-it already refuses ``javascript:`` and ``data:``
links; the sanitiser's scheme allow-list is the second fence."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
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
