"""The one way text written through Kapacitor itself enters the store, masked.

Transcripts are masked where they come in (the hook, ingest, import). What
people and agents write through Kapacitor's own pages, CLI, JSON API and MCP
tools is not a transcript line: comments and their edits, mark reasons,
memory facts (``memory add``, the Memory page, ``POST /api/memory/facts``,
which the MCP ``remember`` tool calls, edits and retirements), a judge's
verdicts and retained facts, and reviewers' comments. An agent's
``remember`` may copy a secret it saw in a tool output, and recall would then
put it in every later session's context, so these events are masked here,
with the installation's one rule set, before they are appended. Each event's
whole data is masked as its JSON text (as ``kapacitor scrub`` masks a stored
event), so what is written equals what a scrub would leave.

Modules that append such events call ``append`` or ``append_many`` here,
never the store's own methods (``tests/test_authored.py`` walks the source
for any other append).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kapacitor.events import NewEvent
from kapacitor.normalize import redact
from kapacitor.store.base import ANY, AppendResult, EventStore


def masked(events: Sequence[NewEvent]) -> list[NewEvent]:
    """``events`` with every secret the rules find in their data masked."""
    rules = redact.default()
    out = []
    for event in events:
        data = rules.redact_json(event.data)
        out.append(event if data is event.data else replace(event, data=data))
    return out


def append(store: EventStore, stream: str, events: Sequence[NewEvent], expected_version: int = ANY) -> list[NewEvent]:
    """``store.append`` of ``events`` masked; returns them as appended (masked)."""
    written = masked(events)
    store.append(stream, written, expected_version)
    return written


def append_many(store: EventStore, batches: Sequence[tuple[str, Sequence[NewEvent], int]]) -> list[AppendResult]:
    """``store.append_many`` of ``batches`` (stream, events, expected version), every event masked."""
    return store.append_many([(stream, masked(events), expected) for stream, events, expected in batches])
