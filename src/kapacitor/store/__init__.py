"""Event stores: the port (``base``) and one module per backend.

``open_store(url)`` picks the backend from the URL scheme, importing only that
backend's module, so the embedded default pulls in nothing but ``sqlite3``.
"""

from __future__ import annotations

from pathlib import Path

from kapacitor.store.base import EventStore, StoreError, display_url


def open_store(url: str, *, create: bool = True) -> EventStore:
    """Open the store at ``url``: ``sqlite:///abs/path.db`` (or a bare ``.db`` path),
    or ``postgresql://user:password@host:port/database`` (any libpq URL).
    ``create=False`` (for commands that only read) refuses a SQLite file that does
    not exist instead of creating it. Raises ``StoreError`` with one clear line for
    a bad URL, a missing file, or a file that is not a (healthy) store."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if not path:
            raise StoreError(f"no file in store URL {url!r}: use sqlite:///path/to/file.db")
        from kapacitor.store.sqlite import SQLiteEventStore

        return SQLiteEventStore(Path(path).expanduser(), create=create)
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from kapacitor.store.postgres import PostgresEventStore
        except ImportError as exc:
            raise StoreError(
                f"a postgresql:// store URL needs psycopg ({exc}): pip install 'kapacitor[postgres]'"
            ) from None
        return PostgresEventStore(url)
    if "://" not in url and url.endswith(".db"):
        return open_store(f"sqlite://{url}", create=create)
    if "://" not in url:
        what = "is a directory" if Path(url).expanduser().is_dir() else "does not end in .db"
        raise StoreError(
            f"not a store URL or path: {url} {what} (use a .db file, sqlite:///path/to/file.db or postgresql://host/database)"
        )
    scheme = url.split("://", 1)[0]
    raise StoreError(
        f"unsupported store URL {display_url(url)!r} (scheme {scheme!r}); use sqlite:///path/to/file.db or postgresql://host/database"
    )
