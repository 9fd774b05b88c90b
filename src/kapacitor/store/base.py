"""The event store port: what every backend (SQLite, PostgreSQL, KurrentDB) offers.

Application code depends on this module only; a backend is one module beside it,
chosen by the store URL (see ``kapacitor.store.open_store``). The behaviour is
pinned down by the contract suite in ``kapacitor.store.contract``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kapacitor.envelope import NewEvent, RecordedEvent
from kapacitor.store import blobs

ANY = -2
"""Expected version: append whatever the stream's state."""
NO_STREAM = -1
"""Expected version: the stream must not exist yet."""


class StoreError(Exception):
    """Something is wrong with the store (bad URL, unreachable server, ...)."""


class StoreClosed(StoreError):
    """A call on a store or read-model database after its ``close()``. A closed
    handle never opens a connection again, whichever thread asks: a background
    thread (projection runner, live hub, eval worker, chat warm-up) that meets
    this takes it as "stop" and ends, with one log line."""

    def __init__(self, what: str):
        super().__init__(f"{what} is closed: nothing more is read or written through it")


class StoreMissing(StoreError):
    """A store that does not exist, opened by a command that only reads."""


class StoreDamaged(StoreError):
    """The store file is not a database or has damaged pages: it is not written to."""

    def __init__(self, path: object, reason: str):
        super().__init__(
            f"{path} is damaged or not a Kapacitor store ({reason}); nothing was written to it."
            " `kapacitor doctor` checks it; restore it from a backup or re-import into a new file"
        )
        self.path, self.reason = path, reason


class WrongExpectedVersion(StoreError):
    """Optimistic concurrency: the stream moved on since the writer last read it."""

    def __init__(self, stream: str, expected: int, actual: int):
        super().__init__(f"stream {stream!r} is at version {actual}, expected {expected}")
        self.stream, self.expected, self.actual = stream, expected, actual


class EventIdConflict(StoreError):
    """An event id is already used in another stream: ids must be unique store-wide.
    ``stream`` is the stream being appended to, ``ids`` every id of that append
    already stored elsewhere (so a caller may drop them and retry)."""

    def __init__(self, message: str, stream: str = "", ids: frozenset[str] = frozenset()):
        super().__init__(message)
        self.stream, self.ids = stream, ids


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: events added, events skipped as already stored, and the
    stream's version and the store's global position afterwards."""

    added: int
    skipped: int
    version: int
    position: int


class EventStore(Protocol):
    def append(
        self, stream: str, events: Sequence[NewEvent], expected_version: int = ANY
    ) -> AppendResult:
        """Append atomically. Events whose id is already in the stream are skipped
        (idempotency); the version check applies to what is left."""
        ...

    def append_many(
        self,
        batches: Sequence[tuple[str, Sequence[NewEvent], int]],
        stream_metadata: dict[str, dict[str, Any]] | None = None,
        checkpoints: dict[str, dict[str, Any]] | None = None,
    ) -> list[AppendResult]:
        """Several appends (stream, events, expected version), stream metadata
        updates and checkpoints in one transaction: all of them happen or none does."""
        ...

    def read_stream(
        self,
        stream: str,
        from_version: int = 0,
        *,
        backwards: bool = False,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Events of one stream by version, forward from ``from_version`` or, when
        ``backwards``, from ``from_version`` down (``-1`` means from the end)."""
        ...

    def read_all(self, after: int = 0, *, limit: int | None = None) -> list[RecordedEvent]:
        """Events of every stream with global position greater than ``after``, in order."""
        ...

    def head_position(self) -> int:
        """The global position of the last event (0 for an empty store)."""
        ...

    def count_after(self, after: int = 0) -> int:
        """How many events have a global position greater than ``after``: a read
        model's lag, the work left for a progress bar. Positions are opaque (see
        ``Position``): callers never subtract them, they ask the store to count."""
        ...

    def get_checkpoint(self, name: str) -> dict[str, Any]:
        """A reader's saved progress (``{}`` when none), written by ``append_many``:
        an import's offset in a file, a copy's position in its source. Kept in a
        table of their own, not in streams: in KurrentDB, ``$``-prefixed streams
        are the server's system streams."""
        ...

    def stream_version(self, stream: str) -> int:
        """The version of the stream's last event, or ``NO_STREAM``."""
        ...

    def get_stream_metadata(self, stream: str) -> dict[str, Any]: ...

    def set_stream_metadata(self, stream: str, metadata: dict[str, Any]) -> None: ...

    def storage(self) -> dict[str, int]:
        """What the store holds: ``events`` and the bytes of their stored data and
        metadata (``event_bytes``), ``chunks`` and their compressed ``chunk_bytes``
        (large strings, each distinct piece once: see ``kapacitor.store.blobs``)."""
        ...

    def rewrite(self, changes: Sequence[Rewrite]) -> int:
        """The one exception to append-only, for ``kapacitor scrub`` only: replace
        the data and metadata of stored events (id, stream, type, version and
        position stay), in one transaction. Returns how many events changed;
        an unknown id changes nothing. Chunks (``blobs``) no event refers to any
        more are deleted with them: the old values are not kept. The caller
        records that it did so."""
        ...

    def close(self) -> None: ...


Position = int
"""A global position: ordered (a later event has a greater one) and nothing else.
Code outside a backend only compares and stores positions, never does arithmetic
on them: how many events lie after one is ``EventStore.count_after`` (KurrentDB's
commit positions are sparse byte offsets; ``tests/sparse_store.py`` runs the
read models, status, doctor, ``/healthz`` and ``store copy`` over such positions)."""


def count_dense(head: int, after: int) -> int:
    """``count_after`` for a backend that numbers its events 1, 2, 3, ... without
    gaps (SQLite, PostgreSQL; the contract suite checks it against ``read_all``):
    the count is known without reading the events."""
    return max(0, head - max(after, 0))

@dataclass(frozen=True, slots=True)
class Rewrite:
    """New data and metadata for the stored event ``id`` (see ``EventStore.rewrite``)."""

    id: str
    data: dict[str, Any]
    metadata: dict[str, Any]


def subscribe(
    store: EventStore,
    after: int = 0,
    *,
    stop: threading.Event,
    batch_size: int = 1000,
    poll_interval: float = 0.05,
) -> Iterator[RecordedEvent]:
    """A catch-up subscription: every event after ``after``, then each new one as it
    is appended, until ``stop`` is set. Positions only grow, so a reader that
    remembers the last position it handled can resume exactly there."""
    position = after
    while not stop.is_set():
        batch = store.read_all(position, limit=batch_size)
        for event in batch:
            yield event
            position = event.position
        if len(batch) < batch_size:
            stop.wait(poll_interval)


def append_skipping_taken_ids(
    store: EventStore, streams: dict[str, list[NewEvent]], checkpoints: dict[str, dict[str, Any]] | None = None
) -> tuple[int, int]:
    """``append_many`` of ``streams`` (any expected version) and ``checkpoints``
    in one transaction, leaving out every event whose id another stream already
    holds (a record the agent wrote twice, say in its main and a sidechain
    transcript) instead of refusing them all. (added, skipped): skipped counts
    those and the events already stored."""
    dropped = 0
    while True:
        try:
            results = store.append_many(
                [(stream, events, ANY) for stream, events in streams.items() if events], checkpoints=checkpoints
            )
        except EventIdConflict as exc:
            kept = [e for e in streams.get(exc.stream, []) if e.id not in exc.ids]
            if not exc.ids or len(kept) == len(streams.get(exc.stream, [])):
                raise
            dropped += len(streams[exc.stream]) - len(kept)
            streams[exc.stream] = kept
            continue
        return sum(r.added for r in results), sum(r.skipped for r in results) + dropped


def check_expected_version(stream: str, expected: int, actual: int) -> None:
    """Raise WrongExpectedVersion unless ``actual`` satisfies ``expected``."""
    if expected == ANY:
        return
    if expected != actual:
        raise WrongExpectedVersion(stream, expected, actual)


def unseen_events(
    stream: str, events: Sequence[NewEvent], stored: Mapping[str, str]
) -> list[NewEvent]:
    """The events to append: those whose id is not in ``stored`` (id -> stream of
    the ids already in the store), each id once. An id stored in another stream is
    a conflict, never a silent skip."""
    clashes = frozenset(i for i, s in stored.items() if s != stream)
    if clashes:
        clash = min(clashes)
        raise EventIdConflict(f"event id {clash} is already stored in {stored[clash]!r}", stream, clashes)
    fresh, seen = [], set(stored)
    for e in events:
        if e.id not in seen:
            seen.add(e.id)
            fresh.append(e)
    return fresh


EVENT_COLUMNS = "id, stream, type, version, position, data, metadata, recorded_at"
"""The columns a SQL backend selects, in the order ``recorded_events`` reads them."""


def recorded_events(
    rows: Sequence[Sequence[Any]], fetch_chunks: Callable[[Iterable[str]], blobs.Chunks]
) -> list[RecordedEvent]:
    """Events from rows of ``EVENT_COLUMNS`` (data and metadata as stored by
    ``blobs.encode``); the chunks their long strings need are fetched in one go."""
    needed = {name for row in rows for raw in (row[5], row[6]) for name in blobs.references(raw)}
    chunks = fetch_chunks(needed) if needed else {}
    return [_recorded_event(row, chunks) for row in rows]


def _recorded_event(row: Sequence[Any], chunks: blobs.Chunks) -> RecordedEvent:
    id_, stream, type_, version, position, data, metadata, recorded_at = row
    return RecordedEvent(
        id=id_,
        stream=stream,
        type=type_,
        version=version,
        position=position,
        data=blobs.decode(data, lambda _: chunks),
        metadata=blobs.decode(metadata, lambda _: chunks),
        recorded_at=recorded_at,
    )


def display_url(url: str) -> str:
    """A store URL fit for messages and logs: its password masked."""
    url = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


def utc_now() -> str:
    """Now in UTC as ISO 8601 with microseconds and ``Z``. One clock reading: the
    seconds and the fraction read separately could straddle a second's tick and
    go back almost a second (a comment then sorted before an earlier one)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
