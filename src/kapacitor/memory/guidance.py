"""Guidance from past sessions: what eval retrospectives suggest becomes facts.

An eval (``SessionEvalCompleted``, written by ``kapacitor eval``) ends with a
retrospective whose ``suggestions`` say what the next session should do
differently. Each suggestion becomes a fact of category ``guidance`` in the
evaluated session's repository, retained by the judge and linked to the eval
(and through it to the session), so it is recalled at the next session start
like any fact. The ``facts`` projection calls ``entries`` for every eval; this is
the one place that knows the eval's shape:

    data.eval_id
    data.summary.session_id            (else metadata.eval.session_id)
    data.summary.judge.backend/.model  (who judged)
    data.summary.retrospective.suggestions: [str, ...]

Every suggestion counts as meant for agents: the retrospective prompt asks for
suggestions to the agent. A guidance entry's id derives from the eval id and the
suggestion's index, so a rebuild gives the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass

from kapacitor.events import RecordedEvent, event_id


@dataclass(frozen=True)
class Entry:
    fact_id: str
    text: str
    eval_id: str
    judge: str
    event_ids: list[str]


def session_of_eval(event: RecordedEvent) -> str:
    summary = event.data.get("summary") or {}
    return str(summary.get("session_id") or (event.metadata.get("eval") or {}).get("session_id") or "")


def entries(event: RecordedEvent) -> list[Entry]:
    """The guidance entries of one ``SessionEvalCompleted`` (none when it has no
    retrospective, e.g. a failed or budget-stopped eval)."""
    summary = event.data.get("summary") or {}
    retrospective = summary.get("retrospective") or {}
    suggestions = retrospective.get("suggestions") if isinstance(retrospective, dict) else None
    if not isinstance(suggestions, list):
        return []
    eval_id = str(event.data.get("eval_id") or event.id)
    judge = summary.get("judge") or {}
    judged_by = "/".join(str(judge[k]) for k in ("backend", "model") if judge.get(k)) if isinstance(judge, dict) else ""
    return [
        Entry(event_id("guidance", eval_id, i).replace("-", "")[:12], " ".join(text.split()), eval_id, judged_by, [event.id])
        for i, text in enumerate(suggestions)
        if isinstance(text, str) and text.strip()
    ]
