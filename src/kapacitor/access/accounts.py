"""Users, API tokens and who owns each session, kept in the store's database.

These are access-control state, not history: ``kapacitor users``/``tokens``
change them and the server reads them on every request, so a revoked token is
refused at once (a projection would lag the log). Tokens are stored as SHA-256
hashes only: the token is printed once, at creation, and cannot be recovered.
A token is 32 random bytes, so a fast hash is as good as a slow one.

Visibility of a session: ``private`` (its owner and admins), ``org`` (every
signed-in user), ``public`` (anyone, read-only). A session's own setting wins,
then its repository's default, then its owner's default, then ``private``.
Every write here that changes what someone may see (a visibility, a default, an
owner, an admin, a revoked token, a copy) goes through
``access.changes.changing``, which logs it for the live hubs of every server on
the store (``tests/test_access_live.py`` walks the writes). Creating a token,
an email and the server's secrets change nobody's view.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kapacitor.access import changes
from kapacitor.access.viewer import ANONYMOUS, DEFAULT_VISIBILITY, Viewer
from kapacitor.store.base import utc_now
from kapacitor.store.readdb import ReadDb, migrate, open_read_db_at

VISIBILITIES = ("private", "org", "public")
TOKEN_PREFIX = "kpc_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


class AccessError(Exception):
    """A request about users or tokens that cannot be met (unknown user, bad name, ...)."""


def _a001_access(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE users (name TEXT PRIMARY KEY, email TEXT NOT NULL DEFAULT '',"
        " admin INTEGER NOT NULL DEFAULT 0, default_visibility TEXT, created_at TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE tokens (id TEXT PRIMARY KEY, user_name TEXT NOT NULL REFERENCES users (name),"
        " hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, revoked_at TEXT)"
    )
    conn.execute(
        "CREATE TABLE session_access (session_id TEXT PRIMARY KEY, owner TEXT NOT NULL DEFAULT '',"
        " visibility TEXT, changed_at TEXT NOT NULL)"
    )
    conn.execute("CREATE TABLE repository_access (key TEXT PRIMARY KEY, default_visibility TEXT NOT NULL)")
    conn.execute("CREATE TABLE server_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


MIGRATIONS = [_a001_access, changes._a002_access_changes, changes._a003_access_user_changes]


def ensure_schema(conn: ReadDb) -> None:
    """Create the access tables in the store file if they are missing."""
    migrate(conn, MIGRATIONS)


def open_accounts(target: Path | str | ReadDb) -> ReadDb:
    """The access tables of a store's database (a SQLite file or a store URL)."""
    conn = open_read_db_at(target)
    ensure_schema(conn)
    return conn


@dataclass(frozen=True)
class User:
    name: str
    email: str = ""
    admin: bool = False
    default_visibility: str | None = None
    created_at: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "admin": self.admin,
                "default_visibility": self.default_visibility or DEFAULT_VISIBILITY, "created_at": self.created_at}


OWN_UNSET = "NOT EXISTS (SELECT 1 FROM session_access sv WHERE sv.session_id = rs.session_id AND sv.visibility IS NOT NULL)"
"""SQL: the session ``rs`` has no visibility of its own, so a default decides it."""


def _following_owner_default(name: str) -> changes.Pick:
    """The sessions whose visibility is user ``name``'s default: theirs, with no
    visibility of their own and no repository default."""
    owned = "rs.session_id IN (SELECT session_id FROM session_access WHERE owner = ?)"
    no_repository_default = "NOT EXISTS (SELECT 1 FROM repository_access ra WHERE ra.key = rs.key)"
    return f"{owned} AND {OWN_UNSET} AND {no_repository_default}", (name,)


def check_visibility(value: str) -> str:
    if value not in VISIBILITIES:
        raise AccessError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {value!r}")
    return value


def add_user(conn: ReadDb, name: str, email: str = "", admin: bool = False,
             default_visibility: str | None = None) -> User:
    if not _NAME.match(name):
        raise AccessError(f"invalid user name {name!r}: letters, digits and . _ @ + - (at most 64)")
    if default_visibility is not None:
        check_visibility(default_visibility)
    if get_user(conn, name) is not None:
        raise AccessError(f"user {name!r} already exists")
    with changes.changing(conn, _following_owner_default(name)):  # sessions a copy brought, owned by that name
        conn.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)", (name, email, int(admin), default_visibility, utc_now()))
    return get_user(conn, name)  # type: ignore[return-value]


def get_user(conn: ReadDb, name: str) -> User | None:
    row = conn.execute(
        "SELECT name, email, admin, default_visibility, created_at FROM users WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else User(row[0], row[1], bool(row[2]), row[3], row[4])


def user_by_email(conn: ReadDb, email: str) -> User | None:
    """The user with this email (case-insensitive), for OIDC sign-in."""
    row = conn.execute("SELECT name FROM users WHERE lower(email) = lower(?) AND email != ''", (email,)).fetchone()
    return None if row is None else get_user(conn, row[0])


def list_users(conn: ReadDb) -> list[User]:
    rows = conn.execute("SELECT name, email, admin, default_visibility, created_at FROM users ORDER BY name")
    return [User(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows]


def set_user(conn: ReadDb, name: str, *, email: str | None = None, admin: bool | None = None,
             default_visibility: str | None = None) -> User:
    user = get_user(conn, name)
    if user is None:
        raise AccessError(f"no user {name!r} (kapacitor users add {name})")
    if default_visibility is not None:
        check_visibility(default_visibility)
        with changes.changing(conn, _following_owner_default(name)):
            conn.execute("UPDATE users SET default_visibility = ? WHERE name = ?", (default_visibility, name))
    if email is not None:
        conn.execute("UPDATE users SET email = ? WHERE name = ?", (email, name))
    if admin is not None and admin != user.admin:  # everything they may see changes
        with changes.changing(conn, users=[name]):
            conn.execute("UPDATE users SET admin = ? WHERE name = ?", (int(admin), name))
    return get_user(conn, name)  # type: ignore[return-value]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(conn: ReadDb, user: str) -> tuple[str, str]:
    """A new token for ``user``: (token id, token). Only its hash is stored."""
    if get_user(conn, user) is None:
        raise AccessError(f"no user {user!r} (kapacitor users add {user})")
    token_id, token = secrets.token_hex(4), TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, NULL)", (token_id, user, token_hash(token), utc_now()))
    return token_id, token


def list_tokens(conn: ReadDb) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT id, user_name, created_at, revoked_at FROM tokens ORDER BY created_at, id")
    return [{"id": r[0], "user": r[1], "created_at": r[2], "revoked_at": r[3]} for r in rows]


def revoke_token(conn: ReadDb, token_id: str) -> None:
    """Revoke a token: refused from the next request on, and the live streams it
    signed in see only what anyone may see from then on (logged for the hubs)."""
    row = conn.execute("SELECT user_name, revoked_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
    if row is None or row[1] is not None:
        raise AccessError(f"token {token_id!r} is already revoked" if row else f"no token {token_id!r}")
    with changes.changing(conn, users=[row[0]]):
        conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (utc_now(), token_id))


def user_for_token(conn: ReadDb, token: str) -> tuple[User, str] | None:
    """The user a live (not revoked) token belongs to, and the token's id."""
    row = conn.execute(
        "SELECT user_name, id FROM tokens WHERE hash = ? AND revoked_at IS NULL", (token_hash(token),)
    ).fetchone()
    if row is None:
        return None
    user = get_user(conn, row[0])
    return None if user is None else (user, row[1])


def token_alive(conn: ReadDb, token_id: str) -> bool:
    return conn.execute("SELECT 1 FROM tokens WHERE id = ? AND revoked_at IS NULL", (token_id,)).fetchone() is not None


def as_now(conn: ReadDb, viewer: Viewer) -> Viewer:
    """``viewer`` as the access tables say now (for a live stream, signed in once):
    an admin or not, and anonymous once their user is gone or the token they
    signed in with is revoked (what ``server.access.identify`` would say)."""
    if not viewer.signed_in:
        return viewer
    user = get_user(conn, viewer.name)
    if user is None or (viewer.token and not token_alive(conn, viewer.token)):
        return ANONYMOUS
    return replace(viewer, admin=user.admin)


def claim_session(conn: ReadDb, session_id: str, owner: str) -> str:
    """Record ``owner`` as the session's owner unless it has one; returns the owner.
    Logged for the live hubs like any change of who may see it: ingest claims a
    session before its first events are stored, so there is nothing to announce
    yet (its events are, to whoever may see it by then), but an owner given to a
    session already listed is announced."""
    with changes.changing(conn, ("rs.session_id = ?", (session_id,))):
        conn.execute(
            "INSERT INTO session_access (session_id, owner, changed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner WHERE session_access.owner = ''",
            (session_id, owner, utc_now()),
        )
    return str(conn.execute("SELECT owner FROM session_access WHERE session_id = ?", (session_id,)).fetchone()[0])


def session_owner(conn: ReadDb, session_id: str) -> str:
    row = conn.execute("SELECT owner FROM session_access WHERE session_id = ?", (session_id,)).fetchone()
    return row[0] if row else ""


def set_session_visibility(conn: ReadDb, session_id: str, visibility: str) -> None:
    """Set a session's own visibility (logged for the live hubs: ``access.changes``)."""
    check_visibility(visibility)
    with changes.changing(conn, ("rs.session_id = ?", (session_id,))):
        conn.execute(
            "INSERT INTO session_access (session_id, visibility, changed_at) VALUES (?, ?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET visibility = excluded.visibility, changed_at = excluded.changed_at",
            (session_id, visibility, utc_now()),
        )


def set_repository_visibility(conn: ReadDb, key: str, visibility: str) -> None:
    """Set a repository's default visibility (logged for the live hubs, for its
    sessions without a visibility of their own)."""
    check_visibility(visibility)
    with changes.changing(conn, (f"rs.key = ? AND {OWN_UNSET}", (key,))):
        conn.execute(
            "INSERT INTO repository_access VALUES (?, ?) ON CONFLICT (key) DO UPDATE"
            " SET default_visibility = excluded.default_visibility",
            (key, visibility),
        )


COPIED = ("users", "tokens", "session_access", "repository_access")
"""The access tables ``copy_access`` carries from one store to another (not
``server_secrets``: each server's cookie key stays its own, so a cookie signed by
one server is not accepted by another)."""


def copy_access(source: ReadDb, target: ReadDb) -> dict[str, int]:
    """Carry users, token hashes, session owners and visibility and repository
    defaults from ``source``'s access tables into ``target``'s (for ``kapacitor
    store copy``), in one transaction of the target, logged for the live hubs of
    the servers running on it (``copy_changes``: the sessions it may open or close,
    the users whose token it revokes). What the target already decided wins: a
    user, token, owner, visibility or default it has is kept; what it lacks is
    filled in; a token revoked in the source is revoked in the target. Running it
    again changes nothing. Returns the rows added or changed per table (a source
    without access tables gives zeros)."""
    changed = dict.fromkeys(COPIED, 0)
    if not source.has_table("users"):
        return changed
    users = source.execute("SELECT name, email, admin, default_visibility, created_at FROM users").fetchall()
    tokens = source.execute("SELECT id, user_name, hash, created_at, revoked_at FROM tokens").fetchall()
    owners = source.execute("SELECT session_id, owner, visibility, changed_at FROM session_access").fetchall()
    defaults = source.execute("SELECT key, default_visibility FROM repository_access").fetchall()
    picks, revoked = copy_changes(target, users, tokens, owners, defaults)
    with changes.changing(target, *picks, users=revoked):
        for row in users:
            changed["users"] += target.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", row).rowcount
        for token_id, user, hashed, created_at, revoked_at in tokens:
            changed["tokens"] += target.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (token_id, user, hashed, created_at, revoked_at)).rowcount
            if revoked_at:
                changed["tokens"] += target.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL", (revoked_at, hashed)).rowcount
        for row in owners:
            changed["session_access"] += target.execute(
                "INSERT INTO session_access VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
                " owner = CASE WHEN session_access.owner = '' THEN excluded.owner ELSE session_access.owner END,"
                " visibility = coalesce(session_access.visibility, excluded.visibility)"
                " WHERE (session_access.owner = '' AND excluded.owner != '')"
                " OR (session_access.visibility IS NULL AND excluded.visibility IS NOT NULL)", row).rowcount
        for row in defaults:
            changed["repository_access"] += target.execute(
                "INSERT INTO repository_access VALUES (?, ?) ON CONFLICT DO NOTHING", row).rowcount
    return changed


def copy_changes(target: ReadDb, users: list[Any], tokens: list[Any], owners: list[Any],
                 defaults: list[Any]) -> tuple[list[changes.Pick], list[str]]:
    """What ``copy_access`` of these source rows changes in ``target``: picks of the
    sessions whose visibility may follow (an owner or visibility filled in, a
    repository default added, a user added who owns sessions there) and the users
    a revoked token belongs to. Rows ``copy_access`` leaves as they are count for
    nothing, so a copy run again announces nothing."""
    held: dict[str, tuple[str, str | None]] = {}
    for chunk in changes.in_chunks(row[0] for row in owners):
        held.update((sid, (owner, visibility)) for sid, owner, visibility in target.execute(
            f"SELECT session_id, owner, visibility FROM session_access WHERE session_id IN ({','.join('?' * len(chunk))})",
            chunk))
    filled = [sid for sid, owner, visibility, _ in owners
              if sid not in held or (not held[sid][0] and owner) or (held[sid][1] is None and visibility is not None)]
    known_users = {name for (name,) in target.execute("SELECT name FROM users")}
    known_keys = {key for (key,) in target.execute("SELECT key FROM repository_access")}
    live = {hashed: user for user, hashed in target.execute("SELECT user_name, hash FROM tokens WHERE revoked_at IS NULL")}
    picks = changes.listed(filled)
    picks += [(f"rs.key = ? AND {OWN_UNSET}", (key,)) for key, _ in defaults if key not in known_keys]
    picks += [_following_owner_default(row[0]) for row in users if row[0] not in known_users]
    return picks, sorted({live[hashed] for _, _, hashed, _, revoked_at in tokens if revoked_at and hashed in live})


def server_secret(conn: ReadDb, name: str) -> str:
    """A random secret kept in the store (e.g. the cookie signing key), made on first use,
    so restarts and several servers on one store agree on it."""
    conn.execute("INSERT INTO server_secrets VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, secrets.token_urlsafe(48)))
    return str(conn.execute("SELECT value FROM server_secrets WHERE name = ?", (name,)).fetchone()[0])
