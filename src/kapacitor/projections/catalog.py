"""Every read model the runner keeps, in the order they are listed and run."""

from __future__ import annotations

from kapacitor.projections import (
    comments,
    evals,
    facts,
    files_changed,
    live_status,
    marks,
    ownership,
    repositories,
    search_index,
    sessions,
    token_usage,
    tool_calls,
)
from kapacitor.projections.runner import Projection, checkpoints
from kapacitor.projections.skipped import Skipped, skipped

PROJECTIONS: tuple[Projection, ...] = (
    ownership.PROJECTION,  # who owns each record: the others read it, so first
    sessions.PROJECTION,
    tool_calls.PROJECTION,
    token_usage.PROJECTION,
    files_changed.PROJECTION,
    repositories.PROJECTION,  # reads sessions: after it
    live_status.PROJECTION,
    evals.PROJECTION,
    facts.PROJECTION,  # reads sessions (an eval's repository): after it
    search_index.PROJECTION,
    comments.PROJECTION,
    marks.PROJECTION,
)
BY_NAME = {p.name: p for p in PROJECTIONS}


def statuses(conn) -> list[tuple[Projection, int, list[Skipped]]]:  # type: ignore[no-untyped-def]
    """Each read model with its checkpoint (0: never ran) and the events it
    skipped: what ``projections status`` and ``doctor`` report. ``conn``: the
    read models' database (``open_read_models``)."""
    saved, found = checkpoints(conn), skipped(conn)
    return [
        (p, saved[p.name].position if p.name in saved else 0, [s for s in found if s.name == p.name])
        for p in PROJECTIONS
    ]
