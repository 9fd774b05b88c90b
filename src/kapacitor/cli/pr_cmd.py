"""``kapacitor pr OWNER/REPO#N``: the sessions behind a pull request (needs `gh`)."""

from __future__ import annotations


import click

from kapacitor import times
from kapacitor.cli.common import AppContext, pass_app, print_json
from kapacitor.cli.read_models import caught_up
from kapacitor.memory import prs


@click.command("pr")
@click.argument("ref", metavar="OWNER/REPO#N")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the PR as gh gives it and the sessions.")
@pass_app
def pr_command(app: AppContext, ref: str, as_json: bool) -> None:
    """The sessions behind pull request OWNER/REPO#N (those of the repository on the
    PR's head branch) and the files each touched. Asks the GitHub CLI `gh`."""
    with caught_up(app) as conn:
        try:
            found = prs.pr_sessions(conn, None, ref)
        except prs.PrError as exc:
            raise click.ClickException(str(exc)) from None
    if as_json:
        print_json(found)
        return
    pr = found["pr"]
    click.echo(f"{found['repo']}#{found['number']}: {pr.get('title', '')} [{pr.get('state', '')}] branch {found['branch']}")
    if not found["sessions"]:
        click.echo("No sessions on that branch.")
    for s in found["sessions"]:
        click.echo(f"- {s['session_id']} {times.shown(s['started'], None)} {s['user']}: {s['title'][:80]}")
        for path in s["files"]:
            click.echo(f"    {path}")
