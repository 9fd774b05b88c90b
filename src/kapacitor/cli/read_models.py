"""The read models a command reads, caught up to the head of the log first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import click

from kapacitor.capture.gitinfo import repository_of
from kapacitor.cli.common import AppContext, read_db
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store.readdb import ReadDb


@contextmanager
def caught_up(app: AppContext) -> Iterator[ReadDb]:
    """A connection to every read model, each caught up (a failing one is an error)."""
    runner = ProjectionRunner(app.store, read_db(app), PROJECTIONS)
    try:
        runner.catch_up()
        if runner.failures:
            raise click.ClickException("; ".join(str(f) for f in runner.failures.values()))
        yield runner.conn
    finally:
        runner.close()


def current_repository() -> str:
    """``owner/repo`` of the working directory's GitHub remote, "" outside one."""
    return repository_of(os.getcwd()) or ""
