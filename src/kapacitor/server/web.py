"""What every page handler shares: the read connection, the viewer, and template rendering."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from kapacitor.server import queries
from kapacitor.server.access import conn, csrf_token, not_found, viewer_of

__all__ = ["conn", "not_found", "render", "viewer_of"]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    viewer = viewer_of(request)
    if "repositories" not in context:  # every page has the sidebar
        context["repositories"] = queries.repositories(conn(request), viewer)
    context.update(viewer=viewer, csrf=csrf_token(request), auth=request.app.state.auth)
    return templates.TemplateResponse(request, template, context, status_code=status_code)  # type: ignore[no-any-return]
