"""The timeline (``/``): every session, newest first or sorted by a column, filtered
by repository, user, dates and text (or a session id's start), paginated; the
repository sidebar. The filter state lives in
the URL query, so a filtered view is a link to share."""

from __future__ import annotations

from dataclasses import replace
from datetime import tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator

from kapacitor.server import api_json, paging, queries, totals
from kapacitor.server.dates import Day, range_problem
from kapacitor.server.form_query import Checked, form_page, lenient
from kapacitor.server.queries import Filters
from kapacitor.server.web import api_zone, conn, render, viewer_of, viewer_zone

router = APIRouter()

_SORT_DOC = (f"one of {', '.join(queries.SORTS)}, ascending; with a leading '-', descending."
             " Default: -started (newest first); sessions without a value (no eval, no price) come last")


def sort_key(value: str) -> str:
    """``value`` when it is a sort (a key of ``SORTS``, ``-`` in front for
    descending) or empty (newest first); else ValueError naming the choices,
    which the page and the JSON API both show as the 422's reason."""
    if not value or (value[1:] if value.startswith("-") else value) in queries.SORTS:
        return value
    raise ValueError(f"unknown sort {value!r}; one of {', '.join(queries.SORTS)} (a leading '-' sorts descending)")


def cursor_text(value: str) -> str:
    """``value`` when it is a cursor (``paging.parse``) or empty; else ValueError."""
    if value:
        paging.parse(value)
    return value


_CURSOR_DOC = ("a cursor from a page's Next/Previous link or the JSON's next/prev: the page of sessions {} that one,"
               " in the same sort (another sort's cursor is a 422)")
MAX_PAGE = 1_000_000  # 50 million sessions; a larger number is a 422, not an SQL overflow


def filters(
    repo: str = "",
    user: str = "",
    since: Day = "",
    until: Day = "",
    q: Annotated[str, Query(description="text in the title, or a session id or its start (6 characters or more)")] = "",
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="a page by number (old links; after/before page faster)")] = 1,
    sort: Annotated[str, Query(description=_SORT_DOC), AfterValidator(sort_key)] = "",
    marked: Annotated[bool, Query(description="only sessions marked as worth learning from")] = False,
    after: Annotated[str, Query(description=_CURSOR_DOC.format("after")), AfterValidator(cursor_text)] = "",
    before: Annotated[str, Query(description=_CURSOR_DOC.format("before")), AfterValidator(cursor_text)] = "",
) -> Filters:
    return Filters(repo, user, since, until, q.strip(), page, sort, marked, after, before)


page_filters = lenient(filters)
"""The filters of the pages with the timeline's form (it, the overview, a developer's and
a repository's page): a bad value is a problem said beside the form (``form_query``)."""


def problems_of(form: Checked[Filters], scoped: Filters | None = None) -> tuple[list[str], Filters | None]:
    """The problems a page says beside its form: ``form``'s bad values, then a range of
    ``scoped`` (default ``form.value``) that runs backwards; and for that one the
    filters with the two days swapped, which the page offers as a link."""
    scoped = scoped or form.value
    backwards = range_problem(scoped.since, scoped.until)
    swapped = replace(scoped, since=scoped.until, until=scoped.since) if backwards else None
    return [*form.problems, *filter(None, [backwards, scoped.cursor_problem()])], swapped


def in_range(chosen: Filters) -> Filters:
    """``chosen``, whose days must make a range and whose cursor its sort (a JSON twin's 422 otherwise)."""
    problem = range_problem(chosen.since, chosen.until) or chosen.cursor_problem()
    if problem:
        raise HTTPException(status_code=422, detail=problem)
    return chosen


@router.get("/", response_class=HTMLResponse, summary="Timeline page")
def timeline_page(request: Request, form: Annotated[Checked[Filters], Depends(page_filters)], fragment: str = "") -> HTMLResponse:
    """The page, or with ``fragment=rows`` only the session table (htmx, live refresh).
    A bad filter (a value, a backwards range): the page with the form and the problem, 422."""
    problems, swapped = problems_of(form)
    if problems:
        return form_page(request, "timeline.html", problems, filters=form.value, swapped=swapped,
                         users=queries.users(conn(request), viewer_of(request)))
    context = _timeline(request, form.value)
    if fragment == "rows":
        return render(request, "_timeline_rows.html", **context)
    return render(request, "timeline.html", **context)


def _timeline(request: Request, chosen: Filters) -> dict[str, Any]:
    tz = viewer_zone(request)
    listing = _listing(request, chosen, tz)
    found = totals.totals(conn(request), chosen, viewer_of(request), tz)
    return {"filters": chosen, "listing": listing, "totals": found, "users": queries.users(conn(request), viewer_of(request)), "tz": tz,
            "in_place": True}  # the list's sort links swap the list in place (elsewhere they open the timeline)


def _listing(request: Request, chosen: Filters, tz: tzinfo) -> dict[str, Any]:
    """The page of sessions, dates in ``tz``; a page number past the last is a 404 (page 1 always exists)."""
    listing = queries.session_list(conn(request), chosen, viewer_of(request), tz)
    if chosen.page > listing["pages"] and not (chosen.after or chosen.before):
        raise HTTPException(status_code=404, detail=f"no page {chosen.page}: there are {listing['pages']}")
    return listing


TZ_PARAM = Query(description="IANA time zone (Area/City): dates filter by its days, times come back in it with their offset; default UTC")


@router.get("/sessions.json", summary="The timeline as JSON", responses={404: {"description": "a page past the last"}})
def sessions_json(
    request: Request, chosen: Annotated[Filters, Depends(filters)], tz: Annotated[str, TZ_PARAM] = ""
) -> dict[str, Any]:
    """The same filters as the page; ``sessions`` has one row per session on the page,
    ``started`` in ISO 8601 with the offset of ``tz``."""
    zone = api_zone(tz)
    listing = _listing(request, in_range(chosen), zone)
    listing["sessions"] = [api_json.session_row(s) for s in listing["sessions"]]
    listing["tz"] = str(zone)
    return listing


@router.get("/sidebar", response_class=HTMLResponse, summary="Repository sidebar fragment")
def sidebar(request: Request, repo: str = "") -> HTMLResponse:
    return render(request, "_sidebar.html", repositories=queries.repositories(conn(request), viewer_of(request)), filters=Filters(repo=repo))


@router.get("/repos.json", summary="Repositories (and directories without a GitHub remote)")
def repos_json(request: Request) -> list[dict[str, Any]]:
    return queries.repositories(conn(request), viewer_of(request))
