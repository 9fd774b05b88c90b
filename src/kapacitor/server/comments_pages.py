"""Comments and marks on a session, as pages and JSON (``collab``).

| route | answers |
|---|---|
| ``GET /sessions/{id}/comments`` | the comment list (HTML fragment: the page's panel, live refresh) |
| ``POST /sessions/{id}/comments`` | add a comment from the page's form (``text``, ``kind``, ``anchor``) |
| ``POST /sessions/{id}/comments/{comment_id}/edit`` | its author replaces a comment's text (``text``) |
| ``POST /sessions/{id}/comments/{comment_id}/retract`` | take one's own comment back (an admin: anyone's) |
| ``GET /sessions/{id}/mark`` | the mark bar (HTML fragment) |
| ``POST /sessions/{id}/mark``, ``/unmark`` | mark the session (``reason``), take a mark back (``marked_by``) |
| ``GET/POST /api/sessions/{id}/comments`` | the comments as JSON; add one (``text``, ``target``) |
| ``PATCH /api/sessions/{id}/comments/{comment_id}`` | edit a comment (``text``; its author only) |
| ``DELETE /api/sessions/{id}/comments/{comment_id}`` | retract a comment |
| ``GET /api/sessions/{id}/marks``, ``PUT/DELETE /api/sessions/{id}/mark`` | the marks; mark; unmark |
| ``GET /marked``, ``/marked.json`` | the marked sessions of the org, or of one repository (``repo``) |

Every route asks the viewer first (``queries.session_row``, ``marks.marked``):
a session someone may not see is a 404 for its comments and marks too, and the
live hub tells them nothing of it. Anyone who may see a session may comment on
it and mark it; on a team server that means being signed in (the gate), and a
browser's form sends the CSRF token (``X-CSRF-Token``, set by ``comments.js``).
Without ``--auth`` the author is this machine's identity (git email, else the
OS user), or the identity a JSON client claims (``author``), as memory does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import BaseModel

from kapacitor.collab import comments as collab_comments
from kapacitor.collab import marks as collab_marks
from kapacitor.projections import comments as comments_model
from kapacitor.projections import marks as marks_model
from kapacitor.server import api_json, chat, queries
from kapacitor.server.access import acting_person as author_of
from kapacitor.server.access import form_fields
from kapacitor.server.form_query import Checked, form_page, lenient
from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.sessions_pages import chat_items, reading, trace_tree
from kapacitor.server.timeline import TZ_PARAM
from kapacitor.server.web import (
    api_zone,
    conn,
    not_found,
    read_your_writes,
    render,
    render_fragment,
    viewer_of,
)

router = APIRouter()


def _session(request: Request, session_id: str) -> dict[str, Any]:
    row = queries.session_row(conn(request), session_id, viewer_of(request))
    if row is None:
        raise not_found(f"session {session_id!r}")
    return row


# --- where a comment is --------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a comment's target is shown: a label and a link."""

    label: str
    url: str


def places(request: Request, session_id: str, kinds: set[str]) -> dict[str, Place]:
    """The targets of the session of ``kinds`` keyed ``kind:anchor``: the session, each
    chat item (nested subagent items too, linked through the top-level item that holds
    them), each trace node. A kind not asked for is not built (a large session's
    trace costs seconds the first time)."""
    sid = quote(session_id, safe="")
    found = {"session:": Place("the session", f"/sessions/{sid}")}

    def visit(item: chat.ChatItem, top: int) -> None:
        if item.id:
            words = " ".join(item.text.split())[:60]
            label = item.kind.replace("_", " ") + (f": {words}" if words else "")
            if item.tool is not None:
                label = f"tool call: {item.tool.name}"
            found[f"chat:{item.id}"] = Place(label, f"/sessions/{sid}?upto={top}#e-{quote(item.id, safe='')}")
        run = item.tool.subagent if item.tool else None
        for child in run.items if run else []:
            visit(child, top)

    with reading(request, session_id):  # the kept chat and trace are updated in place
        for index, item in enumerate(chat_items(request, session_id) if "chat" in kinds else []):
            visit(item, index)
        stack = [trace_tree(request, session_id)] if "trace" in kinds else []
        while stack:
            node = stack.pop()
            if node.id:
                found.setdefault(f"trace:{node.id}", Place(f"trace {node.kind}: {node.label[:60]}".rstrip(": "),
                                                           f"/sessions/{sid}/trace#node={quote(node.id, safe='')}"))
            stack.extend(node.children)
    return found


def _check_target(request: Request, session_id: str, kind: str, anchor: str) -> collab_comments.Target:
    """The target, which must exist in the session (422 otherwise)."""
    try:
        target = collab_comments.check_target(kind, anchor)
    except collab_comments.CommentError as exc:
        raise HTTPException(422, str(exc)) from None
    if target.kind != "session" and f"{target.kind}:{target.anchor}" not in places(request, session_id, {target.kind}):
        raise HTTPException(422, f"this session has no {target.kind} item {target.anchor!r}")
    return target


def _add(request: Request, session_id: str, text: str, target: collab_comments.Target, claimed: str = "") -> dict[str, Any]:
    """Append the comment; returns it as the JSON API lists it."""
    try:
        added = collab_comments.add(request.app.state.store, session_id, author_of(request, claimed), text, target)
    except collab_comments.CommentError as exc:
        raise HTTPException(422, str(exc)) from None
    read_your_writes(request, "comments")
    return {"comment_id": added.comment_id, "author": added.author, "target": added.target, "text": added.text,
            "created_at": added.timestamp, "edited_at": ""}


def _edit(request: Request, session_id: str, comment_id: str, text: str, claimed: str = "") -> dict[str, Any]:
    """Only its author may change a comment's words (403; an admin retracts instead);
    an unknown one is a 404. Returns the comment as the JSON API lists it."""
    found = comments_model.find(conn(request), session_id, comment_id)
    if found is None:
        raise not_found(f"comment {comment_id!r}")
    author = author_of(request, claimed)
    if found["author"] != author:
        raise HTTPException(403, "only its author may edit a comment")
    try:
        edited = collab_comments.edit(request.app.state.store, session_id, comment_id, author, text)
    except collab_comments.CommentError as exc:
        raise HTTPException(422, str(exc)) from None
    read_your_writes(request, "comments")
    return found | {"text": edited.text, "edited_at": edited.timestamp}


def _retract(request: Request, session_id: str, comment_id: str) -> None:
    """Only its author, or an admin, may take a comment back (403); an unknown one is a 404."""
    found = comments_model.find(conn(request), session_id, comment_id)
    if found is None:
        raise not_found(f"comment {comment_id!r}")
    viewer = viewer_of(request)
    if not viewer.admin and found["author"] != viewer.name:
        raise HTTPException(403, "only its author or an admin may retract a comment")
    collab_comments.retract(request.app.state.store, session_id, comment_id, author_of(request))
    read_your_writes(request, "comments")


def _mark(request: Request, session_id: str, reason: str, claimed: str = "") -> None:
    try:
        collab_marks.mark(request.app.state.store, session_id, author_of(request, claimed), reason)
    except collab_marks.MarkError as exc:
        raise HTTPException(422, str(exc)) from None
    read_your_writes(request, "marks")


def _unmark(request: Request, session_id: str, marked_by: str, claimed: str = "") -> None:
    """Take back ``marked_by``'s mark (default: one's own); someone else's needs an admin."""
    me = author_of(request, claimed)
    marked_by = marked_by.strip() or me
    if marked_by != me and not viewer_of(request).admin:
        raise HTTPException(403, "only an admin may take back someone else's mark")
    if not any(m["author"] == marked_by for m in marks_model.session_marks(conn(request), session_id)):
        raise not_found(f"mark by {marked_by!r}")
    collab_marks.unmark(request.app.state.store, session_id, me, marked_by)
    read_your_writes(request, "marks")


# --- pages ---------------------------------------------------------------------------


def comment_list(request: Request, session_id: str) -> Markup:
    """The panel's list: each comment with its author, time, target and sanitised markdown."""
    found = comments_model.session_comments(conn(request), session_id)
    where = places(request, session_id, {c["target"]["kind"] for c in found} - {"session"})
    shown = [c | {"html": render_markdown(c["text"]),
                  "place": where.get(f"{c['target']['kind']}:{c['target']['anchor']}"),
                  "key": f"{c['target']['kind']}:{c['target']['anchor']}"} for c in found]
    return Markup(render_fragment(request, "_comment_list.html", session_id=session_id, comments=shown,
                                  counts=comments_model.counts(found), viewer=viewer_of(request),
                                  me=author_of(request)))


def mark_bar(request: Request, session_id: str) -> Markup:
    return Markup(render_fragment(request, "_mark_bar.html", session_id=session_id, me=author_of(request),
                                  marks=marks_model.session_marks(conn(request), session_id), viewer=viewer_of(request)))


@router.get("/sessions/{session_id}/comments", response_class=HTMLResponse, summary="A session's comments (HTML fragment)")
def comments_fragment(request: Request, session_id: str) -> HTMLResponse:
    _session(request, session_id)
    return HTMLResponse(comment_list(request, session_id))


@router.post("/sessions/{session_id}/comments", response_class=HTMLResponse, summary="Comment from the session page (form)")
async def comments_post(request: Request, session_id: str) -> HTMLResponse:
    """Form fields ``text`` (markdown), ``kind`` (session, chat, trace) and ``anchor``;
    answers the updated list."""
    _session(request, session_id)
    form = await form_fields(request)
    _add(request, session_id, form.get("text", ""), _check_target(request, session_id, form.get("kind", ""), form.get("anchor", "")))
    return HTMLResponse(comment_list(request, session_id))


@router.post("/sessions/{session_id}/comments/{comment_id}/edit", response_class=HTMLResponse,
             summary="Edit one's comment from the session page (form)")
async def comments_edit(request: Request, session_id: str, comment_id: str) -> HTMLResponse:
    """Form field ``text``; answers the updated list."""
    _session(request, session_id)
    _edit(request, session_id, comment_id, (await form_fields(request)).get("text", ""))
    return HTMLResponse(comment_list(request, session_id))


@router.post("/sessions/{session_id}/comments/{comment_id}/retract", response_class=HTMLResponse,
             summary="Retract a comment from the session page")
def comments_retract(request: Request, session_id: str, comment_id: str) -> HTMLResponse:
    _session(request, session_id)
    _retract(request, session_id, comment_id)
    return HTMLResponse(comment_list(request, session_id))


@router.get("/sessions/{session_id}/mark", response_class=HTMLResponse, summary="A session's marks (HTML fragment)")
def mark_fragment(request: Request, session_id: str) -> HTMLResponse:
    _session(request, session_id)
    return HTMLResponse(mark_bar(request, session_id))


@router.post("/sessions/{session_id}/mark", response_class=HTMLResponse, summary="Mark a session worth learning from (form)")
async def mark_post(request: Request, session_id: str) -> HTMLResponse:
    """Form field ``reason`` (optional); answers the updated mark bar."""
    _session(request, session_id)
    _mark(request, session_id, (await form_fields(request)).get("reason", ""))
    return HTMLResponse(mark_bar(request, session_id))


@router.post("/sessions/{session_id}/unmark", response_class=HTMLResponse, summary="Take a mark back (form)")
async def unmark_post(request: Request, session_id: str) -> HTMLResponse:
    """Form field ``marked_by`` (default: one's own mark); answers the updated mark bar."""
    _session(request, session_id)
    _unmark(request, session_id, (await form_fields(request)).get("marked_by", ""))
    return HTMLResponse(mark_bar(request, session_id))


# --- JSON ----------------------------------------------------------------------------


class NewComment(BaseModel):
    text: str
    target: dict[str, str] = {"kind": "session", "anchor": ""}
    author: str = ""
    """Honoured on a server without ``--auth`` only (the client's identity, as memory facts)."""


class NewMark(BaseModel):
    reason: str = ""
    author: str = ""


def _comments_json(request: Request, session_id: str) -> dict[str, Any]:
    found = comments_model.session_comments(conn(request), session_id)
    return {"session_id": session_id, "counts": comments_model.counts(found), "comments": found}


@router.get("/api/sessions/{session_id}/comments", summary="A session's comments, oldest first")
def comments_json(request: Request, session_id: str, tz: Annotated[str, TZ_PARAM] = "") -> dict[str, Any]:
    """``comments``: ``comment_id``, ``author``, ``target`` (``kind``: session, chat or
    trace; ``anchor``: a chat item's event id or a trace node's id), ``text``
    (markdown), ``created_at`` and ``edited_at`` (ISO 8601 in ``tz``; ``""``: never
    edited); ``counts`` per ``kind:anchor``."""
    _session(request, session_id)
    return _comments_json(request, session_id)


@router.post("/api/sessions/{session_id}/comments", status_code=201, summary="Comment on a session, a chat item or a trace node")
def comments_api_post(request: Request, session_id: str, comment: NewComment) -> dict[str, Any]:
    """``text`` (markdown, at most 20,000 characters), ``target`` ``{"kind", "anchor"}``
    (default: the session); ``author`` is honoured without ``--auth`` only. Answers the
    comment as ``GET`` lists it. 422 for empty text or a target
    the session does not have."""
    _session(request, session_id)
    target = _check_target(request, session_id, comment.target.get("kind", ""), comment.target.get("anchor", ""))
    return _add(request, session_id, comment.text, target, comment.author)


class CommentEdit(BaseModel):
    text: str
    author: str = ""


@router.patch("/api/sessions/{session_id}/comments/{comment_id}", summary="Edit a comment (its author)")
def comments_api_patch(request: Request, session_id: str, comment_id: str, change: CommentEdit) -> dict[str, Any]:
    """``text``: the new markdown. Answers the comment with ``edited_at``; 403 for anyone but its author."""
    _session(request, session_id)
    return _edit(request, session_id, comment_id, change.text, change.author)


@router.delete("/api/sessions/{session_id}/comments/{comment_id}", summary="Retract a comment (its author or an admin)")
def comments_api_delete(request: Request, session_id: str, comment_id: str) -> dict[str, Any]:
    _session(request, session_id)
    _retract(request, session_id, comment_id)
    return {"session_id": session_id, "comment_id": comment_id, "retracted": True}


@router.get("/api/sessions/{session_id}/marks", summary="Who marked a session worth learning from")
def marks_json(request: Request, session_id: str, tz: Annotated[str, TZ_PARAM] = "") -> dict[str, Any]:
    """``marks``: ``author``, ``reason``, ``marked_at`` (ISO 8601 in ``tz``)."""
    _session(request, session_id)
    return {"session_id": session_id, "marks": marks_model.session_marks(conn(request), session_id)}


@router.put("/api/sessions/{session_id}/mark", summary="Mark a session worth learning from")
def mark_api_put(request: Request, session_id: str, mark: NewMark) -> dict[str, Any]:
    """``reason`` (optional). Marking again replaces one's reason."""
    _session(request, session_id)
    _mark(request, session_id, mark.reason, mark.author)
    return marks_json(request, session_id)


@router.delete("/api/sessions/{session_id}/mark", summary="Take a mark back")
def mark_api_delete(request: Request, session_id: str, marked_by: str = "", author: str = "") -> dict[str, Any]:
    """``marked_by``: whose mark (default: one's own; someone else's needs an admin)."""
    _session(request, session_id)
    _unmark(request, session_id, marked_by, author)
    return marks_json(request, session_id)


def _marked(request: Request, repo: str) -> list[dict[str, Any]]:
    return [api_json.session_row(r) for r in marks_model.marked(conn(request), viewer_of(request), repo)]


@router.get("/marked.json", summary="Sessions marked worth learning from")
def marked_json(request: Request, repo: Annotated[str, Query(description="one repository (owner/repo or directory)")] = "",
                tz: Annotated[str, TZ_PARAM] = "") -> dict[str, Any]:
    """Most recently marked first: each session's timeline row with its ``marks``
    (``author``, ``reason``, ``marked_at``); only sessions the caller may see."""
    return {"repo": repo, "tz": str(api_zone(tz)), "sessions": _marked(request, repo)}


@dataclass(frozen=True)
class MarkedQuery:
    """The marked page's query: ``repo``, one repository (empty: every one)."""

    repo: str = ""


@router.get("/marked", response_class=HTMLResponse, summary="Marked sessions page")
def marked_page(request: Request, asked: Annotated[Checked[MarkedQuery], Depends(lenient(MarkedQuery))]) -> HTMLResponse:
    repo = asked.value.repo
    if asked.problems:
        return form_page(request, "marked.html", asked.problems, marked=[], repo=repo, by_repo={}, no_form=True)
    rows = marks_model.marked(conn(request), viewer_of(request), repo)
    by_repo: dict[str, int] = {}
    for row in rows:
        by_repo[row["repo"]] = by_repo.get(row["repo"], 0) + 1
    return render(request, "marked.html", marked=rows, repo=repo, by_repo=by_repo)
