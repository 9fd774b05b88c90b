"""What every command shares: the store, opened on first use, and clean errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from kapacitor import times
from kapacitor.store import health, open_store
from kapacitor.store.base import EventStore, StoreDamaged, StoreError, StoreMissing, display_url
from kapacitor.store.readdb import ReadDb, open_read_db


class AppContext:
    def __init__(self, store_url: str):
        self.store_url = store_url
        self._store: EventStore | None = None

    @property
    def store(self) -> EventStore:
        """The store, created when missing (for commands that write)."""
        return self.open(create=True)

    @property
    def existing_store(self) -> EventStore:
        """The store for commands that only read: a missing file is a one-line error
        and nothing is created."""
        return self.open(create=False)

    def open(self, create: bool) -> EventStore:
        if self._store is None:
            try:
                self._store = open_store(self.store_url, create=create)
            except StoreError as exc:
                raise click.ClickException(f"{exc}{demo_hint(self.store_url, exc)}") from None
            except OSError as exc:
                raise click.ClickException(f"cannot open store {display_url(self.store_url)}: {exc.strerror or exc}") from None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def kapacitor_command() -> str:
    """This installation's ``kapacitor`` as a person can type it, for the commands
    a message suggests: ``kapacitor`` when that is on ``PATH`` and is this one,
    else the script beside this Python (``./scripts/run`` installs into
    ``.venv/bin``, which is not on ``PATH``; relative when under the working
    directory), else ``python -m kapacitor``."""
    import shlex
    import shutil  # here, not on every command's start (~4 ms)

    here = Path(sys.executable).parent / "kapacitor"
    on_path = shutil.which("kapacitor")
    if on_path and (not here.exists() or Path(on_path).resolve() == here.resolve()):
        return "kapacitor"
    if here.exists():
        relative = os.path.relpath(here)
        return shlex.quote(relative if not relative.startswith("..") else str(here))
    return f"{shlex.quote(sys.executable)} -m kapacitor"


def demo_hint(store_url: str, error: Exception) -> str:
    """Where the demo's store is, for an error about the default store not being
    there (``StoreMissing``) when the demo's is: after ``kapacitor serve --demo``
    the dashboard shows the demo, while the CLI reads the user's own store by
    default. Nothing for a store the person named (``--store``,
    ``KAPACITOR_STORE``) or another error: there it would only mislead."""
    import shlex

    from kapacitor.config import default_store_url, demo_store_path

    demo = demo_store_path()
    if not isinstance(error, StoreMissing) or store_url != default_store_url() or not demo.exists():
        return ""
    return f" (the demo's store is sqlite://{demo}: {kapacitor_command()} --store {shlex.quote(f'sqlite://{demo}')} sessions)"


def read_db(app: AppContext, create: bool = True) -> ReadDb:
    """The read models' database: the store's own (the SQLite file, or the PostgreSQL
    database); ``create=False``: the store must exist."""
    try:
        return open_read_db(app.store if create else app.existing_store)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


pass_app = click.make_pass_decorator(AppContext)


def refuse_damaged(app: AppContext) -> None:
    """A one-line error when the SQLite store fails ``quick_check`` (about a
    second per 500 MB): run before a command writes to it."""
    path = getattr(app.store, "path", None)
    if path is None:
        return
    problems = health.quick_check(Path(path))
    if problems:
        raise click.ClickException(str(StoreDamaged(path, health.summary(problems))))


class SinceType(click.ParamType):
    """A ``--since``: a day (``YYYY-MM-DD``, from its start in the machine's
    zone) or a duration back from now (``7d``), by ``times.since_start``, the
    rule every ``since`` follows; anything else is a usage error (exit 2) naming
    both forms. The value stays as typed: the command turns it into a time."""

    name = "since"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DAY|DURATION"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return times.since_text(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


SINCE = SinceType()


class RepoType(click.ParamType):
    """A ``--repo``: the sessions (or facts) of one project, as the session list
    groups them: a GitHub ``OWNER/REPO``, or a directory (absolute, as the
    client records a session's working directory). ``.`` is this directory's
    project and a path starting ``./`` or ``../`` that directory's
    (``gitinfo.project_of``: its GitHub repository, else the directory itself);
    anything else is kept as typed. Every command's ``--repo`` is this type, so
    ``--repo R`` means one thing everywhere."""

    name = "repo"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "OWNER/REPO"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from kapacitor.capture.gitinfo import project_of  # here, not on every command's start

        value = value.strip()
        if not value:
            self.fail("give a repository (OWNER/REPO), a directory, or . for this directory's", param, ctx)
        if value in (".", "..") or value.startswith(("./", "../")):
            return project_of(os.path.abspath(value))
        return value


REPO = RepoType()
REPO_HELP = "OWNER/REPO on GitHub, or a directory; `.`: this directory's, its GitHub repository else itself"
"""How every ``--repo`` help names what it takes (after what the command does with it)."""


def print_json(data: Any) -> None:
    """``data`` on standard output as JSON, every time in it in the server's JSON
    form (``json_times.zoned``: ISO 8601 to the millisecond, with the offset of
    the machine's zone), so a script reads one form from every ``--json`` and
    from the API."""
    from kapacitor.json_times import zoned

    click.echo(json.dumps(zoned(data, None), indent=2, ensure_ascii=False))
