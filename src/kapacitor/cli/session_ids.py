"""A session named on the command line: its whole id, or a prefix of it that only
it has (the short id ``kapacitor sessions`` prints). Every command that takes a
session id (``eval``, ``recap``, ``errors``, ``validate-plan``, ``mcp judge``)
resolves it here, against the ``sessions`` read model."""

from __future__ import annotations

import click

from kapacitor.cli.common import AppContext
from kapacitor.cli.read_models import caught_up
from kapacitor.store.readdb import ReadDb


def resolve_session(conn: ReadDb, given: str) -> str:
    """The session id ``given`` names: itself when a session has that id, else the
    one session whose id starts with it. A one-line ``ClickException`` when no
    session or several match ("give more of it")."""
    if conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (given,)).fetchone():
        return given
    found = [str(sid) for (sid,) in conn.execute(
        "SELECT session_id FROM sessions WHERE substr(session_id, 1, ?) = ? ORDER BY session_id LIMIT 3",
        (len(given), given))]
    if not found:
        raise click.ClickException(f"no session {given!r} in the store (`kapacitor sessions` lists them)")
    if len(found) > 1:
        listed = ", ".join(found[:2]) + (", ..." if len(found) > 2 else "")
        raise click.ClickException(f"session id {given!r} is ambiguous ({listed}): give more of it")
    return found[0]


def resolved(app: AppContext, given: str) -> str:
    """``resolve_session`` on the read models caught up to the log's head: for a
    command that does not otherwise read them."""
    with caught_up(app) as conn:
        return resolve_session(conn, given)
