"""Storing an eval: ``SessionEvalCompleted`` on the session's eval stream, and
each judge's ``retain_fact`` as a ``FactRetained`` with its provenance, in one
transaction. Reviews (``EvalVerdictReviewed``) go on the same eval stream.

The eval stream (``SessionEval-{session}``) is not one of the session's agent
streams, so the activity folds (sessions, live status) never see an eval: it
does not move the session's end time or light its live dot.
"""

from __future__ import annotations

from typing import Any

from kapacitor import authored
from kapacitor.eval.runner import EvalResult
from kapacitor.events import (
    EvalVerdictReviewed,
    FactRetained,
    NewEvent,
    agent_memory_stream,
    event_id,
    session_eval_stream,
    to_new_event,
)
from kapacitor.store.base import ANY, EventStore, utc_now

FACTS_APP = "kapacitor"
"""The app name of the memory stream judges' facts go to (``AgentMemory-kapacitor-{user}``)."""


def record_eval(store: EventStore, result: EvalResult, session: dict[str, Any] | None = None) -> None:
    """Append the eval and its retained facts. ``session`` (a sessions row) gives
    the facts' repository and user; without it they go to user ``unknown``."""
    session = session or {}
    data = result.as_event_data()
    evaluation = NewEvent(result.eval_id, "SessionEvalCompleted", data, {"eval": {"session_id": result.session_id}})
    facts: list[NewEvent] = []
    for verdict in result.verdicts:
        if not verdict.retain_fact:
            continue
        fact = FactRetained(
            fact=verdict.retain_fact,
            retained_at=data["timestamp"],
            extensions={"kapacitor": {
                "source": "eval", "session_id": result.session_id, "eval_id": result.eval_id,
                "question_id": verdict.question_id, "judge": f"{result.backend}/{result.model}",
                "repository": session.get("repository") or session.get("cwd") or "",
                "evidence": [e["event_id"] for e in verdict.evidence],
            }},
        )
        facts.append(to_new_event(fact, event_id("fact", result.eval_id, verdict.question_id)))
    batches: list[tuple[str, list[NewEvent], int]] = [(session_eval_stream(result.session_id), [evaluation], ANY)]
    if facts:
        batches.append((agent_memory_stream(FACTS_APP, session.get("user") or "unknown"), facts, ANY))
    authored.append_many(store, batches)


def record_review(store: EventStore, session_id: str, eval_id: str, question_id: str, agree: bool,
                  reviewer: str, comment: str = "") -> str:
    """Append one reviewer's agree/disagree on a verdict; returns the event id.
    A reviewer's later review of the same verdict supersedes the earlier one."""
    review = EvalVerdictReviewed(utc_now(), eval_id, question_id, agree, reviewer, comment.strip())
    new = to_new_event(review, event_id("review", eval_id, question_id, reviewer, review.timestamp))
    authored.append(store, session_eval_stream(session_id), [new])
    return new.id


def evals_of(store: EventStore, session_id: str) -> list[dict[str, Any]]:
    """The session's evals, oldest first (the ``SessionEvalCompleted`` data)."""
    return [e.data for e in store.read_stream(session_eval_stream(session_id)) if e.type == "SessionEvalCompleted"]
