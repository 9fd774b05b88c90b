"""``kapacitor users``, ``tokens`` and ``repos``: who may sign in to a team server
(``serve --auth``) and what they see by default. Kept in the store's database.

One rule for their output: a sentence or a table for a person (times in the
machine's zone, named), and with ``--json`` the record as JSON (``print_json``:
times with their offset) for a script."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from kapacitor import times
from kapacitor.access import accounts
from kapacitor.access.accounts import VISIBILITIES, AccessError
from kapacitor.access.viewer import DEFAULT_VISIBILITY
from kapacitor.cli.common import AppContext, pass_app, print_json, read_db
from kapacitor.store.readdb import ReadDb

VISIBILITY = click.Choice(VISIBILITIES)
F = TypeVar("F", bound=Callable[..., Any])


def _json_option(keys: str) -> Callable[[F], F]:
    """Every command's ``--json`` flag (``as_json``), its help naming the keys."""
    return click.option("--json", "as_json", is_flag=True, help=f"Print JSON: {keys}.")


USER_KEYS = "name, email, admin, default_visibility, created_at"


@contextmanager
def _accounts(app: AppContext) -> Iterator[ReadDb]:
    """The store's access tables; an ``AccessError`` becomes a one-line error."""
    conn = accounts.open_accounts(read_db(app))
    try:
        yield conn
    except AccessError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()


def _table(rows: list[dict[str, object]], columns: tuple[str, ...]) -> None:
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row[c] is None else times.shown(row[c], None) if c.endswith("_at") else str(row[c]) for c in columns))
    Console().print(table)


@click.group("users")
def users_group() -> None:
    """Users of a team server: they sign in with their tokens (or OIDC), own the
    sessions their hooks send, and see what visibility allows."""


@users_group.command("add")
@click.argument("name")
@click.option("--email", default="", help="Their email (OIDC sign-in matches it).")
@click.option("--admin", is_flag=True, help="Admins see every session and may change any session's visibility.")
@click.option("--default-visibility", type=VISIBILITY, default=None, help="Who sees their new sessions (default private).")
@_json_option(f"the user's {USER_KEYS}")
@pass_app
def users_add(app: AppContext, name: str, email: str, admin: bool, default_visibility: str | None, as_json: bool) -> None:
    """Add user NAME."""
    with _accounts(app) as conn:
        user = accounts.add_user(conn, name, email, admin, default_visibility)
    if as_json:
        print_json(user.as_json())
        return
    click.echo(f"added user {user.name}{' (admin)' if user.admin else ''}; give them a token: kapacitor tokens create --user {user.name}")


@users_group.command("list")
@_json_option(f"an array of users: {USER_KEYS}")
@pass_app
def users_list(app: AppContext, as_json: bool) -> None:
    """List the users."""
    with _accounts(app) as conn:
        rows = [u.as_json() for u in accounts.list_users(conn)]
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("No users yet: kapacitor users add NAME --admin")
    else:
        _table(rows, ("name", "email", "admin", "default_visibility", "created_at"))


@users_group.command("set")
@click.argument("name")
@click.option("--default-visibility", type=VISIBILITY, default=None, help="Who sees their sessions unless a session or its repository says otherwise.")
@click.option("--email", default=None, help="A new email.")
@click.option("--admin/--no-admin", default=None, help="Make or unmake an admin.")
@_json_option(f"the user afterwards: {USER_KEYS}")
@pass_app
def users_set(app: AppContext, name: str, default_visibility: str | None, email: str | None, admin: bool | None,
              as_json: bool) -> None:
    """Change user NAME, and print what they are now."""
    with _accounts(app) as conn:
        user = accounts.set_user(conn, name, email=email, admin=admin, default_visibility=default_visibility)
    if as_json:
        print_json(user.as_json())
        return
    click.echo(f"user {user.name}: email {user.email or '(none)'}, {'an admin' if user.admin else 'not an admin'},"
               f" default visibility {user.default_visibility or DEFAULT_VISIBILITY}")


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: what hooks send (kapacitor setup --server URL --token-file F)
    and what a user pastes to sign in. Only a hash is stored."""


@tokens_group.command("create")
@click.option("--user", "user", required=True, help="The user the token signs in as.")
@_json_option("token, user, id")
@pass_app
def tokens_create(app: AppContext, user: str, as_json: bool) -> None:
    """Make a token for a user and print it, once: it cannot be shown again."""
    with _accounts(app) as conn:
        token_id, token = accounts.create_token(conn, user)
    if as_json:
        print_json({"token": token, "user": user, "id": token_id})
    else:
        click.echo(token)
        click.echo(f"token {token_id} for {user}: shown once, keep it safe (revoke: kapacitor tokens revoke {token_id})", err=True)


@tokens_group.command("list")
@_json_option("an array of tokens: id, user, created_at, revoked_at")
@pass_app
def tokens_list(app: AppContext, as_json: bool) -> None:
    """List tokens (ids, never the tokens)."""
    with _accounts(app) as conn:
        rows = accounts.list_tokens(conn)
    if as_json:
        print_json(rows)
    else:
        _table(rows, ("id", "user", "created_at", "revoked_at"))  # type: ignore[arg-type]


@tokens_group.command("revoke")
@click.argument("token_id", metavar="ID")
@_json_option("the token afterwards: id, user, created_at, revoked_at")
@pass_app
def tokens_revoke(app: AppContext, token_id: str, as_json: bool) -> None:
    """Revoke token ID: refused from the next request on, signed-in browsers included."""
    with _accounts(app) as conn:
        accounts.revoke_token(conn, token_id)
        token = next(t for t in accounts.list_tokens(conn) if t["id"] == token_id)
    if as_json:
        print_json(token)
    else:
        click.echo(f"revoked token {token_id} of {token['user']} at {times.shown(token['revoked_at'], None)}")


@click.group("repos")
def repos_group() -> None:
    """Repositories' access defaults."""


@repos_group.command("set")
@click.argument("key")
@click.option("--default-visibility", type=VISIBILITY, required=True, help="Who sees this repository's sessions unless a session says otherwise.")
@_json_option("key, default_visibility")
@pass_app
def repos_set(app: AppContext, key: str, default_visibility: str, as_json: bool) -> None:
    """Set the default visibility of repository KEY (owner/repo, or a directory)."""
    with _accounts(app) as conn:
        accounts.set_repository_visibility(conn, key, default_visibility)
    if as_json:
        print_json({"key": key, "default_visibility": default_visibility})
        return
    click.echo(f"sessions in {key} are {default_visibility} unless set otherwise")
