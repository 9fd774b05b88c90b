"""``kapacitor import``: Claude Code history into the event store."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from kapacitor.capture.transcripts import default_roots, no_history_message
from kapacitor.cli.common import AppContext, pass_app, refuse_damaged
from kapacitor.cli.import_progress import import_with_progress, summary_table


@click.command("import")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@pass_app
def import_command(app: AppContext, paths: tuple[Path, ...], as_json: bool) -> None:
    """Import Claude Code transcripts (dirs or .jsonl files).

    With no PATH, imports every Claude Code config dir on this machine: each dir
    in $CLAUDE_CONFIG_DIR (comma-separated), else ~/.claude and ~/.config/claude.
    Safe to rerun: unchanged files are skipped, grown files import only their
    new lines, and nothing is ever stored twice. Bad lines are reported as
    warnings (file:line) and kept as unknown records; the import goes on. A
    file without any transcript record (or a binary file) is skipped with one
    warning, and left alone by later imports until it changes. Exits 0 with
    warnings, and when no history is found; 1 only when no PATH exists.
    Secrets are masked before anything is stored; an import of 4 MiB or more
    masks in a worker process beside it when a core is free
    (KAPACITOR_MASKING=inline or worker overrides).

    JSON keys: files (looked at), files_unchanged (nothing new), files_skipped
    (not transcripts), lines, bytes (read), events_added, events_skipped
    (stored already), errors (files that could not be read), warnings (every
    notice, as text), seconds.
    """
    err = Console(stderr=True)
    missing = [p for p in paths if not p.exists()]
    if paths and len(missing) == len(paths):
        raise click.ClickException(f"no such file or directory: {', '.join(map(str, missing))}")
    for path in missing:
        err.print(Text.assemble(("warning: ", "yellow"), f"{path}: no such file or directory, skipped"), soft_wrap=True)
    roots = [p for p in paths if p.exists()] or default_roots()
    refuse_damaged(app)
    if not paths and not any(next(root.rglob("*.jsonl"), None) for root in roots):
        # Nothing failed, so exit 0 (as `serve --import` does); but no empty table.
        err.print(Text(no_history_message(), style="yellow"), soft_wrap=True, highlight=False)
        if not as_json:
            return
    summary = import_with_progress(app.store, roots, err)
    if as_json:
        click.echo(json.dumps(summary.as_json(), indent=2))
    else:
        Console().print(summary_table(summary))

