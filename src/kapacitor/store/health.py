"""The store file's integrity: SQLite's ``quick_check``, read-only.

``quick_check`` reads every page of the file (seconds per GB), so it runs where
a person asks for it or where the cost is paid once: ``kapacitor doctor``, the
start of ``kapacitor serve`` and of ``kapacitor import``. In between, a damaged
page met by any read makes the store refuse writes (``SQLiteEventStore.damaged``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def quick_check(path: Path, limit: int = 10) -> list[str]:
    """SQLite's ``PRAGMA quick_check`` on the file, opened read-only: the problems
    found (at most ``limit``), ``[]`` when the file is healthy. A file that is not
    a database is one problem."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        rows = [row[0] for row in conn.execute(f"PRAGMA quick_check({int(limit)})")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    if rows == ["ok"]:
        return []
    lines = [line.strip() for row in rows for line in row.splitlines()]
    return [line for line in lines if line and not line.startswith("*** in database")]


def summary(problems: list[str], shown: int = 3) -> str:
    """The first problems on one line, and how many more there are."""
    more = len(problems) - shown
    return "; ".join(problems[:shown]) + (f"; and {more} more" if more > 0 else "")
