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
    """Run and store one eval. Raises ``NoSuchSession``, ``CatalogError`` (a bad
    question name) or ``ValueError`` (an unknown judge) before any judge call."""
    questions = request.catalog.select(request.only, request.skip)
    events = session_mod.session_events(store, request.session_id)
    if not events:
        raise NoSuchSession(f"no session {request.session_id!r} in the store")
    view = session_mod.load(store, request.session_id)
    judge = make_judge(request.judge, request.model, store_url=store_url, session_id=request.session_id,
                       threshold=request.settings.threshold)
    result = run_eval(view, judge, request.catalog, questions, request.settings, progress)
    summaries = SessionSummaries()
    for event in events:
        summaries.apply(event)
    summary = summaries.sessions.get(request.session_id)
    record_eval(store, result, summary.as_json() if summary else None)
    return result
