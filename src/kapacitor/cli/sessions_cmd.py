"""``kapacitor sessions``: one row per session, newest first."""

from __future__ import annotations

import json

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kapacitor.cli.common import AppContext, pass_app, read_db
from kapacitor.pricing import price_source
from kapacitor.projections import sessions
from kapacitor.projections.runner import ProjectionRunner, ProjectionStalled
from kapacitor.projections.session_summary import SessionSummary


def newest_sessions(app: AppContext, limit: int | None) -> list[SessionSummary]:
    """Bring the ``sessions`` read model up to the head of the log, then read it."""
    db = read_db(app, create=False)  # first: a missing store is an error, not created
    runner = ProjectionRunner(app.store, db, [sessions.PROJECTION])
    try:
        try:
            runner.catch_up()
        except ProjectionStalled as exc:
            raise click.ClickException(f"the sessions read model cannot catch up: {exc}") from None
        for failure in runner.failures.values():
            click.echo(f"warning: {failure} (skipped; see `kapacitor projections status`)", err=True)
        return sessions.newest(runner.conn, limit)
    finally:
        runner.close()


@click.command("sessions")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (keys in the README).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N sessions.")
@click.option("--wide", is_flag=True, help="Every column, full session ids and titles (wraps in a narrow terminal).")
@pass_app
def sessions_command(app: AppContext, as_json: bool, limit: int | None, wide: bool) -> None:
    """List sessions, newest first: one line each with a short id (the first 8
    characters; the dashboard and --json take them whole), title, repository or
    directory, start (UTC), tool calls, tokens and cost, cut to fit the terminal.
    --wide adds branch, user, duration, prompts, tools by name, files and tokens
    per model."""
    rows = newest_sessions(app, limit)
    if as_json:
        click.echo(json.dumps([s.as_json() for s in rows], indent=2))
        return
    if not rows:
        click.echo("No sessions yet. Run `kapacitor import` to import your Claude Code history.")
        return
    console = Console()
    console.print(_wide_table(rows) if wide else _table(rows, console.width))


# session, started (UTC), tools, tokens, cost: their widths, and the one-space rule between 7 columns
_WIDTHS = {"session": 8, "started (UTC)": 16, "tools": 5, "tokens": 6, "cost": 7}
_FIXED = sum(_WIDTHS.values()) + 6


def _table(rows: list[SessionSummary], width: int) -> Table:
    """One line per session that fits ``width`` (80 columns and up): the title and
    the repository share what the fixed columns leave, cut with an ellipsis."""
    free = max(16, width - _FIXED)
    table = Table(caption=f"cost: {price_source()} (— = no price); --wide: every column",
                  box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    table.add_column("session", no_wrap=True, width=_WIDTHS["session"])
    table.add_column("title", no_wrap=True, overflow="ellipsis", width=free * 3 // 5)
    where = free - free * 3 // 5
    table.add_column("repo / dir", no_wrap=True, overflow="ellipsis", width=where)
    for name in ("started (UTC)", "tools", "tokens", "cost"):
        table.add_column(name, no_wrap=True, justify="left" if name.startswith("started") else "right", width=_WIDTHS[name])
    for s in rows:
        row = s.as_json()
        total = sum(t[k] for t in row["tokens"].values() for k in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
        table.add_row(
            s.session_id[:8],
            Text(" ".join(s.title.split())),
            Text(_tail(s.repository or s.cwd, where)),
            s.started[:16].replace("T", " "),
            f"{sum(s.tool_calls.values()):,}",
            _short(total),
            "—" if row["cost_usd"] is None else f"${row['cost_usd']:.2f}",
        )
    return table


def _tail(path: str, width: int) -> str:
    """A path cut at its start, where it says least: ``…/src/api-server``."""
    return path if len(path) <= width else "…" + path[len(path) - width + 1 :]


def _short(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _wide_table(rows: list[SessionSummary]) -> Table:
    table = Table(caption=f"cost: {price_source()} (— = model without a price)")
    for name in ("session", "title", "repo / dir", "branch", "user", "started (UTC)", "duration", "prompts", "tools", "files", "tokens (in/out/cache r/w)", "cost"):
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
            Text(s.title[:200]),
            Text(s.repository or s.cwd),
            Text(s.branch),
            Text(s.user),
            s.started[:19].replace("T", " "),
            "" if duration is None else f"{duration:,.0f} s",
            str(s.prompts),
            Text(f"{sum(s.tool_calls.values())} ({tools})" if tools else "0"),
            str(len(s.files_changed)),
            Text(tokens),
            "—" if row["cost_usd"] is None else f"${row['cost_usd']:.4f}",
        )
    return table
