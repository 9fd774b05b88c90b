"""Redaction markers (``[REDACTED github-pat #3f9a1c]``) as badges, on every page.

Markers are plain text in the stored events (see ``kapacitor.normalize.redact``);
here, after an item is rendered and sanitised, each one becomes a badge naming
the kind, with the keyed hash that links two mentions of one secret. Pygments
may have split a marker inside highlighted code (``github</span>-<span>pat``):
the tags inside a marker are kept, in order, after the badge, so the HTML stays
balanced. Plain text shown outside the chat's items (a session's title in its
header and in list rows, trace labels and details, search hits) goes through
``shown``: escaped, cleaned as every rendered text is, the same badges.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from kapacitor.server.render.sanitize import clean

_TAGS = r"(?:</?span[^>]*>)*"
_MARKER = re.compile(
    r"\[" + _TAGS + r"REDACTED" + _TAGS + r" " + _TAGS
    + r"([a-z0-9-]+(?:" + _TAGS + r"[a-z0-9-]+)*)" + _TAGS + r" " + _TAGS + r"#" + _TAGS
    + r"([0-9a-f]{6})" + _TAGS + r"\]"
)
_TAG = re.compile(r"</?span[^>]*>")


def _badge(match: re.Match[str]) -> str:
    kind = _TAG.sub("", match.group(1))
    digest = match.group(2)
    tags = "".join(_TAG.findall(match.group(0)))
    title = f"A secret ({kind}) was masked before it was stored; #{digest} is the same for every mention of it"
    return f'<span class="badge redacted" title="{title}">secret: {kind} #{digest}</span>{tags}'


def badges(rendered: Markup) -> Markup:
    """``rendered`` (safe HTML) with every redaction marker shown as a badge."""
    if "REDACTED" not in rendered:
        return rendered
    return Markup(_MARKER.sub(_badge, str(rendered)))


def shown(text: object) -> Markup:
    """Plain ``text`` as HTML: escaped, with every redaction marker a badge
    (cleaned by ``sanitize.clean`` first, as a rendered chat item is)."""
    escaped = escape(text)
    if "[REDACTED " not in escaped:
        return escaped
    return badges(clean(str(escaped)))
