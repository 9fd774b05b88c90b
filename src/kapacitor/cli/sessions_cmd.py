"""``kapacitor sessions``: one row per session, newest first."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from kapacitor.cli.common import AppContext, pass_app, read_db
from kapacitor.pricing import price_source
from kapacitor.projections import sessions
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.projections.session_summary import SessionSummary


def newest_sessions(app: AppContext, limit: int | None) -> list[SessionSummary]:
    """Bring the ``sessions`` read model up to the head of the log, then read it."""
    runner = ProjectionRunner(app.store, read_db(app), [sessions.PROJECTION])
    try:
        runner.catch_up()
        if runner.failures:
            raise click.ClickException("; ".join(str(f) for f in runner.failures.values()))
        return sessions.newest(runner.conn, limit)
    finally:
        runner.close()


@click.command("sessions")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (keys in the README).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N sessions.")
@pass_app
def sessions_command(app: AppContext, as_json: bool, limit: int | None) -> None:
    """List sessions: repo, branch, user, time, prompts, tools, files, tokens and cost."""
    rows = newest_sessions(app, limit)
    if as_json:
        click.echo(json.dumps([s.as_json() for s in rows], indent=2))
        return
    if not rows:
        click.echo("No sessions yet. Run `kapacitor import` to import your Claude Code history.")
        return
    table = Table(caption=f"cost: {price_source()} (— = model without a price)")
    for name in ("session", "title", "repo / dir", "branch", "user", "started", "duration", "prompts", "tools", "files", "tokens (in/out/cache r/w)", "cost"):
        table.add_column(name, overflow="fold")
    for s in rows:
        row = s.as_json()
        duration = row["duration_seconds"]
        tools = ", ".join(f"{k} {v}" for k, v in sorted(s.tool_calls.items(), key=lambda kv: -kv[1]))
        tokens = "\n".join(
            f"{model}: {t['input_tokens']:,}/{t['output_tokens']:,}/{t['cache_read_input_tokens']:,}/{t['cache_creation_input_tokens']:,}"
            for model, t in row["tokens"].items()
        )
        table.add_row(
            s.session_id,
            s.title[:60],
            s.repository or s.cwd,
            s.branch,
            s.user,
            s.started[:19].replace("T", " "),
            "" if duration is None else f"{duration:,.0f} s",
            str(s.prompts),
            f"{sum(s.tool_calls.values())} ({tools})" if tools else "0",
            str(len(s.files_changed)),
            tokens,
            "—" if row["cost_usd"] is None else f"${row['cost_usd']:.4f}",
        )
    Console().print(table)
