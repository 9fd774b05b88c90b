"""What every page handler shares: the read connection and template rendering."""

from __future__ import annotations

import sqlite3
from datetime import UTC, tzinfo
from typing import Any
from urllib.parse import unquote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from kapacitor import times
from kapacitor.server import queries

TZ_COOKIE = "tz"
"""Set by ``static/app.js`` to the browser's zone, so pages show its times."""


def conn(request: Request) -> sqlite3.Connection:
    """This thread's connection to the store file (events and read models)."""
    return request.app.state.store.conn  # type: ignore[no-any-return]


def viewer_zone(request: Request) -> tzinfo:
    """The zone a page shows times in: ``?tz=Area/City``, else the browser's (the
    ``tz`` cookie), else UTC."""
    for name in (request.query_params.get("tz"), unquote(request.cookies.get(TZ_COOKIE) or "")):
        found = times.zone(name)
        if found is not None:
            return found
    return UTC


def api_zone(tz: str | None) -> tzinfo:
    """The zone a JSON answer uses: ``tz`` (``Area/City``), else UTC; 422 for an unknown zone."""
    if not tz:
        return UTC
    found = times.zone(tz)
    if found is None:
        raise HTTPException(status_code=422, detail=f"unknown time zone {tz!r}: use an IANA name such as Europe/Oslo or UTC")
    return found


def render_fragment(request: Request, template: str, **context: Any) -> str:
    """A template rendered on its own (a fragment), with the viewer's zone."""
    return request.app.state.templates.get_template(template).render(tz=viewer_zone(request), **context)  # type: ignore[no-any-return]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    context.setdefault("tz", viewer_zone(request))
    if "repositories" not in context:  # every page has the sidebar
        context["repositories"] = queries.repositories(conn(request))
    return templates.TemplateResponse(request, template, context, status_code=status_code)  # type: ignore[no-any-return]


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no such {what}")
