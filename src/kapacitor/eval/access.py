"""The one gate every eval read path goes through (pages, JSON, SSE progress,
reviews, the MCP judge tools): an eval is exactly as private as its session.

``session_visible`` is the server's check (a FastAPI dependency-shaped
function: it returns the session's row or raises 404); ``reviewer`` names the
person a review is recorded for; ``judge_may_read`` is the MCP server's check.
When the team server's viewer lands, these are the only functions to wire to it.
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
    from kapacitor.server.web import conn, not_found

    row = queries.session_row(conn(request), session_id)
    if row is None:
        raise not_found(f"session {session_id!r}")
    return row


def visible_sessions(request: Request) -> set[str] | None:
    """The sessions this request may see in aggregates (the eval overview);
    None means every session (no viewer yet: the dashboard is single-tenant)."""
    return None


def reviewer(request: Request, given: str = "") -> str:
    """Who is reviewing: the name the form gives, else ``local`` (no sign-in yet)."""
    return given.strip()[:200] or "local"


def judge_may_read(store: EventStore, session_id: str) -> bool:
    """Whether the judge's MCP server may serve ``session_id`` (it exists)."""
    return bool(session_events(store, session_id)[:1])
