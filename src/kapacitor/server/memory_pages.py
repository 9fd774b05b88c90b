"""The dashboard's Memory pages and search page.

- ``/memory``: the team's (``org``) facts and every repository with facts;
  ``/memory/{owner}/{repo}``: one repository's. Each lists the active facts (with
  ``?all=1`` the superseded and retired ones too), filters them (``?q=``), adds a
  fact, edits one (a supersede: the old fact stays in the history) and retires
  one; each fact links to the session and event it came from.
- ``/search?q=`` (``&in=prompts``: the user's words only): full-text hits across sessions, matches highlighted, each
  linking to its place in the chat.

Reads go through the same gated functions as the JSON API (``memory_api``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from kapacitor.memory import facts, search
from kapacitor.server.dates import Since
from kapacitor.server.form_query import Checked, form_page, lenient
from kapacitor.server.memory_api import applied, list_facts, user_of, viewer_of
from kapacitor.server.web import conn, render, viewer_zone

router = APIRouter()


def memory_url(scope: str) -> str:
    """A scope's page: ``/memory/owner/repo``, or ``/memory//path/to/dir`` for a directory."""
    return "/memory" if scope == facts.ORG else f"/memory/{quote(scope)}"


@dataclass(frozen=True)
class MemoryForm:
    """What a Memory page's filter form asks: words the facts must contain (``q``),
    and ``all``: the superseded and retired facts too (``1``/``true``/...)."""

    q: str = ""
    all: bool = False


Form = Annotated[Checked[MemoryForm], Depends(lenient(MemoryForm))]
"""A bad value (``?all=xyz``) keeps the page and its form, the problem said there (422)."""


@router.get("/memory", response_class=HTMLResponse, summary="Memory: the team's facts and the repositories with facts")
def org_page(request: Request, form: Form) -> HTMLResponse:
    """The repositories listed are those with active facts the viewer may see, each
    with how many: counted after the gate, so no other name or count shows."""
    scopes = Counter(f.scope for f in list_facts(request, "", "", "active") if f.scope != facts.ORG)
    return _page(request, facts.ORG, form.value, sorted(scopes.items()), form.problems)


@router.get("/memory/{scope:path}", response_class=HTMLResponse, summary="Memory: a repository's facts")
def repo_page(request: Request, scope: str, form: Form) -> HTMLResponse:
    """``scope`` is ``owner/repo`` (or the directory of sessions without a GitHub remote)."""
    return _page(request, scope, form.value, [], form.problems)


def _page(request: Request, scope: str, form: MemoryForm, scopes: list[tuple[str, int]], problems: tuple[str, ...] = (),
          error: str = "") -> HTMLResponse:
    """The page; ``problems``: its query's bad values (nothing listed, 422); ``error``: why a posted fact was refused (422)."""
    found = [] if problems else list_facts(request, scope, form.q, "all" if form.all else "active")
    context = {"scope": scope, "q": form.q, "all": form.all, "facts": found, "scopes": scopes, "error": error,
               "memory_url": memory_url}
    if error:
        return render(request, "memory.html", status_code=422, **context)
    return form_page(request, "memory.html", problems, clear_url=memory_url(scope), **context)


async def _form(request: Request) -> dict[str, str]:
    """A posted form's text fields (read once: ``access.form_csrf`` read it first)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/memory/facts", response_class=HTMLResponse, summary="Add a fact (form)")
async def add_fact(request: Request) -> HTMLResponse:
    form = await _form(request)
    scope = form.get("scope") or facts.ORG
    try:
        facts.retain(request.app.state.store, form.get("text", ""), scope, facts.Provenance("person", user_of(request, "")),
                     form.get("category", ""))
    except facts.FactError as exc:
        return _page(request, scope, MemoryForm(), [], error=str(exc))
    applied(request)
    return RedirectResponse(memory_url(scope), status_code=303)  # type: ignore[return-value]


@router.post("/memory/facts/{fact_id}/supersede", response_class=HTMLResponse, summary="Edit a fact: supersede it (form)")
async def edit_fact(request: Request, fact_id: str) -> HTMLResponse:
    form = await _form(request)
    try:
        old = _visible(request, fact_id)
        facts.supersede(request.app.state.store, conn(request), fact_id, form.get("text", ""),
                        facts.Provenance("person", user_of(request, "")))
    except facts.FactError as exc:
        return _page(request, form.get("scope") or facts.ORG, MemoryForm(), [], error=str(exc))
    applied(request)
    return RedirectResponse(memory_url(old.scope), status_code=303)  # type: ignore[return-value]


@router.post("/memory/facts/{fact_id}/retire", response_class=HTMLResponse, summary="Retire a fact (form)")
async def retire_fact(request: Request, fact_id: str) -> HTMLResponse:
    form = await _form(request)
    try:
        old = _visible(request, fact_id)
        facts.retire(request.app.state.store, conn(request), fact_id, user_of(request, ""), form.get("reason", ""))
    except facts.FactError as exc:
        return _page(request, form.get("scope") or facts.ORG, MemoryForm(), [], error=str(exc))
    applied(request)
    return RedirectResponse(memory_url(old.scope), status_code=303)  # type: ignore[return-value]


def _visible(request: Request, fact_id: str) -> facts.Fact:
    fact = facts.find(conn(request), fact_id)
    if fact not in list_facts(request, fact.scope, "", "all"):
        raise facts.FactError(f"no fact {fact_id!r}")
    return fact


@dataclass(frozen=True)
class SearchForm:
    """What the search page's form asks: the words, where and since when to look
    (``in``: ``all`` or ``prompts``), how many hits at most."""

    q: str = ""
    repo: str = ""
    user: str = ""
    since: Since = ""
    scope: Annotated[str, Query(alias="in")] = "all"
    limit: Annotated[int, Query(ge=1, le=500)] = 50


@router.get("/search", response_class=HTMLResponse, summary="Full-text search across sessions (page)")
def search_page(request: Request, form: Annotated[Checked[SearchForm], Depends(lenient(SearchForm))]) -> HTMLResponse:
    """The hits; a bad value or query (``since=yesterday``, ``in=bogus``): the form and the problem, 422."""
    f, hits, problems = form.value, [], list(form.problems)
    if f.q.strip() and not problems:
        try:
            hits = search.search(conn(request), viewer_of(request), f.q, repo=f.repo, user=f.user, since=f.since,
                                 tz=viewer_zone(request), scope=f.scope, limit=f.limit)
        except search.SearchError as exc:
            problems.append(str(exc))
    return form_page(request, "search.html", problems, q=f.q, repo=f.repo, user=f.user, since=f.since, scope=f.scope,
                     hits=hits, sessions=search.by_session(hits), ranked_note=search.ranked_note(hits))
