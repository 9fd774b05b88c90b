"""``kapacitor search QUERY``: full-text search across every session."""

from __future__ import annotations


import click
from rich.console import Console
from rich.markup import escape

from kapacitor import times
from kapacitor.cli.common import REPO, REPO_HELP, SINCE, AppContext, pass_app, print_json
from kapacitor.cli.read_models import caught_up
from kapacitor.cli.session_ids import unknown_filter
from kapacitor.memory import search
from kapacitor.normalize.redact import shortened


@click.command("search")
@click.argument("query")
@click.option("--repo", type=REPO, help=f"Only sessions of this repository ({REPO_HELP}).")
@click.option("--user", metavar="EMAIL", help="Only this user's sessions.")
@click.option("--since", type=SINCE, help="Only sessions started since this day (YYYY-MM-DD, local time) or within this long (12h, 7d, 2w).")
@click.option("--prompts", is_flag=True, help="Only the user's own words: prompts (typed or queued), bash-mode and slash commands; never context the client or IDE injected.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="At most this many hits.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of hits (snippet, highlights, link, ranked_within, ...).")
@pass_app
def search_command(app: AppContext, query: str, repo: str | None, user: str | None, since: str | None, prompts: bool,
                   limit: int, as_json: bool) -> None:
    """Find QUERY in prompts, assistant text, tool inputs and outputs and file
    paths of every session (with --prompts: in what the users typed only).
    Every word must occur, in any of its forms ("rate limit" finds "rate
    limiting"); "quote" a phrase. Hits with the words as typed first, then
    the best. A query that matches very many texts ranks the newest of them
    only, and the output says how many: add words or a filter to reach older
    ones."""
    with caught_up(app) as conn:
        unknown_filter(conn, repo or "", user or "")
        try:
            hits = search.search(conn, None, query, repo=repo or "", user=user or "", since=since or "", tz=None,
                                 scope="prompts" if prompts else "all", limit=limit)
        except search.SearchError as exc:
            raise click.UsageError(str(exc)) from None
    if as_json:
        print_json([h.as_json() for h in hits])
        return
    if not hits:
        click.echo(f"Nothing matches {query!r}.")
        return
    console = Console(highlight=False)
    for hit in hits:
        snippet = "".join(f"[bold yellow]{escape(t)}[/]" if m else escape(t) for t, m in hit.parts)
        where = f"{hit.kind}{' ' + hit.tool if hit.tool else ''}"
        console.print(f"[cyan]{hit.session_id}[/] {escape(hit.repo)} · {escape(shortened(hit.title, 60))} · {where} · {times.shown(hit.timestamp, None)}")  # the local zone, named, as `sessions` shows
        console.print(f"  {snippet}")
        console.print(f"  [dim]{hit.link}[/]")
    if note := search.ranked_note(hits):
        console.print(f"[dim]{escape(note)}[/]")
