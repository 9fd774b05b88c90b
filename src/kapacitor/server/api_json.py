"""The JSON API's one serializer: every JSON answer writes its times the same way.

A time is ISO 8601 with the offset of the zone the request asks for
(``?tz=Area/City`` on any JSON route, default UTC: ``2026-07-20T03:08:00.000+00:00``,
``2026-07-19T20:08:00.000-07:00``), to the millisecond: the rule of
``kapacitor.json_times`` (``zoned``), which ``kapacitor sessions --json`` follows
too. ``ZonedJSONResponse`` is the app's default response class, so a route returns
plain data and its times come out in that one form; ``json_zone`` (an app-wide
dependency) reads the zone for it, and answers 422 for an unknown one.
Walking the answer costs about half of what writing it as JSON costs (a
20,000-item ``chat.json``: 0.5 to 0.67 of it); the pages render HTML and never
pay it.

``session_row`` gives a session of a list (``/sessions.json``, a user's or a
repository's sessions, ``/marked.json``) the keys the other shapes of a session
use too (docs/json-api.md).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, tzinfo
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse

from kapacitor.json_times import zoned
from kapacitor.server.web import api_zone

_zone: ContextVar[tzinfo] = ContextVar("json_zone", default=UTC)


async def json_zone(request: Request) -> None:
    """The zone of this request's JSON answer: ``?tz``, else UTC; 422 for an
    unknown zone. Not on a page (an HTML route): a page keeps standing and says
    a bad zone where its results would be (``form_query.lenient``). Async, so it
    runs in the request's own task, where the response is rendered."""
    if getattr(request.scope.get("route"), "response_class", None) is HTMLResponse:
        return
    _zone.set(api_zone(request.query_params.get("tz")))


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
