"""JSON encoding for stored event data and metadata.

orjson is fast but refuses lone UTF-16 surrogates, which real transcripts do
contain (a tool output cut in the middle of an emoji, say). Those fall back to
the standard library, escaping them as ASCII so no character is ever lost.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
