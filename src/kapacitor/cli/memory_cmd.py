"""``kapacitor memory``: the facts sessions share (add, list, supersede, retire).

Works on the store like every command (``--store``); facts are events, so an
edit is a supersede and nothing is ever overwritten. See docs/memory.md.
"""

from __future__ import annotations

import os

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kapacitor import times
from kapacitor.capture.gitinfo import project_of, resolve_context
from kapacitor.cli.common import REPO, REPO_HELP, AppContext, pass_app, print_json
from kapacitor.cli.read_models import caught_up
from kapacitor.memory import facts


def _me() -> str:
    return str(resolve_context(os.getcwd()).get("user", ""))


def _scope(repo: str | None) -> str:
    """The scope given, else this directory's project (its GitHub repository, else the directory)."""
    return repo or project_of(os.getcwd())


@click.group("memory")
def memory_group() -> None:
    """Facts about a repository or the team that later sessions recall.

    A fact is a short statement ("run the billing tests with `make check-billing`")
    with a scope (OWNER/REPO; a directory, for a project without a GitHub remote;
    or `org` for the team) and a category. New sessions
    get their repository's and the team's facts at start (the SessionStart hook);
    agents add facts with the MCP `remember` tool.
    """


@memory_group.command("add")
@click.argument("text")
@click.option("--repo", type=REPO, help=f"Scope: a repository ({REPO_HELP}) or `org` for the team"
              " (default: `.`).")
@click.option("--category", "-c", default="", metavar="C", help=f"One word, e.g. testing, build, style (default {facts.DEFAULT_CATEGORY}).")
@pass_app
def add_command(app: AppContext, text: str, repo: str | None, category: str) -> None:
    """Keep a fact (as a person)."""
    try:
        fact_id = facts.retain(app.store, text, _scope(repo), facts.Provenance("person", _me()), category)
    except facts.FactError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(fact_id)


@memory_group.command("list")
@click.option("--repo", type=REPO, help=f"Only the facts of this repository ({REPO_HELP}), or `org`: the team's.")
@click.option("--all", "everything", is_flag=True, help="Superseded and retired facts too.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (the fields of docs/memory.md).")
@pass_app
def list_command(app: AppContext, repo: str | None, everything: bool, as_json: bool) -> None:
    """List facts, newest first."""
    where, params = ["1 = 1"], []
    if repo:
        where.append("scope = ?")
        params.append(repo)
    if not everything:
        where.append("status = 'active'")
    with caught_up(app) as conn:
        found = facts.rows(conn, " AND ".join(where), params)
    if as_json:
        print_json([f.as_json() for f in found])
        return
    if not found:
        click.echo("No facts yet. Add one with `kapacitor memory add TEXT --repo OWNER/REPO`.")
        return
    Console().print(_facts_table(found, everything))


def _facts_table(found: list[facts.Fact], everything: bool) -> Table:
    """One row per fact that reads at 80 columns: the id whole (it is copied into
    `memory supersede`/`retire`), the scope cut at its end, and the text given the
    rest, with its category, author, time and status on a dim line under it."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("scope", no_wrap=True, overflow="ellipsis", max_width=18)
    table.add_column("uses", no_wrap=True, justify="right")
    table.add_column("fact", overflow="fold", ratio=1)
    for f in found:
        about = [f.category, f"by {f.by} {f.user}".strip(), times.shown(f.retained_at, None)]
        text = Text(f.text)
        text.append("\n" + " · ".join(about + ([f.status] if everything else [])), style="dim")
        table.add_row(f.fact_id, f.scope, str(f.uses), text)
    return table


@memory_group.command("supersede")
@click.argument("fact_id")
@click.argument("text")
@pass_app
def supersede_command(app: AppContext, fact_id: str, text: str) -> None:
    """Replace fact FACT_ID (or a unique prefix) with TEXT: the old one stops being recalled."""
    with caught_up(app) as conn:
        try:
            new_id = facts.supersede(app.store, conn, fact_id, text, facts.Provenance("person", _me()))
        except facts.FactError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(new_id)


@memory_group.command("retire")
@click.argument("fact_id")
@click.option("--reason", default="", help="Why it no longer holds.")
@pass_app
def retire_command(app: AppContext, fact_id: str, reason: str) -> None:
    """Stop recalling fact FACT_ID (or a unique prefix); it stays in the history."""
    with caught_up(app) as conn:
        try:
            old = facts.retire(app.store, conn, fact_id, _me(), reason)
        except facts.FactError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"retired {old.fact_id}: {old.text}")
