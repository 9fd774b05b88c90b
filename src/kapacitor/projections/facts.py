"""Read model ``facts``: every fact with its lifecycle and how often it was used.

Folds the memory streams' events (see ``memory/facts.py``): ``FactRetained``
adds an active fact; ``FactSuperseded`` and ``FactRetired`` end it (the row is
kept, with its status, for the history on the Memory page); ``FactsRecalled``
counts a use of each fact it names. Guidance from eval retrospectives
(``SessionEvalCompleted``, see ``memory/guidance.py``) becomes facts of category
``guidance`` in the evaluated session's repository (its directory when it has no
GitHub remote, as judges' own facts do), retained by the judge; their
ids derive from the eval, so a rebuild gives the same ids and a retire or
supersede of one keeps applying.

It reads the ``sessions`` read model for the evaluated session's repository, so
the catalog lists it after ``sessions``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kapacitor.events import RecordedEvent
from kapacitor.memory import guidance
from kapacitor.memory.facts import GUIDANCE, ORG, normalized
from kapacitor.projections.repositories import group_of
from kapacitor.projections.runner import Projection
from kapacitor.store.readdb import ReadDb


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE facts (fact_id TEXT PRIMARY KEY, scope TEXT NOT NULL, category TEXT NOT NULL,"
        ' text TEXT NOT NULL, status TEXT NOT NULL, retained_at TEXT NOT NULL, "by" TEXT NOT NULL,'
        ' "user" TEXT NOT NULL, session_id TEXT NOT NULL, event_ids TEXT NOT NULL, eval_id TEXT NOT NULL,'
        " superseded_by TEXT NOT NULL, ended_at TEXT NOT NULL, uses INTEGER NOT NULL, last_used TEXT NOT NULL,"
        " stream TEXT NOT NULL, position BIGINT NOT NULL, norm TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX facts_scope ON facts (scope, status)")


def _kapacitor(data: dict[str, Any]) -> dict[str, Any]:
    return (data.get("extensions") or {}).get("kapacitor") or {}


def _insert(conn: ReadDb, values: dict[str, Any]) -> None:
    row = values | {"norm": normalized(values["text"]), "event_ids": json.dumps(values["event_ids"])}
    conn.execute(
        "INSERT INTO facts VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, '', '', 0, '', ?, ?, ?)"
        " ON CONFLICT (fact_id) DO NOTHING",
        [row[k] for k in ("fact_id", "scope", "category", "text", "retained_at", "by", "user", "session_id",
                          "event_ids", "eval_id", "stream", "position", "norm")],
    )


def _retained(conn: ReadDb, event: RecordedEvent) -> None:
    """Our facts carry ``fact_id``, ``scope``, ``category`` and ``provenance``; an
    eval judge's ``retain_fact`` (``source: eval``) carries ``session_id``,
    ``eval_id``, ``judge``, ``repository`` and ``evidence`` instead."""
    ours = _kapacitor(event.data)
    source = ours.get("provenance") or {}
    judged = ours.get("source") == "eval"
    _insert(conn, {
        "fact_id": ours.get("fact_id") or event.id.replace("-", "")[:12],
        "scope": ours.get("scope") or ours.get("repository") or ORG,
        "category": ours.get("category") or "note", "text": event.data.get("fact", ""),
        "retained_at": event.data.get("retained_at", ""),
        "by": "judge" if judged else source.get("by", ""),
        "user": ours.get("judge", "") if judged else source.get("user", ""),
        "session_id": source.get("session_id") or ours.get("session_id") or "",
        "event_ids": source.get("event_ids") or ours.get("evidence") or [],
        "eval_id": source.get("eval_id") or ours.get("eval_id") or "",
        "stream": event.stream, "position": event.position,
    })


def _ended(conn: ReadDb, event: RecordedEvent) -> None:
    data = event.data
    if event.type == "FactSuperseded":
        conn.execute("UPDATE facts SET status = 'superseded', superseded_by = ?, ended_at = ? WHERE fact_id = ? AND status = 'active'",
                     (data.get("superseded_by", ""), data.get("superseded_at", ""), data.get("fact_id", "")))
    else:
        conn.execute("UPDATE facts SET status = 'retired', ended_at = ? WHERE fact_id = ? AND status = 'active'",
                     (data.get("retired_at", ""), data.get("fact_id", "")))


def _recalled(conn: ReadDb, event: RecordedEvent) -> None:
    at = event.data.get("recalled_at", "")
    conn.executemany(f"UPDATE facts SET uses = uses + 1, last_used = {conn.greatest('last_used', '?')} WHERE fact_id = ?",
                     [(at, fact_id) for fact_id in event.data.get("fact_ids") or []])


def _evaluated(conn: ReadDb, event: RecordedEvent) -> None:
    session_id = guidance.session_of_eval(event)
    found = conn.execute("SELECT row FROM sessions WHERE session_id = ?", (session_id,)).fetchone() if session_id else None
    repository = group_of(json.loads(found[0]))[0] if found else None
    for entry in guidance.entries(event):
        _insert(conn, {
            "fact_id": entry.fact_id, "scope": repository or ORG, "category": GUIDANCE, "text": entry.text,
            "retained_at": event.data.get("timestamp", ""), "by": "judge", "user": entry.judge,
            "session_id": session_id, "event_ids": entry.event_ids, "eval_id": entry.eval_id,
            "stream": event.stream, "position": event.position,
        })


_HANDLERS = {
    "FactRetained": _retained,
    "FactSuperseded": _ended,
    "FactRetired": _ended,
    "FactsRecalled": _recalled,
    "SessionEvalCompleted": _evaluated,
}


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    for event in events:
        handler = _HANDLERS.get(event.type)
        if handler:
            handler(conn, event)


PROJECTION = Projection("facts", 1, ("facts",), setup, apply)
