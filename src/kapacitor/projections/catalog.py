"""Every read model the runner keeps, in the order they are listed and run."""

from __future__ import annotations

from dataclasses import dataclass

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
from kapacitor.store.base import EventStore
from kapacitor.store.readdb import ReadDb

PROJECTIONS: tuple[Projection, ...] = (
    ownership.PROJECTION,  # who owns each record: the others read it, so first
    sessions.PROJECTION,
    tool_calls.PROJECTION,
    token_usage.PROJECTION,
    files_changed.PROJECTION,
    evals.PROJECTION,
    repositories.PROJECTION,  # reads sessions and evals (the latest score): after them
    live_status.PROJECTION,
    facts.PROJECTION,  # reads sessions (an eval's repository): after it
    search_index.PROJECTION,
    comments.PROJECTION,
    marks.PROJECTION,
)
BY_NAME = {p.name: p for p in PROJECTIONS}


@dataclass(frozen=True)
class Status:
    """A read model's state: ``checkpoint`` (the last position it handled, 0: never
    ran), ``lag`` (events in the log after it, counted by the store), the
    events it ``skipped``, and ``ahead``: the checkpoint is past the log's head
    (the store was replaced under the read models, which then show what the log
    no longer holds)."""

    projection: Projection
    checkpoint: int
    lag: int
    skipped: list[Skipped]
    ahead: bool = False


def statuses(conn: ReadDb, store: EventStore) -> list[Status]:
    """Each read model's ``Status``: what ``projections status`` and ``doctor``
    report, on either backend. ``conn``: the read models' database
    (``open_read_models``); ``store``: the log they follow."""
    saved, found, head = checkpoints(conn), skipped(conn), store.head_position()
    out = []
    for p in PROJECTIONS:
        position = saved[p.name].position if p.name in saved else 0
        lag = store.count_after(position)
        out.append(Status(p, position, lag, [s for s in found if s.name == p.name], past_head(position, lag, head)))
    return out


def past_head(checkpoint: int, lag: int, head: int) -> bool:
    """A checkpoint with nothing after it in the log that is not the log's last
    position names an event the log does not hold: it is past the head. Positions
    are opaque (see ``Position``): compared for equality only, never subtracted."""
    return checkpoint != 0 and lag == 0 and checkpoint != head
