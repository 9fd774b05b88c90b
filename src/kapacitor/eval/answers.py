"""What a judge must answer, and the checks its answer passes before it counts.

The judge fills ``ANSWER_SCHEMA`` (per question) or ``RETROSPECTIVE_SCHEMA``.
``validate_answer`` turns a reply into a ``Verdict`` or raises ``InvalidAnswer``
with a message the judge is shown on its one retry. The verdict is derived from
the score here, never taken from the judge; evidence must cite events of the
session (unknown ids are dropped and counted).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from kapacitor.eval.catalog import Question
from kapacitor.eval.session import SessionView

VERDICTS = {5: "pass", 4: "pass", 3: "warn", 2: "warn", 1: "fail"}
MAX_STRENGTHS, MAX_ISSUES, MAX_SUGGESTIONS = 3, 3, 5

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"type": "string"},
        "question_id": {"type": "string"},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "finding": {"type": "string", "description": "one or two sentences"},
        "evidence": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "event_id": {"type": "string", "description": "the [ref] of an entry of the transcript"},
                    "note": {"type": "string"},
                },
                "required": ["event_id", "note"],
            },
        },
        "recommendation": {"type": "string", "description": "required when score < 4, empty at 5"},
        "retain_fact": {"type": "string", "description": "optional: a durable fact about the repository"},
    },
    "required": ["category", "question_id", "score", "finding", "evidence", "recommendation"],
}

RETROSPECTIVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "assessment": {"type": "string"},
        "strengths": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_STRENGTHS},
        "issues": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_ISSUES},
        "suggestions": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": MAX_SUGGESTIONS,
            "description": "instructions an agent could follow, fit for the repo's agent instructions",
        },
    },
    "required": ["assessment", "strengths", "issues", "suggestions"],
}


class InvalidAnswer(ValueError):
    """A judge's reply that does not pass the checks; the message says why."""


@dataclass
class Verdict:
    """One question's validated answer. ``evidence`` items: ``event_id`` (full
    id), ``note``, and where it is shown (``chat_index``, ``anchor``, ``trace_node``)."""

    question_id: str
    category: str
    score: int
    verdict: str
    finding: str
    evidence: list[dict[str, Any]]
    recommendation: str = ""
    retain_fact: str = ""
    evidence_dropped: int = 0
    attempts: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        return out | self.extra


def parsed(reply: Any) -> dict[str, Any]:
    """The reply as an object: a dict as is, text as JSON (a ```json fence allowed)."""
    if isinstance(reply, dict):
        return reply
    if not isinstance(reply, str):
        raise InvalidAnswer(f"expected a JSON object, got {type(reply).__name__}")
    text = reply.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidAnswer(f"the answer is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidAnswer("the answer must be a JSON object")
    return value


def verdict_of(score: int) -> str:
    return VERDICTS[score]


def validate_answer(reply: Any, question: Question, view: SessionView) -> Verdict:
    answer = parsed(reply)
    if answer.get("question_id") not in (None, "", question.id):
        raise InvalidAnswer(f"question_id must be {question.id!r}, not {answer.get('question_id')!r}")
    score = answer.get("score")
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidAnswer(f"score must be an integer from 1 to 5, not {score!r}")
    finding = answer.get("finding")
    if not isinstance(finding, str) or not finding.strip():
        raise InvalidAnswer("finding must be one or two sentences")
    recommendation = answer.get("recommendation") or ""
    if not isinstance(recommendation, str):
        raise InvalidAnswer("recommendation must be text")
    if score < 4 and not recommendation.strip():
        raise InvalidAnswer(f"a score of {score} needs a recommendation")
    retain = answer.get("retain_fact") or ""
    if not isinstance(retain, str):
        raise InvalidAnswer("retain_fact must be text")
    raw_evidence = answer.get("evidence") or []
    if not isinstance(raw_evidence, list):
        raise InvalidAnswer("evidence must be a list of {event_id, note}")
    evidence, dropped = [], 0
    for item in raw_evidence:
        ref, note = (item.get("event_id"), item.get("note", "")) if isinstance(item, dict) else (item, "")
        full = view.resolve(str(ref)) if ref else None
        if full is None:
            dropped += 1
            continue
        evidence.append({"event_id": full, "note": str(note or "")} | view.position(full))
    return Verdict(
        question.id, question.category, score, verdict_of(score), finding.strip(), evidence,
        recommendation.strip() if score < 5 else "", retain.strip(), dropped,
    )


def validate_retrospective(reply: Any) -> dict[str, Any]:
    """``assessment``, and at most 3 strengths, 3 issues, 5 suggestions (extra ones cut)."""
    answer = parsed(reply)
    assessment = answer.get("assessment")
    if not isinstance(assessment, str) or not assessment.strip():
        raise InvalidAnswer("assessment must be a non-empty text")
    out: dict[str, Any] = {"assessment": assessment.strip()}
    for key, limit in (("strengths", MAX_STRENGTHS), ("issues", MAX_ISSUES), ("suggestions", MAX_SUGGESTIONS)):
        items = answer.get(key) or []
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise InvalidAnswer(f"{key} must be a list of texts")
        out[key] = [i.strip() for i in items if i.strip()][:limit]
    return out
