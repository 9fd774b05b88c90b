"""Long text (tool output, file contents) folded so that a page stays light.

The first ``FOLD_LINES`` lines are shown; the rest sits behind a "show all"
``<details>``. Nothing is rendered beyond ``HARD_CAP`` characters: a 10 MB
output shows its head, its folded part up to the cap, and says how much was cut
(the whole text stays in the event log and the session's JSON twin).
Carriage-return progress lines are collapsed to their last state first, and
plain output shows ANSI colours (``terminal``).
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

from kapacitor.server.render.sanitize import html
from kapacitor.server.render.terminal import ansi_html, collapse_progress, strip_ansi

FOLD_LINES = 40
HEAD_CAP = 8_000
"""Characters in the always-visible head (40 very long lines are still long)."""
HARD_CAP = 200_000
"""Characters rendered at most, head and folded part together."""

Highlighter = Callable[[str, int], Markup]
"""Renders a piece of text whose first line is line ``n`` (1-based)."""


def plain(text: str, _first_line: int = 1) -> Markup:
    """Output as a terminal showed it: ANSI colours as spans."""
    return html('<pre class="output">{}</pre>', ansi_html(text) if "\x1b" in text else text)


def render_folded(text: str, render: Highlighter = plain) -> Markup:
    """``text`` through ``render``, folded after ``FOLD_LINES`` lines and capped.
    Escape sequences reach only ``plain``; a highlighter gets them stripped."""
    text = collapse_progress(text)
    if render is not plain:
        text = strip_ansi(text)
    shown = text[:HARD_CAP]
    note = _cut_note(len(text) - len(shown), len(text))
    end = _head_end(shown)
    if end >= len(shown):
        return render(shown, 1) + note
    head, rest = shown[:end], shown[end:]
    summary = html(
        "show all ({:,} more lines, {} in all)", text.count("\n", end) + 1, size(len(text))
    )
    return render(head.removesuffix("\n"), 1) + html(
        '<details class="more"><summary>{}</summary>{}{}</details>',
        summary,
        render(rest, head.count("\n") + 1),
        note,
    )


def _head_end(text: str) -> int:
    """Where the visible head ends: after line ``FOLD_LINES``, at most ``HEAD_CAP``."""
    end = -1
    for _ in range(FOLD_LINES):
        end = text.find("\n", end + 1, HEAD_CAP)
        if end < 0:
            return min(len(text), HEAD_CAP)
    return end + 1


def _cut_note(cut: int, total: int) -> Markup:
    if not cut:
        return Markup("")
    return html(
        '<p class="cut">{} not shown (of {}): the whole output is in the session JSON.</p>',
        size(cut),
        size(total),
    )


def size(chars: int) -> str:
    """A human size for a number of characters."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if chars >= scale:
            return f"{chars / scale:.1f} {unit}"
    return f"{chars} chars"
