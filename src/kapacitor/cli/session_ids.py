"""A session named on the command line: its whole id, or a prefix of it that only
it has (the short id ``kapacitor sessions`` prints). Every command that takes a
session id (``eval``, ``recap``, ``errors``, ``validate-plan``, ``mcp judge``)
resolves it here, against the ``sessions`` read model.

The rule for anything a command line names (a session, a repository, a user):
naming what the store does not hold is an error, one line and exit 1, so a
misspelt name in a script or CI step fails instead of doing nothing every day;
a name the store holds with nothing to do for it (no new session to evaluate,
no hit) is not (exit 0). ``unknown_filter`` checks a repository and a user."""

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


def unknown_filter(conn: ReadDb, repo: str = "", user: str = "") -> None:
    """A one-line ``ClickException`` when ``repo`` (a repository or directory, as
    the timeline's filter takes it) or ``user`` is given and no session in the
    store has it (the ``repositories`` read model's ``key`` and ``user``)."""
    for column, value, what in (("key", repo, ""), ('"user"', user, "user ")):
        if value and not conn.execute(f"SELECT 1 FROM repository_sessions WHERE {column} = ? LIMIT 1", (value,)).fetchone():
            raise click.ClickException(f"no session of {what}{value!r} in the store"
                                       " (`kapacitor sessions --wide` lists repositories, directories and users)")


def resolved(app: AppContext, given: str) -> str:
    """``resolve_session`` on the read models caught up to the log's head: for a
    command that does not otherwise read them."""
    with caught_up(app) as conn:
        return resolve_session(conn, given)
