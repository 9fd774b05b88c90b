"""What every page handler shares: the read connection and template rendering."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from kapacitor.server import queries


def conn(request: Request) -> sqlite3.Connection:
    """This thread's connection to the store file (events and read models)."""
    return request.app.state.store.conn  # type: ignore[no-any-return]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    if "repositories" not in context:  # every page has the sidebar
        context["repositories"] = queries.repositories(conn(request))
    return templates.TemplateResponse(request, template, context, status_code=status_code)  # type: ignore[no-any-return]


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no such {what}")
