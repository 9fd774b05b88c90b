"""The one visibility gate for memory, search and agent tools.

A fact, a search hit, a recap or a transcript comes from a session, and is shown
only to a viewer who may see that session. Every read path of this package (the
Memory pages, their JSON, search hits, the MCP tools, recall at session start)
filters through ``visible_sessions``, so wiring the team server's viewer rule in
here covers all of them at once.

Until the team server's viewer dependency lands, a viewer is ``None`` (the local
user of a single-user store, or a caller the server already authorised) and may
see every session.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

Viewer = Any
"""Whoever asks: ``None`` for the local user (sees everything)."""

T = TypeVar("T")


def visible_sessions(conn: sqlite3.Connection, viewer: Viewer, session_ids: Iterable[str]) -> set[str]:
    """The subset of ``session_ids`` that ``viewer`` may see. An empty id (a fact a
    person typed in, with no source session) is always visible."""
    ids = set(session_ids)
    if viewer is None:
        return ids
    rule = getattr(viewer, "may_see_session", None)
    if rule is None:
        return {i for i in ids if not i}
    return {i for i in ids if not i or rule(conn, i)}


def visible(conn: sqlite3.Connection, viewer: Viewer, items: Sequence[T], session_of: Callable[[T], str]) -> list[T]:
    """``items`` whose source session ``viewer`` may see, in order."""
    allowed = visible_sessions(conn, viewer, (session_of(i) for i in items))
    return [i for i in items if session_of(i) in allowed]


def may_see(conn: sqlite3.Connection, viewer: Viewer, session_id: str) -> bool:
    return session_id in visible_sessions(conn, viewer, [session_id])
