"""A model API error as people read it.

The normalizer keeps the client's error as it came (``ApiErrorOccurred.error``):
a string, or its error object as JSON, whose ``message`` is often the API's
answer with the body's JSON after the status (``529 {"type":"error","error":
{"type":"overloaded_error","message":"Overloaded"}}``). ``readable`` gives the
line to show (``529 Overloaded (overloaded_error)``) and the raw text pretty-
printed, shown folded; text that is no such JSON is shown as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

_STATUS_BODY = re.compile(r"^\s*(?:API Error:\s*)?(\d{3})\s+(\{.*\})\s*$", re.DOTALL)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _from_body(message: str) -> str | None:
    """``529 {"error": {"type", "message"}}`` -> ``529 Overloaded (overloaded_error)``."""
    found = _STATUS_BODY.match(message)
    body = _json(found.group(2)) if found else None
    error = body.get("error") if isinstance(body, dict) else None
    if not (found and isinstance(error, dict) and error.get("message")):
        return None
    kind = f" ({error['type']})" if error.get("type") else ""
    return f"{found.group(1)} {error['message']}{kind}"


def readable(text: str) -> tuple[str, str]:
    """(the line to show, the raw error pretty-printed; ``""`` when ``text`` is that line)."""
    outer = _json(text) if text.lstrip().startswith("{") else None
    if isinstance(outer, dict):
        message = str(outer.get("message") or "")
        line = _from_body(message) or str(outer.get("formatted") or "") or message
        return (line, json.dumps(outer, indent=2, ensure_ascii=False)) if line else (text, "")
    line = _from_body(text)
    if line is None:
        return text, ""
    status, body = _STATUS_BODY.match(text).groups()  # type: ignore[union-attr]  (``_from_body`` matched it)
    return line, f"{status} {json.dumps(json.loads(body), indent=2, ensure_ascii=False)}"
