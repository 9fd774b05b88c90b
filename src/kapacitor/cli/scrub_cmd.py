"""``kapacitor scrub``: mask secrets already in the store with today's rules."""

from __future__ import annotations

import json
import sqlite3

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from kapacitor.cli.common import AppContext, pass_app
from kapacitor.cli.projections_cmd import rebuild
from kapacitor.normalize.scrub import scrub
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.store.base import display_url


@click.command("scrub")
@click.option("--dry-run", is_flag=True, help="List the events that would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (keys below).")
@pass_app
def scrub_command(app: AppContext, dry_run: bool, as_json: bool) -> None:
    """Re-apply the current redaction rules to every event already stored.

    Use it after adding a rule (config file, new version) or finding a secret
    that slipped through: events are immutable except for this. Each event the
    rules change is rewritten in place (same id, stream and position), one
    SecretsScrubbed event in the KapacitorScrub stream records which events and
    which kinds of secret (never a value), and the read models are rebuilt.
    Running it twice changes nothing the second time.

    JSON keys: scanned, changed, rewritten, dry_run, kinds (kind -> count),
    log_event (the SecretsScrubbed event id), events (id, stream, type,
    position, kinds).
    """
    store = app.store
    with Progress(TextColumn("[bold]scrubbing"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} events"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("scrub", total=store.count_after(0))
        report = scrub(store, dry_run=dry_run, progress=lambda read: bar.update(task, advance=read))
    rebuilt = False
    if report.rewritten:  # the read models live in the store's own database, on either backend
        rebuild(app, list(PROJECTIONS))
        rebuilt = True
        if getattr(store, "path", None) is not None:
            _vacuum(str(store.path))  # type: ignore[attr-defined]
    if as_json:
        click.echo(json.dumps({**report.as_json(), "read_models_rebuilt": rebuilt}, indent=2))
        return
    if dry_run and report.changes:
        table = Table(title="Events the rules would change")
        for column in ("position", "stream", "type", "secrets"):
            table.add_column(column, justify="right" if column == "position" else "left")
        for change in report.changes:
            kinds = ", ".join(f"{kind} ×{n}" if n > 1 else kind for kind, n in change.kinds.items())
            table.add_row(f"{change.position:,}", change.stream, change.type, kinds)
        Console().print(table)
    kinds = ", ".join(f"{kind} {n}" for kind, n in report.kinds.items()) or "none"
    verb = "would rewrite" if dry_run else "rewrote"
    click.echo(f"scanned {report.scanned:,} events in {display_url(app.store_url)}: {verb} {len(report.changes):,} (secrets: {kinds})")
    if report.log_event:
        click.echo(f"logged as SecretsScrubbed {report.log_event} in the KapacitorScrub stream")
    if rebuilt:
        click.echo("read models rebuilt")


def _vacuum(path: str) -> None:
    """Rewrite the SQLite file so that no free page keeps an old value (the
    dropped read-model tables held them too). Needs a moment without writers."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:
        raise click.ClickException(f"scrubbed, but could not compact {path} ({exc}): run `kapacitor scrub` again when the server is idle") from None
    finally:
        conn.close()
