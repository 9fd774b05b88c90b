"""A real SQLite store seen through sparse global positions, as a KurrentDB adapter
would give them (commit positions are byte offsets in its log: ordered, far
apart, not counts). Whatever reads the log through it must only compare and
store positions; arithmetic on them shows up as wrong lags and progress."""

from __future__ import annotations

import dataclasses
from typing import Any

from kapacitor.store.base import AppendResult, EventStore

STRIDE, OFFSET = 4096, 977
"""The sparse position of the dense position p is p * STRIDE + OFFSET."""


def sparse(dense: int) -> int:
    return dense * STRIDE + OFFSET if dense else 0


def dense(position: int) -> int:
    """The last dense position at or before a sparse one (0 before the first)."""
    return max(0, (position - OFFSET) // STRIDE)


class SparsePositions:
    """``EventStore`` over ``inner``, every position handed out or taken in sparse."""

    def __init__(self, inner: EventStore):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # path, url, stream metadata, rewrite, close, ...
        return getattr(self.inner, name)

    def _result(self, result: AppendResult) -> AppendResult:
        return dataclasses.replace(result, position=sparse(result.position))

    def append(self, stream, events, expected_version=-2):  # type: ignore[no-untyped-def]
        return self._result(self.inner.append(stream, events, expected_version))

    def append_many(self, batches, stream_metadata=None, checkpoints=None):  # type: ignore[no-untyped-def]
        return [self._result(r) for r in self.inner.append_many(batches, stream_metadata, checkpoints)]

    def read_stream(self, stream, from_version=0, *, backwards=False, limit=None):  # type: ignore[no-untyped-def]
        events = self.inner.read_stream(stream, from_version, backwards=backwards, limit=limit)
        return [dataclasses.replace(e, position=sparse(e.position)) for e in events]

    def read_all(self, after=0, *, limit=None):  # type: ignore[no-untyped-def]
        return [dataclasses.replace(e, position=sparse(e.position)) for e in self.inner.read_all(dense(after), limit=limit)]

    def head_position(self) -> int:
        return sparse(self.inner.head_position())

    def count_after(self, after: int = 0) -> int:
        return self.inner.count_after(dense(after))
