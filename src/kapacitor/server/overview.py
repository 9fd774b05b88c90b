"""The team's picture: ``/overview`` (the org), ``/users/{name}`` (one developer)
and ``/repos/{key}`` (one repository, or directory), each with a JSON twin.

For a range of days in the viewer's zone (default: the last ``DEFAULT_DAYS``),
the figures of ``totals`` as totals and by day, user, repository and model,
drawn as SVG charts (``charts``), and the eval scores by day when sessions
were evaluated. The filters are the timeline's, in the URL. A developer's and
a repository's page add their sessions (the timeline's list, same filters).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from kapacitor.server import api_json, charts, format, queries, totals
from kapacitor.server.dates import range_problem
from kapacitor.server.form_query import Checked, form_page
from kapacitor.server.queries import Filters
from kapacitor.server.timeline import TZ_PARAM, filters, page_filters, problems_of
from kapacitor.server.web import api_zone, conn, render, render_fragment, viewer_of, viewer_zone

router = APIRouter()
DEFAULT_DAYS = 30
PRESETS = (7, 30, 90)
"""The ranges offered as one click: the last 7, 30 and 90 days."""

DAY_CHARTS = (
    ("Sessions", (charts.Series("sessions", "sessions", "c-sessions", "session"),), format.number),
    ("Active time", (charts.Series("active_seconds", "active", "c-active"),), format.duration),
    ("Tokens", (charts.Series("input_tokens", "in", "c-in"), charts.Series("output_tokens", "out", "c-out"),
                charts.Series("cache_read_input_tokens", "cache read", "c-cache-read"),
                charts.Series("cache_creation_input_tokens", "cache write", "c-cache-write")), format.tokens),
    ("Cost", (charts.Series("cost_usd", "", "c-cost"),), format.cost),
    ("Tool calls", (charts.Series("tool_calls_ok", "succeeded", "c-calls"), charts.Series("tool_errors", "failed", "c-failed")), format.number),
    ("Files changed", (charts.Series("files_changed", "files", "c-files", "file"),), format.number),
)
"""The charts by day: title, the figures stacked in each column, how a value reads
(a day's tool calls are its succeeded and failed ones: ``tool_calls_ok`` is the first)."""


EVAL_SERIES = (charts.Series("mean_overall", "mean eval score (1-5)", "c-eval"),)


def _score(value: float) -> str:
    return f"{value:g}" if value else "no"


def _scored_days(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every day of the range with its mean eval score (0: no eval), so the eval chart's
    days line up with the others'."""
    scores = {d["day"]: d for d in found["evals_by_day"]}
    return [{"day": d["day"], "mean_overall": 0, "evals": 0} | scores.get(d["day"], {}) for d in found["by_day"]]


def ranged(chosen: Filters, tz: tzinfo, today: date | None = None) -> Filters:
    """``chosen`` with its range filled in: until today and since ``DEFAULT_DAYS`` before
    ``until`` when not given (days in ``tz``), unchecked: ``dates.range_problem`` and
    ``too_long`` say what is wrong with it."""
    today = today or datetime.now(tz).date()
    until = date.fromisoformat(chosen.until) if chosen.until else today
    since = date.fromisoformat(chosen.since) if chosen.since else until - timedelta(days=DEFAULT_DAYS - 1)
    return replace(chosen, since=since.isoformat(), until=until.isoformat(), page=1, sort="")


def too_long(scoped: Filters) -> str:
    """Why the range of ``scoped`` (``ranged``) is too long for charts by day, '' when it is not."""
    if (date.fromisoformat(scoped.until) - date.fromisoformat(scoped.since)).days >= totals.MAX_DAYS:
        return f"a range of at most {totals.MAX_DAYS} days, please"
    return ""


def figures(request: Request, scoped: Filters, tz: tzinfo) -> dict[str, Any]:
    """What the pages and the JSON twins show: the range, the filters and ``totals.totals``
    with every breakdown, for ``scoped`` (``ranged`` filters)."""
    found = totals.totals(conn(request), scoped, viewer_of(request), tz, by=totals.GROUPS)
    return {"since": scoped.since, "until": scoped.until, "tz": str(tz),
            "filters": {k: v for k, v in scoped.query().items() if k not in ("since", "until")}, **found}


def known_user(request: Request, name: str) -> str:
    """The git user ``name`` names among those whose sessions the viewer may see: the
    user itself, or the one user whose name before ``@`` is ``name`` (what the timeline
    shows). 404 otherwise, the same answer for a user with only hidden sessions."""
    seen = queries.users(conn(request), viewer_of(request))
    if name in seen:
        return name
    short = [u for u in seen if u.split("@")[0] == name]
    if len(short) == 1:
        return short[0]
    raise HTTPException(status_code=404, detail=f"no developer {name!r} with sessions you may see")


def known_repo(request: Request, key: str) -> dict[str, Any]:
    """The repository (row of ``queries.repositories``) ``key`` names among those with
    sessions the viewer may see: its key, or a directory's short label (``~dana/notes``,
    what the sidebar shows) when only one directory has it. 404 otherwise, the same
    answer for a repository with only hidden sessions."""
    seen = queries.repositories(conn(request), viewer_of(request))
    found = [r for r in seen if r["key"] == key] or [r for r in seen if r["kind"] != "github" and format.shortdir(r["key"]) == key]
    if len(found) == 1:
        return found[0]
    raise HTTPException(status_code=404, detail=f"no repository {key!r} with sessions you may see")


def _json(request: Request, chosen: Filters, tz: str, sessions: bool) -> dict[str, Any]:
    zone = api_zone(tz)
    scoped = ranged(chosen, zone)
    problem = range_problem(scoped.since, scoped.until) or too_long(scoped) or scoped.cursor_problem()
    if problem:
        raise HTTPException(status_code=422, detail=problem)
    out = figures(request, scoped, zone)
    if sessions:
        listing = queries.session_list(conn(request), replace(scoped, page=chosen.page), viewer_of(request), zone)
        listing["sessions"] = [api_json.session_row(s) for s in listing["sessions"]]
        out["sessions"] = listing
    return out


def _page(request: Request, form: Checked[Filters], scope: str, name: str, fragment: str, repo: dict[str, Any] | None = None) -> HTMLResponse:
    """The page, or with ``fragment=body`` its figures, charts and sessions alone (live refresh).
    A bad filter (a value, a backwards or too long range): the page with its form and the
    problem instead of figures, 422."""
    tz = viewer_zone(request)
    chosen = form.value
    today = datetime.now(tz).date()
    presets = [(days, (today - timedelta(days=days - 1)).isoformat(), today.isoformat()) for days in PRESETS]
    head = {"scope": scope, "name": name, "repo": repo, "presets": presets, "users": queries.users(conn(request), viewer_of(request))}
    scoped = ranged(chosen, tz)
    problems, swapped = problems_of(form, scoped)
    if not problems and (problem := too_long(scoped)):
        problems = [problem]
    if problems:  # the form shows what was asked: the good values, or the range that is wrong
        return form_page(request, "overview.html", problems, **head, swapped=swapped, figures=None,
                         filters=replace(chosen, page=1, sort="") if form.problems else scoped)
    found = figures(request, scoped, tz)
    days = [d | {"tool_calls_ok": d["tool_calls"] - d["tool_errors"]} for d in found["by_day"]]
    context: dict[str, Any] = head | {
        "filters": scoped, "figures": found,
        "day_charts": [charts.day_chart(title, days, series, fmt) for title, series, fmt in DAY_CHARTS],
        "eval_chart": charts.day_chart("Mean eval score", _scored_days(found), EVAL_SERIES, _score, top=5)
        if found["evals_by_day"] else None,
        "share": charts.share,
    }
    if scope != "org":
        listing = queries.session_list(conn(request), replace(scoped, page=chosen.page), viewer_of(request), tz)
        context.update(listing=listing, list_filters=scoped)
    if fragment == "body":
        return HTMLResponse(render_fragment(request, "_overview_body.html", **context))
    return render(request, "overview.html", **context)


@router.get("/overview.json", summary="The org's totals by day, user, repository and model",
            responses={422: {"description": "a bad range or zone"}})
def overview_json(request: Request, chosen: Annotated[Filters, Depends(filters)], tz: Annotated[str, TZ_PARAM] = "") -> dict[str, Any]:
    """For the sessions the timeline's filters select, started from ``since`` to
    ``until`` (days in ``tz``; default the last 30 days): ``totals`` and
    ``by_day``, ``by_user``, ``by_repo``, ``by_model``, ``evals_by_day``
    (see ``server/totals.py`` for each figure). ``page`` and ``sort`` are ignored."""
    return _json(request, chosen, tz, sessions=False)


@router.get("/overview", response_class=HTMLResponse, summary="Overview page")
def overview_page(request: Request, form: Annotated[Checked[Filters], Depends(page_filters)], fragment: str = "") -> HTMLResponse:
    return _page(request, form, "org", "", fragment)


NOT_SEEN = {404: {"description": "no such developer or repository among the sessions you may see"}}


@router.get("/users/{name}.json", summary="One developer's totals and sessions", responses=NOT_SEEN)
def user_json(request: Request, name: str, chosen: Annotated[Filters, Depends(filters)], tz: Annotated[str, TZ_PARAM] = "") -> dict[str, Any]:
    """``/overview.json`` for the sessions of git user ``name``, and ``sessions``:
    the page ``page`` of their list (as ``/sessions.json``). ``name`` may be the part
    before ``@`` when only one user has it."""
    return _json(request, replace(chosen, user=known_user(request, name)), tz, sessions=True)


@router.get("/users/{name}", response_class=HTMLResponse, summary="Developer page", responses=NOT_SEEN)
def user_page(request: Request, name: str, form: Annotated[Checked[Filters], Depends(page_filters)], fragment: str = "") -> HTMLResponse:
    user = known_user(request, name)
    return _page(request, replace(form, value=replace(form.value, user=user)), "user", user, fragment)


@router.get("/repos/{key:path}.json", summary="One repository's totals and sessions", responses=NOT_SEEN)
def repo_json(request: Request, key: str, chosen: Annotated[Filters, Depends(filters)], tz: Annotated[str, TZ_PARAM] = "") -> dict[str, Any]:
    """``/overview.json`` for the sessions of repository ``key`` (``owner/repo``, or a
    directory, or its short label ``~user/dir``), and ``sessions``: the page ``page``
    of their list."""
    return _json(request, replace(chosen, repo=known_repo(request, key)["key"]), tz, sessions=True)


@router.get("/repos/{key:path}", response_class=HTMLResponse, summary="Repository page", responses=NOT_SEEN)
def repo_page(request: Request, key: str, form: Annotated[Checked[Filters], Depends(page_filters)], fragment: str = "") -> HTMLResponse:
    repo = known_repo(request, key)
    return _page(request, replace(form, value=replace(form.value, repo=repo["key"])), "repo", repo["key"], fragment, repo)
