"""``kapacitor import``: Claude Code history into the event store."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from kapacitor.capture.importer import ImportSummary, ImportWarning, import_paths, pending_bytes
from kapacitor.capture.transcripts import default_roots, find_transcripts
from kapacitor.cli.common import AppContext, pass_app


@click.command("import")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@pass_app
def import_command(app: AppContext, paths: tuple[Path, ...], as_json: bool) -> None:
    """Import Claude Code transcripts (dirs or .jsonl files).

    With no PATH, imports every Claude Code config dir on this machine: each dir
    in $CLAUDE_CONFIG_DIR (comma-separated), else ~/.claude and ~/.config/claude.
    Safe to rerun: unchanged files are skipped, grown files import only their
    new lines, and nothing is ever stored twice. Bad lines are reported as
    warnings (file:line) and kept as unknown records; the import goes on.

    JSON keys: files, files_unchanged, lines, bytes, events_added,
    events_skipped, errors, warnings, seconds.
    """
    err = Console(stderr=True)
    roots = list(paths) or default_roots()
    if not roots:
        err.print("[yellow]No Claude Code history found[/] (looked in $CLAUDE_CONFIG_DIR, ~/.claude, ~/.config/claude).")
    store = app.store
    total = pending_bytes(store, find_transcripts(roots))

    def warn(w: ImportWarning) -> None:
        progress.console.print(f"[yellow]warning:[/] {w}", markup=True, highlight=False, soft_wrap=True)

    with Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("import", total=total or None, events=0)

        def advance(nbytes: int, added: int) -> None:
            events = progress.tasks[0].fields["events"] + added
            progress.update(task, advance=nbytes, events=events)

        summary = import_paths(store, roots, progress=advance, on_warning=warn)
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2))
    else:
        Console().print(_table(summary))


def _table(summary: ImportSummary) -> Table:
    table = Table(title="Import", show_header=False)
    mb = summary.bytes / 1e6
    rate = mb / summary.seconds if summary.seconds else 0.0
    for label, value in [
        ("files", f"{summary.files:,} ({summary.files_unchanged:,} unchanged)"),
        ("lines read", f"{summary.lines:,} ({mb:,.1f} MB, {rate:,.1f} MB/s)"),
        ("events added", f"{summary.events_added:,}"),
        ("events already stored", f"{summary.events_skipped:,}"),
        ("warnings", f"{summary.errors:,}"),
        ("time", f"{summary.seconds:,.2f} s"),
    ]:
        table.add_row(label, value)
    return table
