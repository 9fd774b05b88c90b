"""The one visibility gate for memory, search and agent tools.

A fact, a search hit, a recap or a transcript comes from a session, and is shown
only to a viewer who may see that session. Every read path of this package (the
Memory pages, their JSON, search hits, the MCP tools, recall at session start)
filters through ``visible_sessions``, so wiring the team server's viewer rule in
here covers all of them at once.

The viewer is the team server's (``kapacitor.access.viewer.Viewer``, set on
``request.state`` by its one gate) and the rule is its: this module only asks
it, for many sessions at once. ``None`` is the local user of a single-user store
(the CLI, the MCP server on this machine) and may see every session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from kapacitor.access import viewer as viewers
from kapacitor.store.readdb import ReadDb

Viewer = Any
"""Whoever asks: ``None`` for the local user (sees everything)."""

T = TypeVar("T")


def visible_sessions(conn: ReadDb, viewer: Viewer, session_ids: Iterable[str]) -> set[str]:
    """The subset of ``session_ids`` that ``viewer`` may see. An empty id (a fact a
    person typed in, with no source session) is always visible."""
    ids = set(session_ids)
    if viewer is None or getattr(viewer, "admin", False):
        return ids
    if not isinstance(viewer, viewers.Viewer):
        return {i for i in ids if not i}
    return {i for i in ids if not i} | set(viewers.visible_sessions(conn, viewer, [i for i in ids if i]))


def visible_clause(viewer: Viewer, session_col: str, key_col: str) -> tuple[str, list[Any]]:
    """``visible_sessions`` as SQL, for a query that filters its rows in the
    database (search ranks only what the viewer may see): (condition, params)
    true when ``viewer`` may see the session of a row joined to its
    ``repository_sessions`` row (``session_col`` and ``key_col`` name that row's
    columns; NULL when it has none, as in a LEFT JOIN: then false, as
    ``visible_sessions`` finds no row); ``""`` when they see all. The viewer's
    own rule (``access.viewer.visible_clause``), checked row by row, so a query
    that stops early checks only the rows it reads."""
    if viewer is None or getattr(viewer, "admin", False):
        return "", []
    if not isinstance(viewer, viewers.Viewer):
        return "0 = 1", []
    return viewers.visible_clause(viewer, session_col, key_col)


def visible(conn: ReadDb, viewer: Viewer, items: Sequence[T], session_of: Callable[[T], str]) -> list[T]:
    """``items`` whose source session ``viewer`` may see, in order."""
    allowed = visible_sessions(conn, viewer, (session_of(i) for i in items))
    return [i for i in items if session_of(i) in allowed]


def may_see(conn: ReadDb, viewer: Viewer, session_id: str) -> bool:
    return session_id in visible_sessions(conn, viewer, [session_id])
