"""The one gate every eval read path goes through (pages, JSON, SSE progress,
reviews, the MCP judge tools): an eval is exactly as private as its session.

``session_visible`` is the server's check (a FastAPI dependency-shaped
function: it returns the session's row or raises 404); ``reviewer`` names the
person a review is recorded for; ``judge_may_read`` is the MCP server's check.
They delegate to the team server's one viewer (``server.access.viewer_of``,
the viewer its gate found for the request) and its rule (``access.viewer``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from kapacitor.eval.session import session_events
from kapacitor.store.base import EventStore


def session_visible(request: Request, session_id: str) -> dict[str, Any]:
    """The session's row when this request may see it; 404 otherwise (as for a
    session that does not exist, so a hidden session is not revealed)."""
    from kapacitor.server import queries
    from kapacitor.server.web import conn, not_found, viewer_of

    row = queries.session_row(conn(request), session_id, viewer_of(request))
    if row is None:
        raise not_found(f"session {session_id!r}")
    return row


def visible_sessions(request: Request) -> set[str] | None:
    """The sessions this request may see in aggregates (the eval overview);
    None means every session (an admin, or the local user without ``--auth``)."""
    from kapacitor.access.viewer import visible_clause
    from kapacitor.server.web import conn, viewer_of

    viewer = viewer_of(request)
    if viewer.admin:
        return None
    clause, params = visible_clause(viewer)
    return {sid for (sid,) in conn(request).execute(f"SELECT session_id FROM repository_sessions WHERE {clause}", params)}


def reviewer(request: Request, given: str = "") -> str:
    """Who is reviewing: the rule of every person-made event (``acting_person``):
    the signed-in user; without ``--auth`` the name the form gives, else this
    machine's identity (git email)."""
    from kapacitor.server.access import acting_person

    return acting_person(request, given.strip()[:200])


def judge_may_read(store: EventStore, session_id: str) -> bool:
    """Whether the judge's MCP server may serve ``session_id`` (it exists)."""
    return bool(session_events(store, session_id)[:1])
