"""``kapacitor users``, ``tokens`` and ``repos``: who may sign in to a team server
(``serve --auth``) and what they see by default. Kept in the store's database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.table import Table

from kapacitor import times
from kapacitor.access import accounts
from kapacitor.access.accounts import VISIBILITIES, AccessError
from kapacitor.cli.common import AppContext, pass_app, print_json, read_db
from kapacitor.store.readdb import ReadDb

VISIBILITY = click.Choice(VISIBILITIES)


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
@pass_app
def users_add(app: AppContext, name: str, email: str, admin: bool, default_visibility: str | None) -> None:
    """Add user NAME."""
    with _accounts(app) as conn:
        user = accounts.add_user(conn, name, email, admin, default_visibility)
    click.echo(f"added user {user.name}{' (admin)' if user.admin else ''}; give them a token: kapacitor tokens create --user {user.name}")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array: name, email, admin, default_visibility, created_at.")
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
@pass_app
def users_set(app: AppContext, name: str, default_visibility: str | None, email: str | None, admin: bool | None) -> None:
    """Change user NAME."""
    with _accounts(app) as conn:
        user = accounts.set_user(conn, name, email=email, admin=admin, default_visibility=default_visibility)
    print_json(user.as_json())


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: what hooks send (kapacitor setup --server URL --token-file F)
    and what a user pastes to sign in. Only a hash is stored."""


@tokens_group.command("create")
@click.option("--user", "user", required=True, help="The user the token signs in as.")
@click.option("--json", "as_json", is_flag=True, help='Print {"token": ..., "user": ..., "id": ...}.')
@pass_app
def tokens_create(app: AppContext, user: str, as_json: bool) -> None:
    """Make a token for a user and print it, once: it cannot be shown again."""
    with _accounts(app) as conn:
        token_id, token = accounts.create_token(conn, user)
    if as_json:
        click.echo(json.dumps({"token": token, "user": user, "id": token_id}))
    else:
        click.echo(token)
        click.echo(f"token {token_id} for {user}: shown once, keep it safe (revoke: kapacitor tokens revoke {token_id})", err=True)


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array: id, user, created_at, revoked_at.")
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
@pass_app
def tokens_revoke(app: AppContext, token_id: str) -> None:
    """Revoke token ID: refused from the next request on, signed-in browsers included."""
    with _accounts(app) as conn:
        accounts.revoke_token(conn, token_id)
    click.echo(f"revoked token {token_id}")


@click.group("repos")
def repos_group() -> None:
    """Repositories' access defaults."""


@repos_group.command("set")
@click.argument("key")
@click.option("--default-visibility", type=VISIBILITY, required=True, help="Who sees this repository's sessions unless a session says otherwise.")
@pass_app
def repos_set(app: AppContext, key: str, default_visibility: str) -> None:
    """Set the default visibility of repository KEY (owner/repo, or a directory)."""
    with _accounts(app) as conn:
        accounts.set_repository_visibility(conn, key, default_visibility)
    click.echo(f"sessions in {key} are {default_visibility} unless set otherwise")
