"""Images and documents in the chat: shown, never as base64 text.

The normalizer keeps what a block is (``type``, ``media_type``, ``bytes``) and
where it sits in its record (``block``, and ``item`` within a tool result); the
data stays in the record's raw line. ``attach_sources`` reads it from there:
a common raster image (PNG, JPEG, GIF, WebP) up to ``IMAGE_CAP`` bytes becomes a
``data:`` URI, checked to be base64; anything else (SVG can carry script, a PDF
is no image) is shown as its type and size.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup

from kapacitor.normalize.claude_code import describe_media
from kapacitor.server.render.sanitize import html

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
IMAGE_CAP = 5 * 1024 * 1024
"""Decoded bytes above which an image is described rather than shown."""
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def attach_sources(raw: str | None, media: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``media`` entries, each with ``src`` (a ``data:`` URI) when it can be shown."""
    if not media:
        return []
    content = _content(raw)
    out = []
    for entry in media:
        block = _block(content, entry)
        out.append(entry | ({"src": src} if (src := _data_uri(block, entry)) else {}))
    return out


def render_media(media: list[dict[str, Any]]) -> Markup:
    """Lazy ``<img>`` for what can be shown, a type-and-size label for the rest."""
    if not media:
        return Markup("")
    parts = []
    for entry in media:
        label = describe_media(entry)
        if entry.get("src"):
            parts.append(html('<img class="attached" loading="lazy" decoding="async" src="{}" alt="{}" title="{}">', entry["src"], label, label))
        else:
            parts.append(html('<span class="attached-label">{}</span>', label))
    return html('<div class="media">{}</div>', Markup("").join(parts))


def _content(raw: str | None) -> list[Any]:
    if not raw:
        return []
    try:
        record = json.loads(raw)
    except ValueError:
        return []
    content = (record.get("message") or {}).get("content") if isinstance(record, dict) else None
    return content if isinstance(content, list) else []


def _block(content: list[Any], entry: dict[str, Any]) -> dict[str, Any] | None:
    index = entry.get("block")
    if not isinstance(index, int) or not 0 <= index < len(content) or not isinstance(content[index], dict):
        return None
    block = content[index]
    item = entry.get("item")
    if item is None:
        return block
    inner = block.get("content")
    if isinstance(inner, list) and isinstance(item, int) and 0 <= item < len(inner) and isinstance(inner[item], dict):
        return inner[item]
    return None


def _data_uri(block: dict[str, Any] | None, entry: dict[str, Any]) -> str | None:
    if block is None or block.get("type") != "image":
        return None
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type", "base64") != "base64":
        return None
    media_type, data = source.get("media_type"), source.get("data")
    if media_type not in IMAGE_TYPES or not isinstance(data, str) or len(data) * 3 // 4 > IMAGE_CAP:
        return None
    if not _BASE64.fullmatch(data):
        return None
    return f"data:{media_type};base64,{data}"
