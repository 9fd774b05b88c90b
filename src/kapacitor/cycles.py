"""Building a large tree of fresh objects (a read model catching up, a huge
session's chat) with Python's cycle collector held off.

Decoded events and the items folded from them hold no reference cycles, yet
allocating them makes the collector run over and over, and each full run walks
every older object: a 40,000-event chat spends about 40% of its build there.
``young_collections_only`` holds it off while such a build runs; the builder
collects the youngest generation itself where it drops a batch (the runner)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def young_collections_only() -> Iterator[None]:
    """The cycle collector off while the block runs (process-wide: threads share
    it), back on when the last block holding it off ends, if it was on before."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
