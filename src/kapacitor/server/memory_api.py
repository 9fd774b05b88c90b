"""The JSON API of memory and the agent tools: what ``kapacitor mcp``, the
SessionStart hook and scripts call.

Every read goes through ``memory.gate`` with the request's viewer, and every
call is authorised like ingest (the server's bearer token, or 127.0.0.1 when the
server has none): these answer agents, not browsers.

| route | answers |
|---|---|
| ``GET /api/memory/recall?repo=R`` | the session-start context for R (read only) |
| ``POST /api/memory/recall`` | the same, counting the use: ``repo``, ``session``, ``via`` |
| ``GET /api/memory/facts?repo=R&q=Q&status=S`` | facts (``repo=org`` for the team's) |
| ``POST /api/memory/facts`` | retain a fact: ``text``, ``repo``, ``category``, ``session_id``, ``by``, ``user`` |
| ``POST /api/memory/facts/{id}/supersede`` | replace it: ``text`` |
| ``POST /api/memory/facts/{id}/retire`` | stop recalling it: ``reason`` |
| ``GET /api/search?q=Q&repo=&user=&since=&in=`` | full-text hits (``in=prompts``: the user's words only) |
| ``GET /api/sessions/{id}/recap``, ``/errors``, ``/plan`` | see ``memory.knowledge`` |
| ``GET /api/sessions/{id}/transcript?start=&limit=`` | markdown, paged by chat item |
| ``GET /api/sessions/{id}/tool-results/{call_id}`` | one tool call with its whole result |
| ``GET /api/prs/{owner}/{repo}/{number}`` | the PR and the sessions behind it |
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from kapacitor.memory import facts, gate, knowledge, prs, recall, search
from kapacitor.server.chat import chat_items
from kapacitor.server.dates import Since
from kapacitor.server.ingest import authorize
from kapacitor.server.web import conn, read_your_writes, viewer_zone

router = APIRouter(prefix="/api", dependencies=[Depends(authorize)])
TRANSCRIPT_PAGE = 50


def viewer_of(request: Request) -> gate.Viewer:
    """Who asks: the viewer the server's one gate found (``server.access``)."""
    from kapacitor.server.access import viewer_of as gate_viewer

    return gate_viewer(request)


def user_of(request: Request, claimed: str) -> str:
    """Who keeps a fact: the rule comments and marks follow too (``acting_person``)."""
    from kapacitor.server.access import acting_person

    return acting_person(request, claimed)


class NewFact(BaseModel):
    text: str
    repo: str = facts.ORG
    category: str = ""
    session_id: str = ""
    event_ids: list[str] = []
    by: str = "agent"
    user: str = ""


class FactEdit(BaseModel):
    text: str
    user: str = ""


class Retirement(BaseModel):
    reason: str = ""
    user: str = ""


def applied(request: Request) -> None:
    """What an agent remembered is in its very next recall: wait for the facts read model."""
    read_your_writes(request, "facts")


def _bad(exc: Exception) -> HTTPException:
    return HTTPException(422 if isinstance(exc, (facts.FactError, search.SearchError)) else 404, str(exc))


class RecallAsked(BaseModel):
    repo: str = ""
    session: str = ""
    via: str = "session_start"  # or "mcp": the agent's own recall tool


def _recalled(request: Request, repo: str) -> tuple[str, list[recall.Recalled]]:
    return recall.render(repo, recall.recall(conn(request), viewer_of(request), repo))


@router.get("/memory/recall", summary="What a session starting in a repository would be told (read only)")
def recall_preview_json(request: Request, repo: str = "") -> dict[str, Any]:
    """``context`` (the text for Claude Code's ``additionalContext``, at most
    ``recall.MAX_CHARS`` characters) and the ``facts`` in it. Nothing is counted
    or written: browsing this (or ``/docs``) is not a use; ``POST`` is."""
    text, used = _recalled(request, repo)
    return {"repo": repo, "context": text, "facts": [vars(r) for r in used]}


@router.post("/memory/recall", summary="Tell a session starting in a repository what to recall (counts the use)")
def recall_json(request: Request, asked: RecallAsked) -> dict[str, Any]:
    """What ``GET`` answers, for the SessionStart hook and the MCP ``recall`` tool:
    appends ``FactsRecalled`` (each fact's use, by ``session``), which ranks facts."""
    text, used = _recalled(request, asked.repo)
    facts.record_use(request.app.state.store, [i for r in used for i in r.fact_ids], asked.repo or facts.ORG,
                     session_id=asked.session, via=asked.via, user=user_of(request, ""))
    return {"repo": asked.repo, "context": text, "facts": [vars(r) for r in used]}


@router.get("/memory/facts", summary="Facts, newest first")
def facts_json(request: Request, repo: str = "", q: str = "", status: str = "active") -> list[dict[str, Any]]:
    return [f.as_json() for f in list_facts(request, repo, q, status)]


def list_facts(request: Request, repo: str = "", q: str = "", status: str = "active") -> list[facts.Fact]:
    """The facts of ``repo`` (every scope when empty), matching ``q``, with ``status`` ("all" for any)."""
    clauses, params = ["1 = 1"], []
    if repo:
        clauses.append("scope = ?")
        params.append(repo)
    if status != "all":
        clauses.append("status = ?")
        params.append(status)
    for word in q.split():
        clauses.append("norm LIKE ? ESCAPE '\\'")
        params.append("%" + facts.normalized(word).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    found = facts.rows(conn(request), " AND ".join(clauses), params)
    return gate.visible(conn(request), viewer_of(request), found, lambda f: f.session_id)


@router.post("/memory/facts", summary="Retain a fact")
def remember_json(request: Request, new: NewFact) -> dict[str, str]:
    provenance = facts.Provenance(new.by, user_of(request, new.user), new.session_id, tuple(new.event_ids))
    try:
        fact_id = facts.retain(request.app.state.store, new.text, new.repo or facts.ORG, provenance, new.category)
    except facts.FactError as exc:
        raise _bad(exc) from None
    applied(request)
    return {"fact_id": fact_id}


@router.post("/memory/facts/{fact_id}/supersede", summary="Replace a fact with a new text")
def supersede_json(request: Request, fact_id: str, edit: FactEdit) -> dict[str, str]:
    _visible_fact(request, fact_id)
    try:
        new_id = facts.supersede(request.app.state.store, conn(request), fact_id, edit.text,
                                 facts.Provenance("person", user_of(request, edit.user)))
    except facts.FactError as exc:
        raise _bad(exc) from None
    applied(request)
    return {"fact_id": new_id, "superseded": fact_id}


@router.post("/memory/facts/{fact_id}/retire", summary="Stop recalling a fact")
def retire_json(request: Request, fact_id: str, retirement: Retirement) -> dict[str, str]:
    _visible_fact(request, fact_id)
    try:
        old = facts.retire(request.app.state.store, conn(request), fact_id, user_of(request, retirement.user), retirement.reason)
    except facts.FactError as exc:
        raise _bad(exc) from None
    applied(request)
    return {"retired": old.fact_id}


def _visible_fact(request: Request, fact_id: str) -> facts.Fact:
    try:
        fact = facts.find(conn(request), fact_id)
    except facts.FactError as exc:
        raise _bad(exc) from None
    if not gate.may_see(conn(request), viewer_of(request), fact.session_id):
        raise HTTPException(404, f"no fact {fact_id!r}")
    return fact


@router.get("/search", summary="Full-text search across sessions")
def search_json(request: Request, q: str, repo: str = "", user: str = "", since: Since = "", session: str = "",
                scope: Annotated[str, Query(alias="in", description="`all`, or `prompts`: the user's own words only")] = "all",
                limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """The best ``limit`` hits, best first. ``ranked_within`` on each hit: 2,000 when
    more texts match than a search ranks (the hits are the best of the newest
    2,000: narrow the query to reach older ones), else null (``docs/memory.md``)."""
    try:
        hits = search.search(conn(request), viewer_of(request), q, repo=repo, user=user, since=since, tz=viewer_zone(request),
                             session_id=session, scope=scope, limit=limit)
    except search.SearchError as exc:
        raise _bad(exc) from None
    return [h.as_json() for h in hits]


def _knowledge(request: Request, answer: Any, session_id: str, *args: Any) -> Any:
    try:
        return answer(conn(request), request.app.state.store, viewer_of(request), session_id, *args)
    except knowledge.SessionNotFound as exc:
        raise _bad(exc) from None


@router.get("/sessions/{session_id}/recap", summary="A session's plan, files, tests and errors")
def recap_json(request: Request, session_id: str) -> dict[str, Any]:
    return _knowledge(request, knowledge.recap, session_id)  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}/errors", summary="A session's failed tool calls")
def errors_json(request: Request, session_id: str) -> list[dict[str, Any]]:
    return _knowledge(request, knowledge.session_errors, session_id)  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}/plan", summary="A session's plan beside what it did")
def plan_json(request: Request, session_id: str) -> dict[str, Any]:
    return _knowledge(request, knowledge.plan_check, session_id)  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}/transcript", summary="A session's transcript as markdown, paged")
def transcript_json(request: Request, session_id: str, start: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int, Query(ge=1, le=500)] = TRANSCRIPT_PAGE) -> dict[str, Any]:
    """``markdown`` of chat items ``start`` to ``start + limit``; ``next`` is the
    next page's ``start`` (null at the end), ``total`` the number of items."""
    try:
        text = knowledge.transcript(request.app.state.store, conn(request), viewer_of(request), session_id, start, limit)
    except knowledge.SessionNotFound as exc:
        raise _bad(exc) from None
    total = len(chat_items(request.app.state.store, session_id))
    return {"session_id": session_id, "start": start, "total": total, "markdown": text,
            "next": start + limit if start + limit < total else None}


@router.get("/sessions/{session_id}/tool-results/{call_id}", summary="One tool call and its whole result")
def tool_result_json(request: Request, session_id: str, call_id: str) -> dict[str, Any]:
    try:
        knowledge.session_row(conn(request), viewer_of(request), session_id)
    except knowledge.SessionNotFound as exc:
        raise _bad(exc) from None
    items = chat_items(request.app.state.store, session_id)
    for position, item, call, agent in knowledge.tool_calls(items):
        if call.call_id == call_id:
            return {"session_id": session_id, "call_id": call_id, "tool": call.name, "input": call.arguments,
                    "result": call.result, "is_error": call.is_error, "structured": call.structured,
                    "position": position, "agent": agent, "link": search.chat_link(session_id, item.id)}
    raise HTTPException(404, f"no tool call {call_id!r} in session {session_id!r}")


@router.get("/prs/{owner}/{repo}/{number}", summary="A pull request and the sessions behind it (needs `gh`)")
def pr_json(request: Request, owner: str, repo: str, number: int) -> dict[str, Any]:
    try:
        return prs.pr_sessions(conn(request), viewer_of(request), f"{owner}/{repo}#{number}")
    except prs.PrError as exc:
        raise HTTPException(502 if "failed" in str(exc) else 422, str(exc)) from None
