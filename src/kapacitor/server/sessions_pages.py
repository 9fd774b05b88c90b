"""A session's pages, one link per tab: ``/sessions/{id}`` (chat),
``/sessions/{id}/trace`` and ``/sessions/{id}/stats``, each with a JSON twin.

The chat and trace content come from ``chat`` and ``trace`` (sanitised HTML);
this module serves them as pages and as the fragments htmx and live updates
fetch: ``?fragment=1`` gives a tab's body alone, and
``/sessions/{id}/chat?start=N`` the next slice of a long chat.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from kapacitor.projections.ownership import inherited_positions
from kapacitor.server import chat, queries, trace
from kapacitor.server.form_query import Checked, form_page, lenient
from kapacitor.server.request_shapes import request_shapes
from kapacitor.server.timeline import TZ_PARAM
from kapacitor.server.web import (
    api_zone,
    conn,
    not_found,
    render,
    render_fragment,
    viewer_of,
    viewer_zone,
)

router = APIRouter()
CHAT_PAGE = 200


def _session(request: Request, session_id: str) -> dict[str, Any]:
    row = queries.session_row(conn(request), session_id, viewer_of(request))
    if row is None:
        raise not_found(f"session {session_id!r}")
    return row


@dataclass(frozen=True)
class TabQuery:
    """A session tab's query: ``fragment``, its body alone (what htmx and live updates fetch)."""

    fragment: bool = False


@dataclass(frozen=True)
class ChatQuery(TabQuery):
    """The chat tab's: ``upto``, an item the page reaches at least (an eval's evidence link)."""

    upto: Annotated[int, Query(ge=0)] = 0


Tab = Annotated[Checked[TabQuery], Depends(lenient(TabQuery))]
"""A tab page's query, leniently (``tab_page``)."""


def tab_page(request: Request, session: dict[str, Any], tab: str, body: Callable[[], Markup], asked: Checked[TabQuery]) -> HTMLResponse:
    """A session page on ``tab`` (``body()`` its content), or the body alone when
    ``asked`` for a fragment. A bad value in the URL (``?upto=abc``) is the rule of
    every page (``form_query``): the page stands, its tabs too, the problem said
    where the body would be, 422."""
    if asked.problems:
        return form_page(request, "session.html", asked.problems, session=session, tab=tab, body=Markup(""), no_form=True)
    if asked.value.fragment:
        return HTMLResponse(body())
    return render(request, "session.html", session=session, tab=tab, body=body())


def chat_items(request: Request, session_id: str) -> list[chat.ChatItem]:
    """The session's chat items, inherited history marked (``ownership``), kept
    between requests while unchanged (``chat_cache``)."""
    inherited = inherited_positions(conn(request), session_id)
    return request.app.state.chat_cache.items(request.app.state.store, session_id, inherited)  # type: ignore[no-any-return]


def trace_tree(request: Request, session_id: str, session: dict[str, Any] | None = None) -> trace.TraceNode:
    """The session's kept trace; given its ``session`` row, the root spans the session as
    the header states it (``SessionSummary.duration_seconds``: every timestamped event,
    not the chat's alone), and each subagent node its subagent as the chat and the
    stats state it (``SessionSummary.subagent_figures``)."""
    inherited = inherited_positions(conn(request), session_id)
    subagents = subagents_of(session) if session else None
    tree: trace.TraceNode = request.app.state.chat_cache.tree(request.app.state.store, session_id, inherited, subagents)
    if session and session["started"] and session["ended"]:
        tree.started, tree.ended = session["started"], session["ended"]
    return tree


def subagents_of(session: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The session row's subagents by agent id: the one count of each one's time and
    tokens (``SessionSummary.subagent_figures``) the chat, the trace and the stats show."""
    return {entry["agent_id"]: entry for entry in session.get("subagents") or []}


def reading(request: Request, session_id: str) -> AbstractContextManager[Any]:
    """Held while the session's kept chat or trace is read: an update folds new
    events into them in place (``chat_cache``)."""
    return request.app.state.chat_cache.lock(session_id)  # type: ignore[no-any-return]


def _chat_html(request: Request, session: dict[str, Any], start: int, limit: int, upto: int = 0) -> Markup:
    """``upto``: the page reaches at least that item (an eval's evidence link)."""
    session_id = session["session_id"]
    with reading(request, session_id):
        items = chat_items(request, session_id)
        limit = max(limit, sum(chat.size_of(item) for item in items[start : upto + 1]))
        return chat.render_chat(session_id, items, start=start, limit=limit, subagents=subagents_of(session))


@router.get("/sessions/{session_id}.json", summary="A session's summary row")
def session_json(request: Request, session_id: str, tz: Annotated[str, TZ_PARAM] = "") -> dict[str, Any]:
    """The row of ``kapacitor sessions --json`` (priced now; ``repo``, ``repo_kind``
    and ``tokens_total`` included) plus ``status``, ``owner`` and ``visibility``;
    times in ISO 8601 with the offset of ``tz``."""
    api_zone(tz)
    return _session(request, session_id)


@router.get("/sessions/{session_id}/chat.json", summary="A session's chat items")
def chat_json(request: Request, session_id: str) -> list[dict[str, Any]]:
    """The chat items (``ChatItem.as_json``); each subagent run (``tool.subagent``) with
    its ``figures``: its time and tokens as the trace and the stats count them."""
    session = _session(request, session_id)
    with reading(request, session_id):
        return chat.items_json(chat_items(request, session_id), subagents_of(session))


@router.get("/sessions/{session_id}/trace.json", summary="A session's call tree")
def trace_json(request: Request, session_id: str) -> dict[str, Any]:
    session = _session(request, session_id)
    with reading(request, session_id):
        return trace_tree(request, session_id, session).as_json()  # type: ignore[no-any-return]


@router.get("/sessions/{session_id}/stats.json", summary="A session's tokens, cost, tools and files")
def stats_json(request: Request, session_id: str) -> dict[str, Any]:
    stats = queries.session_stats(conn(request), session_id, viewer_of(request))
    if stats is None:
        raise not_found(f"session {session_id!r}")
    return stats | {"request_shapes": [asdict(shape) for shape in request_shapes(request.app.state.store, session_id)]}


@router.get("/sessions/{session_id}", response_class=HTMLResponse, summary="Session page: chat tab")
def chat_page(request: Request, session_id: str, asked: Annotated[Checked[ChatQuery], Depends(lenient(ChatQuery))]) -> HTMLResponse:
    session = _session(request, session_id)
    upto = asked.value.upto
    return tab_page(request, session, "chat", lambda: _chat_html(request, session, 0, CHAT_PAGE, upto), asked)


@router.get("/sessions/{session_id}/chat", response_class=HTMLResponse, summary="A slice of the chat (htmx)")
def chat_slice(
    request: Request,
    session_id: str,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = CHAT_PAGE,
) -> HTMLResponse:
    """Items ``start`` to ``start + limit``, ending with a lazy loader for the rest."""
    return HTMLResponse(_chat_html(request, _session(request, session_id), start, limit))


@router.get("/sessions/{session_id}/trace", response_class=HTMLResponse, summary="Session page: trace tab")
def trace_page(request: Request, session_id: str, asked: Tab) -> HTMLResponse:
    session = _session(request, session_id)
    base = f"/sessions/{quote(session_id)}/trace"

    def body() -> Markup:
        with reading(request, session_id):
            return trace.render_trace(trace_tree(request, session_id, session), detail_url=f"{base}/detail",
                                      children_url=f"{base}/children", tz=viewer_zone(request))

    return tab_page(request, session, "trace", body, asked)


@router.get("/sessions/{session_id}/trace/detail", response_class=HTMLResponse, summary="One trace node's details")
def trace_detail(request: Request, session_id: str, node: str) -> HTMLResponse:
    """What the details panel shows for ``node`` (fetched for large trees)."""
    session = _session(request, session_id)
    with reading(request, session_id):
        detail = trace.render_node_detail(trace_tree(request, session_id, session), node, viewer_zone(request))
    if detail is None:
        raise not_found(f"trace node {node!r}")
    return HTMLResponse(detail)


@router.get("/sessions/{session_id}/trace/children", response_class=HTMLResponse, summary="More of a large trace (htmx)")
def trace_children(
    request: Request, session_id: str, path: str = "", skip: Annotated[int, Query(ge=0)] = 0
) -> HTMLResponse:
    """The children of the node at ``path`` (dotted child indexes) from ``skip`` on,
    as many as a page holds, then a loader for the rest."""
    session = _session(request, session_id)
    with reading(request, session_id):
        rows = trace.render_trace_children(trace_tree(request, session_id, session), path, skip, f"/sessions/{quote(session_id)}/trace/children")
    if rows is None:
        raise not_found(f"trace node at {path!r}")
    return HTMLResponse(rows)


@router.get("/sessions/{session_id}/head", response_class=HTMLResponse, summary="A session's header (live refresh)")
def head_fragment(request: Request, session_id: str) -> HTMLResponse:
    return HTMLResponse(render_fragment(request, "_session_head.html", session=_session(request, session_id), viewer=viewer_of(request)))


@router.get("/sessions/{session_id}/stats", response_class=HTMLResponse, summary="Session page: stats tab")
def stats_page(request: Request, session_id: str, asked: Tab) -> HTMLResponse:
    stats = queries.session_stats(conn(request), session_id, viewer_of(request))
    if stats is None:
        raise not_found(f"session {session_id!r}")

    def body() -> Markup:
        shapes = request_shapes(request.app.state.store, session_id)
        return Markup(render_fragment(request, "_stats.html", stats=stats, shapes=shapes))

    return tab_page(request, stats["session"], "stats", body, asked)
