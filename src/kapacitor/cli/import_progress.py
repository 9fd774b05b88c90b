"""Importing with a progress bar (bytes, MB/s, events) and the summary table:
shared by ``kapacitor import`` and ``kapacitor serve --import``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
from rich.text import Text

from kapacitor.capture.gitinfo import resolve_context
from kapacitor.capture.importer import ImportSummary, ImportWarning, import_paths, pending_bytes
from kapacitor.capture.masking import Masker
from kapacitor.capture.transcripts import find_transcripts
from kapacitor.normalize.claude_code import ContextResolver
from kapacitor.store.base import EventStore


def import_with_progress(
    store: EventStore, roots: Sequence[Path], err: Console, resolve_context: ContextResolver = resolve_context
) -> ImportSummary:
    """Import ``roots`` into ``store``, drawing the progress bar and warnings on ``err``."""
    total = pending_bytes(store, find_transcripts(roots))

    def warn(w: ImportWarning) -> None:
        # Record text never reaches rich markup: a line may hold "[/]" or "[bold]".
        progress.console.print(Text.assemble(("warning: ", "yellow"), str(w)), highlight=False, soft_wrap=True)

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

        return import_paths(store, roots, progress=advance, on_warning=warn, resolve_context=resolve_context,
                            masker=Masker(expected_bytes=total))


def summary_table(summary: ImportSummary) -> Table:
    table = Table(title="Import", show_header=False)
    mb = summary.bytes / 1e6
    rate = mb / summary.seconds if summary.seconds else 0.0
    for label, value in [
        ("files", f"{summary.files:,} ({summary.files_unchanged:,} unchanged, {summary.files_skipped:,} not transcripts: skipped)"),
        ("lines read", f"{summary.lines:,} ({mb:,.1f} MB, {rate:,.1f} MB/s)"),
        ("events added", f"{summary.events_added:,}"),
        ("events already stored", f"{summary.events_skipped:,}"),
        ("errors (files not read)", f"{summary.errors:,}"),
        ("warnings", f"{len(summary.warnings):,}"),
        ("time", f"{summary.seconds:,.2f} s"),
    ]:
        table.add_row(label, value)
    return table
