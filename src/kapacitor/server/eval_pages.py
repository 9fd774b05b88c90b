"""The Evaluation tab and everything around it: ``/sessions/{id}/eval`` (and
``.json``), a Run eval button whose job streams its progress over SSE, a
comparison of two evals, reviewers' agree/disagree, and ``/evals``, the
overview of scores per repository, question and week with the judge-reviewer
agreement per question.

Every route asks ``eval.access.session_visible`` first (the overview counts
only what ``visible_sessions`` lets through): an eval is as private as its session.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sse_starlette.sse import EventSourceResponse

from kapacitor.eval.access import reviewer, session_visible, visible_sessions
from kapacitor.eval.jobs import EvalWorker, TooManyJobs
from kapacitor.eval.record import record_review
from kapacitor.projections import evals as evals_model
from kapacitor.server import live
from kapacitor.server.form_query import Checked, Plain, form_page, lenient
from kapacitor.server.sessions_pages import TabQuery, tab_page
from kapacitor.server.web import conn, not_found, render, render_fragment

router = APIRouter()
JOB_POLL_SECONDS = 0.3


def _evals(request: Request, session_id: str) -> list[dict[str, Any]]:
    return evals_model.session_evals(conn(request), session_id)


def _chosen(evals: list[dict[str, Any]], eval_id: str) -> dict[str, Any] | None:
    if not evals:
        return None
    if not eval_id:
        return evals[0]
    found = next((e for e in evals if e["eval_id"] == eval_id), None)
    if found is None:
        raise not_found(f"eval {eval_id!r}")
    return found


def _links(session_id: str, evidence: dict[str, Any]) -> dict[str, str]:
    """Where an evidence item opens: the chat loaded that far, at its anchor; the trace at its node."""
    sid = quote(session_id, safe="")
    out = {}
    if evidence.get("chat_index") is not None:
        out["chat"] = f"/sessions/{sid}?upto={evidence['chat_index']}#{evidence['anchor']}"
    if evidence.get("trace_node"):
        out["trace"] = f"/sessions/{sid}/trace#node={quote(evidence['trace_node'], safe='')}"
    return out


def _tab_body(request: Request, session: dict[str, Any], eval_id: str) -> Markup:
    evals = _evals(request, session["session_id"])
    chosen = _chosen(evals, eval_id)
    return Markup(render_fragment(
        request, "_eval.html", session=session, evals=evals, ev=chosen, links=_links, catalog_titles=_category_titles(chosen),
    ))


def _category_titles(chosen: dict[str, Any] | None) -> dict[str, str]:
    return {c["id"]: c["title"] for c in (chosen or {}).get("summary", {}).get("categories", [])}


@router.get("/sessions/{session_id}/eval.json", summary="A session's evals, newest first")
def eval_json(request: Request, session_id: str) -> list[dict[str, Any]]:
    """Each ``SessionEvalCompleted``'s data (docs/eval.md), verdicts with their ``reviews``."""
    session_visible(request, session_id)
    return _evals(request, session_id)


@dataclass(frozen=True)
class EvalQuery(TabQuery):
    """The evaluation tab's query: ``eval``, the eval shown (default: the newest)."""

    eval: str = ""


@router.get("/sessions/{session_id}/eval", response_class=HTMLResponse, summary="Session page: evaluation tab")
def eval_page(request: Request, session_id: str, asked: Annotated[Checked[EvalQuery], Depends(lenient(EvalQuery))]) -> HTMLResponse:
    session = session_visible(request, session_id)
    chosen = asked.value.eval
    return tab_page(request, session, "eval", lambda: _tab_body(request, session, chosen), asked)


@dataclass(frozen=True)
class CompareQuery:
    """The two evals compared, ``a`` and ``b`` (either one missing: the newest)."""

    a: str = ""
    b: str = ""


@router.get("/sessions/{session_id}/eval/compare", response_class=HTMLResponse, summary="Two evals side by side")
def compare_page(request: Request, session_id: str, asked: Annotated[Checked[CompareQuery], Depends(lenient(CompareQuery))]) -> HTMLResponse:
    """Evals ``a`` and ``b`` (either one missing: the newest); a bad ``tz``: the
    session page, the problem where the comparison would be (422)."""
    session = session_visible(request, session_id)
    if asked.problems:
        return form_page(request, "session.html", asked.problems, session=session, tab="eval", body=Markup(""), no_form=True)
    a, b = asked.value.a, asked.value.b
    evals = _evals(request, session_id)
    first, second = _chosen(evals, a), _chosen(evals, b)
    if first is None or second is None:
        raise not_found(f"eval {a if first is None else b!r}")
    rows = []
    scores_b = {s["question_id"]: s for s in second["scores"]}
    ids = [s["question_id"] for s in first["scores"]] + [q for q in scores_b if q not in {s["question_id"] for s in first["scores"]}]
    scores_a = {s["question_id"]: s for s in first["scores"]}
    for qid in ids:
        sa, sb = scores_a.get(qid), scores_b.get(qid)
        delta = sb["score"] - sa["score"] if sa and sb else None
        rows.append({"question_id": qid, "a": sa, "b": sb, "delta": delta})
    body = Markup(render_fragment(request, "_eval_compare.html", session=session, a=first, b=second, rows=rows))
    return render(request, "session.html", session=session, tab="eval", body=body)


@router.post("/sessions/{session_id}/eval/run", summary="Queue an eval of the session (Run eval)",
             responses={429: {"description": "the person has as many evals queued or running as they may"
                                             " (`max_jobs`): `detail` says so in one line"}})
def run_eval(request: Request, session_id: str, questions: Annotated[str, Form()] = "") -> dict[str, str]:
    """Returns ``job_id`` and ``events``, the SSE URL of the job's progress. Each
    person (the signed-in user; without ``--auth``, this machine's) may have
    ``max_jobs`` evals queued or running at once (docs/eval.md): one more is 429."""
    session_visible(request, session_id)
    only = [q.strip() for q in questions.split(",") if q.strip()]
    try:
        job_id = _worker(request).submit(session_id, "manual", only, person=reviewer(request))
    except TooManyJobs as exc:
        raise HTTPException(429, str(exc)) from None
    sid = quote(session_id, safe="")
    return {"job_id": job_id, "events": f"/sessions/{sid}/eval/jobs/{job_id}/events",
            "json": f"/sessions/{sid}/eval/jobs/{job_id}.json"}


def _worker(request: Request) -> EvalWorker:
    """The eval job queue (in the store's own database, on either backend)."""
    return request.app.state.eval_worker  # type: ignore[no-any-return]


def _job(request: Request, session_id: str, job_id: str) -> dict[str, Any]:
    session_visible(request, session_id)
    found = _worker(request).job(job_id)
    if found is None or found["session_id"] != session_id:
        raise not_found(f"eval job {job_id!r}")
    return found  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}/eval/jobs/{job_id}.json", summary="An eval job's state and progress")
def job_json(request: Request, session_id: str, job_id: str) -> dict[str, Any]:
    return _job(request, session_id, job_id)


@router.get("/sessions/{session_id}/eval/jobs/{job_id}/events", summary="An eval job's progress (SSE)")
async def job_events(request: Request, session_id: str, job_id: str) -> EventSourceResponse:
    """``progress`` messages (the runner's: question started/done/retry/failed,
    retrospective) as they happen, then one ``done`` or ``failed`` with the job,
    once the read models hold what it recorded (at most 30 s later). The stream
    follows its viewer's rights as the live hub's streams do: once they may no
    longer see the session (made private, their rights or token taken away), it
    ends with one ``gone`` (``{"detail": ...}``) and tells nothing more. 503 (retry
    later) when the viewer's streams are at their limit (``live.LiveHub.refusal``)."""
    await asyncio.to_thread(_job, request, session_id, job_id)
    worker, hub = _worker(request), request.app.state.hub
    queue = live.subscribed(request, session_id)  # told of the session's access changes and of its viewer's

    async def gone() -> bool:
        return hub.heard(queue) and not await asyncio.to_thread(hub.sees, queue, session_id)

    async def stream():  # type: ignore[no-untyped-def]
        try:
            sent = 0
            while True:
                current = await asyncio.to_thread(worker.job, job_id)
                finished = current["state"] in ("done", "failed")
                if finished:  # the tab reloads on "done": only once the read models hold the eval
                    await asyncio.to_thread(_wait_for_read_models, request, 30.0)
                if await gone():
                    yield {"event": "gone", "data": json.dumps({"detail": f"no such session {session_id!r}"})}
                    return
                for message in current["progress"][sent:]:
                    yield {"event": "progress", "data": json.dumps(message)}
                sent = len(current["progress"])
                if finished:
                    yield {"event": current["state"], "data": json.dumps(
                        {k: current[k] for k in ("job_id", "state", "eval_id", "error")})}
                    return
                await asyncio.sleep(JOB_POLL_SECONDS)
        finally:
            hub.unsubscribe(queue)

    return EventSourceResponse(stream(), ping=15)


@router.post("/sessions/{session_id}/eval/{eval_id}/reviews", summary="Agree or disagree with one verdict")
def review(
    request: Request,
    session_id: str,
    eval_id: str,
    question_id: Annotated[str, Form()],
    agree: Annotated[bool, Form()],
    comment: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Appends ``EvalVerdictReviewed`` with the reviewer; back to the tab (303)."""
    session_visible(request, session_id)
    chosen = _chosen(_evals(request, session_id), eval_id)
    if chosen is None or question_id not in {s["question_id"] for s in chosen["scores"]}:
        raise not_found(f"verdict {question_id!r} of eval {eval_id!r}")
    record_review(request.app.state.store, session_id, eval_id, question_id, agree, reviewer(request, name), comment)
    _wait_for_read_models(request)
    sid = quote(session_id, safe="")
    return RedirectResponse(f"/sessions/{sid}/eval?eval={quote(eval_id)}#q-{quote(question_id)}", status_code=303)


def _wait_for_read_models(request: Request, timeout: float = 5.0) -> None:
    """Until the read models hold what was just appended, so the page redirected to shows it."""
    runner, store = request.app.state.runner, request.app.state.store
    head, deadline = store.head_position(), time.monotonic() + timeout
    while min(runner.positions().values()) < head and time.monotonic() < deadline:
        if not runner.following:  # not running in its thread (tests, tools): catch up here
            runner.catch_up()
        else:
            time.sleep(0.05)


@router.get("/evals.json", summary="Eval scores per repository, question (with reviewer agreement) and week")
def overview_json(request: Request) -> dict[str, Any]:
    return evals_model.overview(conn(request), visible_sessions(request))


@router.get("/evals", response_class=HTMLResponse, summary="Eval overview")
def overview_page(request: Request, asked: Plain) -> HTMLResponse:
    if asked.problems:
        return form_page(request, "evals.html", asked.problems, no_form=True)
    return render(request, "evals.html", overview=evals_model.overview(conn(request), visible_sessions(request)))
