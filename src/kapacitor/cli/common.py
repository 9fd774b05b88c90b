"""What every command shares: the store, opened on first use, and clean errors."""

from __future__ import annotations

import click

from kapacitor.store import open_store
from kapacitor.store.base import EventStore, StoreError, display_url
from kapacitor.store.readdb import ReadDb, open_read_db


class AppContext:
    def __init__(self, store_url: str):
        self.store_url = store_url
        self._store: EventStore | None = None

    @property
    def store(self) -> EventStore:
        if self._store is None:
            try:
                self._store = open_store(self.store_url)
            except StoreError as exc:
                raise click.ClickException(str(exc)) from None
            except OSError as exc:
                raise click.ClickException(f"cannot open store {display_url(self.store_url)}: {exc.strerror or exc}") from None
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def read_db(app: AppContext) -> ReadDb:
    """The read models' database: the store's own (the SQLite file, or the PostgreSQL database)."""
    try:
        return open_read_db(app.store)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


pass_app = click.make_pass_decorator(AppContext)
