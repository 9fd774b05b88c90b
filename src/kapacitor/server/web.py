"""What every page handler shares: the read connection, the viewer, and template rendering."""

from __future__ import annotations

import time
from datetime import UTC, tzinfo
from typing import Any
from urllib.parse import unquote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from kapacitor import times
from kapacitor.projections.runner import checkpoints
from kapacitor.server import queries
from kapacitor.server.access import conn, csrf_token, may_open, not_found, sign_in_url, viewer_of
from kapacitor.server.live import stream_url

WRITE_VISIBLE_WITHIN = 2.0
"""Seconds a write waits for its read model to apply it (``read_your_writes``)."""
TZ_COOKIE = "tz"
"""Set by ``static/app.js`` to the browser's zone, so pages show its times."""

__all__ = ["conn", "not_found", "render", "viewer_of"]


def read_your_writes(request: Request, read_model: str) -> None:
    """Wait (at most ``WRITE_VISIBLE_WITHIN`` seconds) until ``read_model`` reaches the
    log's head, so the answer to a write (and the next read) already shows it."""
    head, deadline = request.app.state.store.head_position(), time.monotonic() + WRITE_VISIBLE_WITHIN
    while checkpoints(conn(request))[read_model].position < head and time.monotonic() < deadline:
        time.sleep(0.02)


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
    """A template rendered on its own (a fragment), with the viewer's zone, whether
    the server runs with ``--auth``, the CSRF token its forms carry and the
    links the viewer may follow (``linking``), as whole pages have them."""
    context = {"tz": viewer_zone(request), "auth": request.app.state.auth, "csrf": csrf_token(request)} | linking(request) | context
    return request.app.state.templates.get_template(template).render(**context)  # type: ignore[no-any-return]


def linking(request: Request) -> dict[str, Any]:
    """What templates ask before offering a link or a button: ``may_open(href,
    method="GET")``, the gate's own rule for this viewer (``access.may_open``),
    and ``sign_in_url``, the sign-in that comes back to this page."""
    return {"may_open": lambda href, method="GET": may_open(request, href, method), "sign_in_url": sign_in_url(request)}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    viewer = viewer_of(request)
    context.setdefault("tz", viewer_zone(request))
    if "repositories" not in context:  # every page has the sidebar
        context["repositories"] = queries.repositories(conn(request), viewer)
    context.update(viewer=viewer, csrf=csrf_token(request), auth=request.app.state.auth, **linking(request),
                   live_events=stream_url(request, (context.get("session") or {}).get("session_id", "")))
    return templates.TemplateResponse(request, template, context, status_code=status_code)  # type: ignore[no-any-return]
