"""A page's filter form stays standing when a value in its URL is bad.

The JSON routes take their query parameters strictly: a bad one
(``since=2026-02-30``, ``page=0``, ``sort=zz``) is FastAPI's 422 before the
route runs. A page with a form over the same parameters must instead show that
form again and say there what was wrong: a bare error page strands its user
away from the form. ``lenient(strict)`` makes such a page's dependency from the
JSON twin's ``strict`` one: the same parameters (names, aliases, descriptions),
read as text and each checked by its own declared type, so every rule stays
where it is declared; a bad value is left out (its default used) and named in
``problems``. The page then answers 422 with its form and the problems
(``_form_problems.html``), and ``static/form_problems.js`` lets htmx show such an
answer where a form swaps its results in place.

The rule of every HTML page whose query has a type (a date, a number, a
yes/no): a page with no JSON twin over the same parameters takes a small
dataclass of them (``memory_pages.MemoryForm``), and a session's tabs, which have
no form, keep their header and tabs with the problem where the tab's body was
(``sessions_pages.tab_page``). Fragments fetched by the pages' own scripts
(``/chat?start=``, ``/trace/children?skip=``) stay strict.

Every such dependency also reads ``tz``, the zone every page takes (``web.viewer_zone``):
an unknown one is a problem like a bad date (``tz: unknown time zone 'Mars/Base': …``),
where the JSON twins answer 422 (``api_json.json_zone``). A page with nothing else
in its query takes ``Plain``. Pages that show no time (sign-in, the API docs) and
fragments draw a bad zone's times in the browser's (the ``tz`` cookie) instead.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from fastapi.params import Query as QueryInfo
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter, ValidationError

from kapacitor import times
from kapacitor.server.web import render, zone_problem

T = TypeVar("T")

PROBLEMS_HEADER = "X-Form-Problems"
"""Set (to the number of problems) on a page's 422 that still has its form, so
``static/form_problems.js`` swaps it in like a good answer (htmx swaps no 4xx by default)."""


ZONE_DOC = "IANA time zone (Area/City) the page shows its times and days in; default the browser's, else UTC"


@dataclass(frozen=True)
class Checked(Generic[T]):
    """What a page's form asked for: ``value`` made of its good values (a bad
    one at its default), ``problems`` one line per bad value, in URL order."""

    value: T
    problems: tuple[str, ...] = ()


def problem_line(name: str, message: str) -> str:
    """One bad parameter as the pages show it: ``since: '2026-02-30' is not a
    calendar day (…)`` (pydantic's ``Value error, `` prefix dropped)."""
    return f"{name}: {message.removeprefix('Value error, ')}"


def lenient(strict: Callable[..., T]) -> Callable[..., Checked[T]]:
    """The page twin of the query dependency ``strict`` (a function or a class
    whose parameters are query parameters with defaults): see the module."""
    hints = typing.get_type_hints(strict, include_extras=True)
    params = list(inspect.signature(strict).parameters.values())
    checks = {p.name: TypeAdapter(hints[p.name]) for p in params}
    names = {p.name: _query_of(hints[p.name]).get("alias") or p.name for p in params}

    assert "tz" not in names.values(), "tz is every page's: lenient reads it"

    def dependency(tz: str | None = None, **given: str | None) -> Checked[T]:
        good: dict[str, Any] = {}
        problems = []
        for name, text in given.items():
            if text is None:
                continue
            try:
                good[name] = checks[name].validate_python(text)
            except ValidationError as exc:
                problems.append(problem_line(names[name], exc.errors()[0]["msg"]))
        if tz and times.zone(tz) is None:
            problems.append(problem_line("tz", zone_problem(tz)))
        return Checked(strict(**good), tuple(problems))

    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [*(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[str | None, Query(**_query_of(hints[p.name]))]) for p in params),
         inspect.Parameter("tz", inspect.Parameter.KEYWORD_ONLY, default=None,
                           annotation=Annotated[str | None, Query(description=ZONE_DOC)])],
        return_annotation=Checked,
    )
    dependency.__name__ = f"lenient_{strict.__name__}"
    return dependency


def form_page(request: Request, template: str, problems: Sequence[str], **context: Any) -> HTMLResponse:
    """``template`` (a page with a form) rendered with ``problems``: 200 when there
    are none, else 422 with ``PROBLEMS_HEADER``; ``clear_url`` (the page without
    filters) defaults to its path."""
    context.setdefault("clear_url", request.url.path)
    response = render(request, template, status_code=422 if problems else 200, problems=list(problems), **context)
    if problems:
        response.headers[PROBLEMS_HEADER] = str(len(problems))
    return response


def _query_of(hint: Any) -> Mapping[str, Any]:
    """The alias and description a parameter's ``Query(...)`` declares (none for a plain one)."""
    for info in getattr(hint, "__metadata__", ()):
        if isinstance(info, QueryInfo):
            return {k: v for k, v in (("alias", info.alias), ("description", info.description)) if v}
    return {}


@dataclass(frozen=True)
class NoQuery:
    """The query of a page that has nothing in it but ``tz`` (``Plain``)."""


Plain = Annotated[Checked[NoQuery], Depends(lenient(NoQuery))]
"""A page whose query is only the zone (the eval overview): its problems, if any."""
