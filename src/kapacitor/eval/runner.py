"""Running one eval: every chosen question to the judge (concurrently), each
answer validated (one retry with the error, then a failed question), the scores
aggregated, one retrospective call, and the result as events to append.

Aggregation: a category's score is the rounded mean of its questions' scores,
the overall score the rounded mean of the category scores (halves round up).
``max_cost`` stops asking once the judges' cost so far reaches it: the
questions not yet asked are recorded as failed, and the eval counts as failed.
A judge that cannot be reached (``JudgeUnreachable``) is not retried and stops
the eval at once: ``run_eval`` raises it when no question was answered yet, and
otherwise records the questions not asked (and the retrospective) as failed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from kapacitor.eval import answers, prompts
from kapacitor.eval.catalog import Catalog, Question
from kapacitor.eval.compact import DEFAULT_THRESHOLD, compact_trace
from kapacitor.eval.judges import Judge, JudgeError, JudgeUnreachable, Request, merge_usage, provider_of, usage_cost
from kapacitor.eval.session import SessionView
from kapacitor.eval.tools import SessionTools
from kapacitor.pricing import price_source
from kapacitor.store.base import utc_now

Progress = Callable[[dict[str, Any]], None]


@dataclass
class Settings:
    threshold: int = DEFAULT_THRESHOLD
    parallel: int = 4
    timeout: float = 180.0
    max_cost: float | None = None
    chain: bool = False
    """Ask one question after another, each judge shown the verdicts before it
    (consistent answers, slower); otherwise ``parallel`` at once, independently."""


@dataclass
class EvalResult:
    """What ``SessionEvalCompleted`` records (see ``as_event_data``)."""

    eval_id: str
    session_id: str
    backend: str
    model: str
    catalog_version: str
    verdicts: list[answers.Verdict]
    failed: list[dict[str, str]]
    categories: list[dict[str, Any]]
    overall: int | None
    retrospective: dict[str, Any] | None
    usage: dict[str, dict[str, int]]
    cost_usd: Decimal | None
    started: str
    duration_seconds: float
    threshold: int
    stopped_by_budget: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every question answered and the retrospective written."""
        return not self.failed and self.retrospective is not None and not self.stopped_by_budget

    def as_event_data(self) -> dict[str, Any]:
        return {
            "timestamp": utc_now(),
            "eval_id": self.eval_id,
            "scores": [v.as_json() for v in self.verdicts],
            "summary": {
                "session_id": self.session_id,
                "judge": {"backend": self.backend, "model": self.model},
                "catalog_version": self.catalog_version,
                "categories": self.categories,
                "overall": self.overall,
                "retrospective": self.retrospective,
                "failed": self.failed,
                "usage": self.usage,
                "cost_usd": None if self.cost_usd is None else float(round(self.cost_usd, 8)),
                "price_source": price_source(),
                "started": self.started,
                "duration_seconds": round(self.duration_seconds, 3),
                "threshold": self.threshold,
                "evidence_dropped": sum(v.evidence_dropped for v in self.verdicts),
                "stopped_by_budget": self.stopped_by_budget,
            },
            "extensions": {},
        }


def rounded_mean(values: list[int | float]) -> int | None:
    if not values:
        return None
    return int(Decimal(sum(values)) / len(values) + Decimal("0.5"))


def aggregate(catalog: Catalog, verdicts: list[answers.Verdict]) -> tuple[list[dict[str, Any]], int | None]:
    """Per category (in display order, those with answers): ``id``, ``title``,
    ``score`` (rounded mean), ``mean``, ``questions``; and the overall score."""
    out = []
    for category in catalog.categories:
        scores = [v.score for v in verdicts if v.category == category.id]
        if scores:
            out.append({"id": category.id, "title": category.title, "score": rounded_mean(scores),
                        "mean": round(sum(scores) / len(scores), 3), "questions": len(scores)})
    return out, rounded_mean([c["score"] for c in out])


class _Budget:
    def __init__(self, limit: float | None, provider: str):
        self.limit, self.provider, self.lock = limit, provider, threading.Lock()
        self.usage: dict[str, dict[str, int]] = {}

    def add(self, usage: dict[str, dict[str, int]]) -> None:
        with self.lock:
            merge_usage(self.usage, usage)

    def spent(self) -> Decimal | None:
        with self.lock:
            return usage_cost(self.usage, self.provider)

    def exhausted(self) -> bool:
        if self.limit is None:
            return False
        spent = self.spent()
        return spent is not None and spent >= Decimal(str(self.limit))


def run_eval(
    view: SessionView,
    judge: Judge,
    catalog: Catalog,
    questions: list[Question],
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> EvalResult:
    """Ask every question in ``questions`` about the session, then the retrospective.
    Raises ``JudgeUnreachable`` (after the calls in flight end) when the judge
    cannot be reached and no question was answered; once one was, the questions
    left are recorded as failed, "not asked"."""
    settings = settings or Settings()
    notify = progress or (lambda _: None)
    started, clock = utc_now(), time.monotonic()
    budget = _Budget(settings.max_cost, provider_of(judge.backend))
    trace = compact_trace(view, settings.threshold)
    tools = SessionTools(view, settings.threshold)
    summary = tools.summary()
    total = len(questions)
    done_lock, done = threading.Lock(), [0]
    stopped = threading.Event()
    unreachable: list[JudgeUnreachable] = []

    def ask(question: Question) -> answers.Verdict | dict[str, str] | None:
        if unreachable:
            return None
        if budget.exhausted():
            stopped.set()
            outcome: answers.Verdict | dict[str, str] = _failed(question, f"not asked: the budget of ${settings.max_cost} is spent")
        else:
            notify({"type": "question", "state": "started", "question_id": question.id, "total": total})
            material = summary if question.needs_tools else trace
            if settings.chain and earlier:
                material = prompts.earlier_verdicts([v.as_json() for v in earlier]) + "\n\n" + material
            try:
                outcome = _ask_question(question, judge, view, tools if question.needs_tools else None,
                                        material, settings, budget, notify)
            except JudgeUnreachable as exc:
                unreachable.append(exc)
                return None
            if isinstance(outcome, answers.Verdict):
                earlier.append(outcome)
        with done_lock:
            done[0] += 1
            count = done[0]
        if isinstance(outcome, answers.Verdict):
            notify({"type": "question", "state": "done", "question_id": question.id, "score": outcome.score,
                    "verdict": outcome.verdict, "done": count, "total": total})
        else:
            notify({"type": "question", "state": "failed", "question_id": question.id, "error": outcome["error"],
                    "done": count, "total": total})
        return outcome

    earlier: list[answers.Verdict] = []  # for --chain, where questions run one at a time
    with ThreadPoolExecutor(max_workers=1 if settings.chain else max(1, settings.parallel),
                            thread_name_prefix="judge") as pool:
        outcomes = list(pool.map(ask, questions))
    verdicts = [o for o in outcomes if isinstance(o, answers.Verdict)]
    if unreachable and not verdicts:
        raise unreachable[0]
    lost = f"not asked: {unreachable[0]}" if unreachable else ""
    failed = [o if isinstance(o, dict) else _failed(q, lost) for q, o in zip(questions, outcomes, strict=True)
              if not isinstance(o, answers.Verdict)]
    categories, overall = aggregate(catalog, verdicts)
    retrospective = None
    if unreachable:
        failed.append({"question_id": "retrospective", "category": "", "error": lost})
    elif verdicts and not budget.exhausted():
        notify({"type": "retrospective", "state": "started"})
        retrospective = _retrospective(judge, verdicts, categories, overall, settings, budget, failed)
        notify({"type": "retrospective", "state": "done" if retrospective else "failed"})
    elif verdicts:
        stopped.set()
        failed.append({"question_id": "retrospective", "category": "", "error": "not asked: the budget is spent"})
    return EvalResult(
        eval_id=str(uuid.uuid4()), session_id=view.session_id, backend=judge.backend, model=judge.model,
        catalog_version=catalog.version, verdicts=verdicts, failed=failed, categories=categories,
        overall=overall, retrospective=retrospective, usage=budget.usage, cost_usd=budget.spent(),
        started=started, duration_seconds=time.monotonic() - clock, threshold=settings.threshold,
        stopped_by_budget=stopped.is_set(),
    )


def _failed(question: Question, error: str) -> dict[str, str]:
    return {"question_id": question.id, "category": question.category, "error": error}


T = TypeVar("T")


class _Failed(Exception):
    """Both attempts failed; the message is the second attempt's error."""


def _asked_twice(judge: Judge, prompt: str, schema: dict[str, Any], tools: SessionTools | None, settings: Settings,
                 budget: _Budget, validate: Callable[[Any], T], on_retry: Callable[[str], None]) -> tuple[T, int]:
    """The validated answer and the attempt that gave it: a failing first answer
    is asked again once, with its error; raises ``_Failed`` after the second."""
    error = ""
    for attempt in (1, 2):
        request = Request(prompts.SYSTEM, prompts.retry_prompt(prompt, error) if error else prompt,
                          schema, tools, settings.timeout)
        try:
            reply = judge.ask(request)
            budget.add(reply.usage)
            return validate(reply.answer), attempt
        except JudgeUnreachable:
            raise
        except (answers.InvalidAnswer, JudgeError) as exc:
            budget.add(getattr(exc, "usage", {}))
            error = str(exc)
            if attempt == 1:
                on_retry(error)
    raise _Failed(error)


def _ask_question(question: Question, judge: Judge, view: SessionView, tools: SessionTools | None,
                  material: str, settings: Settings, budget: _Budget, notify: Progress) -> answers.Verdict | dict[str, str]:
    prompt = prompts.question_prompt(question, material, tools is not None)
    try:
        verdict, attempt = _asked_twice(
            judge, prompt, answers.ANSWER_SCHEMA, tools, settings, budget,
            lambda reply: answers.validate_answer(reply, question, view),
            lambda error: notify({"type": "question", "state": "retry", "question_id": question.id, "error": error}),
        )
    except _Failed as exc:
        return _failed(question, str(exc))
    verdict.attempts = attempt
    return verdict


def _retrospective(judge: Judge, verdicts: list[answers.Verdict], categories: list[dict[str, Any]],
                   overall: int | None, settings: Settings, budget: _Budget,
                   failed: list[dict[str, str]]) -> dict[str, Any] | None:
    prompt = prompts.retrospective_prompt([v.as_json() for v in verdicts], categories, overall)
    try:
        retrospective, _ = _asked_twice(judge, prompt, answers.RETROSPECTIVE_SCHEMA, None, settings, budget,
                                        answers.validate_retrospective, lambda error: None)
    except (_Failed, JudgeUnreachable) as exc:
        failed.append({"question_id": "retrospective", "category": "", "error": str(exc)})
        return None
    return retrospective
