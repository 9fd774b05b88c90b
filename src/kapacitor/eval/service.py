"""``evaluate``: one session from the store to a stored eval, the path the CLI and
the server's job worker share (load the session, make the judge, run the
questions, append the events)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kapacitor.eval import session as session_mod
from kapacitor.eval.catalog import Catalog
from kapacitor.eval.judges import make_judge
from kapacitor.eval.record import record_eval
from kapacitor.eval.runner import EvalResult, Progress, Settings, run_eval
from kapacitor.projections.session_summary import SessionSummaries
from kapacitor.store.base import EventStore


class NoSuchSession(LookupError):
    """The store has no events for that session id."""


class NothingAnswered(RuntimeError):
    """The judge answered no question (each failed for its own reason): an eval
    with no score is not stored. The message names the first question's error."""


@dataclass
class EvalRequest:
    session_id: str
    judge: str
    model: str | None
    catalog: Catalog
    only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    settings: Settings = field(default_factory=Settings)


def evaluate(store: EventStore, store_url: str, request: EvalRequest, progress: Progress | None = None) -> EvalResult:
    """Run and store one eval; returns it. What is stored is what a reader can use:

    - every question answered: stored, ``ok``;
    - some answered, some failed (an invalid answer twice, a timeout, the budget,
      the judge gone mid-way): stored with the failed ones in ``summary.failed``
      (the Evaluation tab shows them "Not answered" with their error), not ``ok``;
    - none answered: nothing stored, ``NothingAnswered`` raised.

    Raises ``NoSuchSession``, ``CatalogError`` (a bad question name),
    ``ValueError`` (an unknown judge) or ``JudgeUnreachable`` (no key, no
    executable) before any judge call; ``JudgeUnreachable`` also when the judge's
    endpoint cannot be reached (the first calls fail, no question is retried)."""
    questions = request.catalog.select(request.only, request.skip)
    events = session_mod.session_events(store, request.session_id)
    if not events:
        raise NoSuchSession(f"no session {request.session_id!r} in the store")
    judge = make_judge(request.judge, request.model, store_url=store_url, session_id=request.session_id,
                       threshold=request.settings.threshold)
    view = session_mod.load(store, request.session_id)
    result = run_eval(view, judge, request.catalog, questions, request.settings, progress)
    if not result.verdicts:
        first = result.failed[0] if result.failed else {"question_id": "-", "error": "no question asked"}
        raise NothingAnswered(f"eval not stored: the judge answered no question ({first['question_id']}: {first['error']})")
    summaries = SessionSummaries()
    for event in events:
        summaries.apply(event)
    summary = summaries.sessions.get(request.session_id)
    record_eval(store, result, summary.as_json() if summary else None)
    return result
