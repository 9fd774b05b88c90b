"""``utc_now`` stamps comments, marks, facts and evals: the times they are listed by."""

from __future__ import annotations

import time
from types import SimpleNamespace

from kapacitor.store import base


def test_utc_now_reads_the_clock_once_so_a_seconds_tick_cannot_send_it_back(monkeypatch):
    """Seconds and fraction from two readings straddling a tick gave N.000000 for a
    moment just before N+1: a comment then sorted before one made earlier."""
    readings = iter([1_700_000_000.9999995, 1_700_000_001.0000003])

    def gmtime(seconds: float | None = None) -> time.struct_time:
        return time.gmtime(next(readings) if seconds is None else seconds)

    monkeypatch.setattr(base, "time", SimpleNamespace(time=lambda: next(readings), gmtime=gmtime, strftime=time.strftime))
    assert base.utc_now() == "2023-11-14T22:13:20.999999Z"

