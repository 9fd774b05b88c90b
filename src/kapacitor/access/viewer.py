"""The viewer: who is reading, and the one rule for what they may see.

Every read path asks this module. ``visible_clause`` is the SQL the query layer
adds to any query over ``repository_sessions`` (the timeline's table, one row
per session with its repository ``key``); ``visible_sessions`` checks ids (the
live hub, a session's pages). An admin, and the local viewer of a server
without ``--auth`` (it listens on loopback only), see everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kapacitor.store.readdb import ReadDb

DEFAULT_VISIBILITY = "private"
"""A session's visibility when neither it, its repository nor its owner says."""


@dataclass(frozen=True)
class Viewer:
    """``name`` is empty for an anonymous viewer. ``csrf`` is the token a
    cookie-signed-in browser must send back with state-changing requests;
    ``token`` the id of the API token they signed in with ("" for none: OIDC),
    so that its revocation reaches a live stream they keep open."""

    name: str = ""
    admin: bool = False
    csrf: str = ""
    via_cookie: bool = False
    token: str = ""

    @property
    def signed_in(self) -> bool:
        return bool(self.name)

    def may_change(self, owner: str) -> bool:
        """May this viewer change the visibility of a session ``owner`` owns?"""
        return self.admin or (self.signed_in and owner == self.name)

    def may_see_session(self, conn: ReadDb, session_id: str) -> bool:
        """May this viewer see ``session_id`` (the rule every read path asks)?"""
        return self.admin or bool(visible_sessions(conn, self, [session_id]))


LOCAL = Viewer("local", admin=True)
"""Whoever reaches a server started without ``--auth``: this machine's user."""
ANONYMOUS = Viewer()


def effective_visibility_sql(session_col: str, key_col: str) -> str:
    """SQL for a session's visibility: its own, else its repository's default,
    else its owner's default, else ``private``."""
    return (
        f"coalesce((SELECT sa.visibility FROM session_access sa WHERE sa.session_id = {session_col}),"
        f" (SELECT ra.default_visibility FROM repository_access ra WHERE ra.key = {key_col}),"
        f" (SELECT u.default_visibility FROM session_access a JOIN users u ON u.name = a.owner"
        f"  WHERE a.session_id = {session_col}), '{DEFAULT_VISIBILITY}')"
    )


def may_see(viewer: Viewer, visibility: str, owner: str) -> tuple[str, list[Any]]:
    """(SQL condition, params) true when ``viewer`` may see a session whose effective
    visibility is the SQL ``visibility`` and whose owner is the SQL ``owner``; ``""``
    when they see all. The rule itself: admins see all, anyone public sessions, a
    signed-in user org sessions and their own."""
    if viewer.admin:
        return "", []
    if not viewer.signed_in:
        return f"{visibility} = 'public'", []
    return f"({visibility} IN ('org', 'public') OR {owner} = ?)", [viewer.name]


def visible_clause(
    viewer: Viewer, session_col: str = "repository_sessions.session_id", key_col: str = "repository_sessions.key"
) -> tuple[str, list[Any]]:
    """(SQL condition, params) true for the rows ``viewer`` may see now; ``""`` when they see all.
    The columns are qualified: the subqueries have columns of the same names."""
    if viewer.admin:
        return "", []
    return may_see(viewer, effective_visibility_sql(session_col, key_col),
                   f"(SELECT so.owner FROM session_access so WHERE so.session_id = {session_col})")


def visible_sessions(conn: ReadDb, viewer: Viewer, session_ids: Iterable[str]) -> dict[str, str]:
    """The given sessions ``viewer`` may see, each with its repository key."""
    ids = list(dict.fromkeys(session_ids))
    clause, params = visible_clause(viewer)
    out: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        sql = f"SELECT session_id, key FROM repository_sessions WHERE session_id IN ({','.join('?' * len(chunk))})"
        if clause:
            sql += f" AND {clause}"
        out.update(conn.execute(sql, [*chunk, *params]))
    return out


def session_access(conn: ReadDb, session_id: str) -> dict[str, str]:
    """A session's ``owner`` ('' when none) and effective ``visibility``."""
    row = conn.execute(
        f"SELECT (SELECT sa.owner FROM session_access sa WHERE sa.session_id = rs.session_id),"
        f" {effective_visibility_sql('rs.session_id', 'rs.key')} FROM repository_sessions rs WHERE rs.session_id = ?",
        (session_id,),
    ).fetchone()
    return {"owner": (row[0] or "") if row else "", "visibility": row[1] if row else DEFAULT_VISIBILITY}
