"""Assistant text as markdown: CommonMark plus tables and strikethrough, raw HTML
disabled (it is shown as text), fenced code highlighted by Pygments, and the
result sanitised. markdown-it already refuses ``javascript:`` and ``data:``
links; the sanitiser's scheme allow-list is the second fence."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup

from kapacitor.server.render.code import highlight
from kapacitor.server.render.sanitize import clean


def _fence(code: str, language: str, _attrs: str) -> str:
    if not language:
        return ""  # markdown-it then emits an escaped <pre><code> itself
    return str(highlight(code, language=language))


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _fence}).enable(
    ["table", "strikethrough"]
)


def render_markdown(text: str) -> Markup:
    """Untrusted markdown as safe HTML."""
    return clean(_MD.render(text))
