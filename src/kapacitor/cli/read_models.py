"""The read models a command reads, caught up to the head of the log first."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from kapacitor.cli.common import AppContext, read_db
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store.readdb import ReadDb


SHOW_PROGRESS_FROM = 20_000
"""Catching up over this many events shows a progress bar (a read model whose
version changed, as ``search_index`` when word forms came, is rebuilt from the
start of the log on its first use)."""


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient progress bar of ``total`` events on stderr (``label`` before it);
    yields ``advance(events read)``, the ``catch_up`` progress callback."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda read: progress.update(task, advance=read)


@contextmanager
def caught_up(app: AppContext) -> Iterator[ReadDb]:
    """A connection to every read model, each caught up (a failing one is an error;
    a long catch-up shows a progress bar)."""
    runner = ProjectionRunner(app.store, read_db(app), PROJECTIONS)
    try:
        behind = app.store.count_after(min(runner.positions().values()))
        if behind >= SHOW_PROGRESS_FROM:
            with progress_bar("updating the read models", behind) as advance:
                runner.catch_up(advance)
        else:
            runner.catch_up()
        if runner.failures:
            raise click.ClickException("; ".join(str(f) for f in runner.failures.values()))
        yield runner.conn
    finally:
        runner.close()
