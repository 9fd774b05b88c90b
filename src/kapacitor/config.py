"""Where Kapacitor keeps its data: the default store is a SQLite file in the
user's data dir, so everything works on a fresh machine with nothing running."""

from __future__ import annotations

from pathlib import Path


def data_dir() -> Path:
    import platformdirs  # only when no --store names one: every command imports this module

    return Path(platformdirs.user_data_dir("kapacitor", appauthor=False))


def default_store_url() -> str:
    return f"sqlite://{data_dir() / 'kapacitor.db'}"


def demo_store_path() -> Path:
    """Where ``kapacitor serve --demo`` keeps the demo when no --store is given:
    beside the user's own store, never in it."""
    return data_dir() / "demo.db"
