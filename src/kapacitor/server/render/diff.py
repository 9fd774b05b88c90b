"""File edits as unified diffs.

The client's structured result (``toolUseResult.structuredPatch``) carries the
real line numbers, so it is preferred; without it (a failed or denied edit, an
older transcript) the diff is computed from the tool input: Edit's
``old_string``/``new_string``, each of MultiEdit's ``edits``, Write's
``content`` (a new file, or a replaced one when the result has the original).
"""

from __future__ import annotations

import difflib
from typing import Any

from markupsafe import Markup

from kapacitor.server.render.code import highlight
from kapacitor.server.render.output import render_folded
from kapacitor.server.render.sanitize import html


def diff_text(tool_name: str, arguments: dict[str, Any], structured: Any) -> str:
    """The unified diff an Edit/MultiEdit/Write call made (or meant to make)."""
    path = str(arguments.get("file_path") or (structured or {}).get("filePath") or "file")
    if (
        isinstance(structured, dict)
        and isinstance(structured.get("structuredPatch"), list)
        and structured["structuredPatch"]
    ):
        return _header(path) + "".join(
            _hunk(h) for h in structured["structuredPatch"] if isinstance(h, dict)
        )
    if tool_name == "MultiEdit":
        pairs = [
            (e.get("old_string", ""), e.get("new_string", ""))
            for e in arguments.get("edits") or []
            if isinstance(e, dict)
        ]
    elif tool_name == "Write":
        original = structured.get("originalFile") if isinstance(structured, dict) else None
        pairs = [(original or "", arguments.get("content", ""))]
    else:
        pairs = [(arguments.get("old_string", ""), arguments.get("new_string", ""))]
    body = "".join(_difference(str(old), str(new)) for old, new in pairs)
    return _header(path) + body


def _header(path: str) -> str:
    return f"--- {path}\n+++ {path}\n"


def _hunk(hunk: dict[str, Any]) -> str:
    head = f"@@ -{hunk.get('oldStart', 0)},{hunk.get('oldLines', 0)} +{hunk.get('newStart', 0)},{hunk.get('newLines', 0)} @@\n"
    return head + "".join(f"{line}\n" for line in hunk.get("lines") or [])


def _difference(old: str, new: str) -> str:
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)
    return "".join(f"{line}\n" for line in lines if not line.startswith(("---", "+++")))


def render_diff(tool_name: str, arguments: dict[str, Any], structured: Any) -> Markup:
    """The diff, highlighted (added and removed lines coloured), folded when long."""
    text = diff_text(tool_name, arguments, structured)
    return html(
        '<div class="diff">{}</div>',
        render_folded(text.rstrip("\n"), lambda part, _n: highlight(part, language="diff")),
    )
