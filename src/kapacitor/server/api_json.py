"""The JSON API's one serializer: every JSON answer writes its times the same way.

A time is ISO 8601 with the offset of the zone the request asks for
(``?tz=Area/City`` on any JSON route, default UTC: ``2026-07-20T03:08:00.000+00:00``,
``2026-07-19T20:08:00.000-07:00``), to the millisecond, whichever read model or
event it came from (the store keeps ``...Z`` strings, some with microseconds).
``ZonedJSONResponse`` is the app's default response class, so a route returns
plain data and its times come out in that one form; ``json_zone`` (an app-wide
dependency) reads the zone for it, and answers 422 for an unknown one.

A time is a value under a key of ``TIME_KEYS`` (or ending in ``_at``) that reads
as a date and a time of day. The transcript's own data (a tool call's input or
output, an event's raw record: ``VERBATIM``) is passed on as recorded.
Walking the answer costs about half of what writing it as JSON costs (a
20,000-item ``chat.json``: 0.5 to 0.67 of it); the pages render HTML and never
pay it.

``session_row`` gives a session of a list (``/sessions.json``, a user's or a
repository's sessions, ``/marked.json``) the keys the other shapes of a session
use too (docs/json-api.md).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from datetime import UTC, tzinfo
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from kapacitor import times
from kapacitor.server.web import api_zone

TIME_KEYS = frozenset({"started", "ended", "finished", "timestamp", "last_activity", "last_used"})
"""Keys whose values are times (besides every ``*_at``)."""
VERBATIM = frozenset({"arguments", "structured", "input", "output", "raw", "detail", "content", "result", "usage", "tokens"})
"""Keys whose values are the transcript's data (a tool call's arguments and
structured result, a trace node's details, a raw record), passed on as
recorded, or token counts (no time in them: not walked)."""
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
_zone: ContextVar[tzinfo] = ContextVar("json_zone", default=UTC)


async def json_zone(request: Request) -> None:
    """The zone of this request's JSON answer: ``?tz``, else UTC; 422 for an
    unknown zone (on a page too: ``?tz=Mars/Olympus`` is a bad request). Async,
    so it runs in the request's own task, where the response is rendered."""
    _zone.set(api_zone(request.query_params.get("tz")))


def zoned(value: Any, tz: tzinfo) -> Any:
    """``value`` (JSON data) with every time in it as ISO 8601 in ``tz``: a new
    value, ``value`` left as it was (it may be a cached read model's)."""
    if isinstance(value, list):
        return [zoned(v, tz) if isinstance(v, dict | list) else v for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if isinstance(v, str):
            if (k in TIME_KEYS or k.endswith("_at")) and _TIME.match(v):
                v = _iso(v, tz)
        elif isinstance(v, dict | list) and k not in VERBATIM:
            v = zoned(v, tz)
        out[k] = v
    return out


def _iso(stamp: str, tz: tzinfo) -> str | None:
    """``times.iso``, with a shortcut for the common case: a stored time
    (``2026-07-20T03:08:00.000Z``) asked for in UTC."""
    if tz is UTC and len(stamp) == 24 and stamp[-1] == "Z":
        return stamp[:-1] + "+00:00"
    return times.iso(stamp, tz)


class ZonedJSONResponse(JSONResponse):
    """A JSON answer whose times are in the request's zone (``json_zone``)."""

    def render(self, content: Any) -> bytes:
        return super().render(zoned(content, _zone.get()))


def session_row(row: dict[str, Any]) -> dict[str, Any]:
    """A session of a list with the keys ``/sessions/{id}.json`` and
    ``kapacitor sessions --json`` use besides its own: ``repository`` (GitHub
    ``owner/repo``, else null) beside ``repo``/``repo_kind``, and ``tokens_total``
    (all four kinds, every model) beside ``tokens`` (the same number here; per
    model in a session's own answer)."""
    return row | {"repository": row["repo"] if row.get("repo_kind") == "github" else None, "tokens_total": row.get("tokens") or 0}
