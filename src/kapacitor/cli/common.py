"""What every command shares: the store, opened on first use, and clean errors."""

from __future__ import annotations

from pathlib import Path

import click

from kapacitor.store import health, open_store
from kapacitor.store.base import EventStore, StoreDamaged, StoreError, display_url
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
                raise click.ClickException(f"{exc}{demo_hint(self.store_url)}") from None
            except OSError as exc:
                raise click.ClickException(f"cannot open store {display_url(self.store_url)}: {exc.strerror or exc}") from None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def demo_hint(store_url: str) -> str:
    """Where the demo's store is, when there is one and ``store_url`` is another:
    after ``kapacitor serve --demo`` the dashboard shows it, while the CLI reads
    the user's own store by default."""
    from kapacitor.config import demo_store_path

    demo = demo_store_path()
    if not demo.exists() or store_url == f"sqlite://{demo}":
        return ""
    return f" (the demo's store is sqlite://{demo}: kapacitor --store sqlite://{demo} sessions)"


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
