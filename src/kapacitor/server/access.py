"""The viewer seam: who is asking, on every route, and the routes that change access.

``gate`` is a dependency of the whole app (``create_app`` adds it), so every
route, including any added later, runs it before its handler: it identifies the
viewer, keeps it in ``request.state.viewer`` for the query layer
(``viewer_of``), checks the CSRF token of a cookie-signed-in browser's
state-changing requests (the ``X-CSRF-Token`` header, or a plain form's ``csrf``
field: ``form_csrf``) and, on a server started with ``--auth``, refuses an
anonymous request to anything but the open routes (``OPEN``) and the
read-only pages of a session (which show a public session and 404 otherwise).

Without ``--auth`` the server listens on loopback only (``guard``) and every
request comes from this machine's user: the ``LOCAL`` viewer, who sees all.
With it, a viewer is a user signed in by ``Authorization: Bearer <token>`` (any
case of ``Bearer``) or by the session cookie ``/login`` sets (a token pasted
into the form, or OIDC, see ``oidc``).
"""

from __future__ import annotations

import hmac
import os
import secrets
from functools import cache
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.routing import Match

from kapacitor.access import accounts, changes
from kapacitor.access.viewer import ANONYMOUS, LOCAL, Viewer
from kapacitor.server import queries
from kapacitor.store.readdb import ReadDb

router = APIRouter()

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN = frozenset({"/login", "/logout", "/healthz", "/login/oidc", "/login/oidc/callback"})
"""Routes anyone may reach (the ingest route checks its own bearer token)."""
INGEST = "/api/ingest/sessions/{session_id}/batches"
STREAMS = frozenset({"/events", "/sessions/{session_id}/eval/jobs/{job_id}/events"})
"""Live streams: their request's viewer is identified as of a known access change
(``identified_as_of``), so that the live hub can tell whether a change landed
between the sign-in and the stream's start (``live.LiveHub.late``)."""
ANONYMOUS_READS = frozenset({"/events", "/api/sessions/{session_id}/comments", "/api/sessions/{session_id}/marks"})
"""Beyond a session's GET routes, what an anonymous viewer may read (filtered to public)."""


def conn(request: Request) -> ReadDb:
    """The read-model database (read models and access tables, in the store's database)."""
    return request.app.state.db  # type: ignore[no-any-return]


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=f"no such {what}")


class SignInRequired(Exception):
    """Raised by ``gate``: pages redirect to /login, the API answers 401."""


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


def identify(request: Request) -> Viewer:
    """Who sent ``request``. A bearer token that is unknown or revoked is a 401."""
    if not request.app.state.auth:
        return LOCAL
    db = conn(request)
    token = bearer_token(request)
    if token is not None:
        found = accounts.user_for_token(db, token)
        if found is None:
            raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
        return Viewer(found[0].name, found[0].admin, token=found[1])
    session = request.session
    name = session.get("user")
    if name:
        user = accounts.get_user(db, name)
        via = session.get("token")
        if user is not None and (not via or accounts.token_alive(db, via)):
            return Viewer(user.name, user.admin, csrf=session.get("csrf", ""), via_cookie=True, token=via or "")
        session.clear()
    return ANONYMOUS


def viewer_of(request: Request) -> Viewer:
    """The viewer ``gate`` found; for a request no route matched (a 404 page), found now."""
    viewer = getattr(request.state, "viewer", None)
    if viewer is None:
        try:
            viewer = identify(request)
        except HTTPException:
            viewer = ANONYMOUS
        request.state.viewer = viewer
    return viewer  # type: ignore[no-any-return]


def identified_as_of(request: Request) -> int | None:
    """The last access change (``access.changes.latest``) when ``gate`` identified
    the viewer of a stream's request (``STREAMS``); None for any other request."""
    return getattr(request.state, "access_seq", None)


@cache
def machine_identity() -> str:
    """Who sits at a server without ``--auth``: the git email of this machine's
    user, else their OS user name (what ``kapacitor memory`` attributes facts to)."""
    from kapacitor.capture.gitinfo import resolve_context

    return str(resolve_context(os.path.expanduser("~")).get("user") or LOCAL.name)


def acting_person(request: Request, claimed: str = "") -> str:
    """Who writes a fact, a comment or a mark: the signed-in user; on a server
    without ``--auth`` (the viewer is ``LOCAL``) the identity the client claims
    (its git email), else :func:`machine_identity`. The one rule for every
    person-made event, so a fact and a comment made the same way have one author."""
    viewer = viewer_of(request)
    if viewer == LOCAL:
        return claimed.strip() or machine_identity()
    return viewer.name


def gate(request: Request) -> Viewer:
    """The dependency on every route (see the module docstring)."""
    path = getattr(request.scope.get("route"), "path", "")
    if path == INGEST:
        request.state.viewer = ANONYMOUS  # ingest authorizes itself (a user's token or the server's)
        return ANONYMOUS
    if path in STREAMS:
        request.state.access_seq = changes.latest(conn(request))  # before identify: a change after it may be missed
    viewer = identify(request)
    request.state.viewer = viewer
    if viewer.via_cookie and request.method not in SAFE_METHODS and path not in OPEN:
        sent = request.headers.get("x-csrf-token", "")
        if not (viewer.csrf and hmac.compare_digest(sent, viewer.csrf)):
            if not (viewer.csrf and _is_form(request)):
                raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token)")
            request.state.form_csrf = viewer.csrf  # a plain HTML form's: in its fields (``form_csrf``)
    if request.app.state.auth and not viewer.signed_in and not anonymous_may(path, request.method):
        raise SignInRequired()
    return viewer


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


async def form_csrf(request: Request) -> None:
    """The dependency after ``gate``: a cookie-signed-in browser's plain HTML form
    (Memory's, an eval's review: no script sets ``X-CSRF-Token``) carries the
    page's CSRF token as its ``csrf`` field; a wrong or missing one is 403. The
    form is read once (``request.form()``, which the route reads again)."""
    expected = getattr(request.state, "form_csrf", "")
    if expected:
        sent = (await request.form()).get("csrf", "")
        if not (isinstance(sent, str) and hmac.compare_digest(sent, expected)):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def anonymous_may(path: str, method: str) -> bool:
    """Routes open to an anonymous viewer on a server with ``--auth``."""
    if path in OPEN:
        return True
    return method in SAFE_METHODS and (path in ANONYMOUS_READS or path.startswith("/sessions/{session_id}"))


def may_open(request: Request, href: str, method: str = "GET") -> bool:
    """May the request's viewer open ``href`` (a path on this server, a query
    allowed) with ``method``, by the rule ``gate`` applies: on a server with
    ``--auth`` an anonymous viewer only the routes ``anonymous_may`` lets
    them (a session's pages, a few reads), anyone else every route (what it
    then shows is theirs to see). Pages ask it before offering a link or a
    button, so an anonymous viewer of a public session is not offered
    pages that send them to sign in (``templates/base.html``)."""
    if not request.app.state.auth or viewer_of(request).signed_in:
        return True
    scope = {"type": "http", "path": urlsplit(href).path, "method": method}
    for route in _api_routes(request.app):
        if route.matches(scope)[0] == Match.FULL:
            return anonymous_may(route.path, method)
    return False


def _api_routes(app: Any) -> list[APIRoute]:
    """The app's routes in the order they match, included routers opened
    (built once: routes are all added before the app serves)."""
    routes = getattr(app.state, "api_routes", None)
    if routes is None:
        routes = app.state.api_routes = _flat(app.router.routes)
    return routes  # type: ignore[no-any-return]


def _flat(entries: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in entries:
        inner = getattr(route, "original_router", None)  # an included router (FastAPI keeps it as one entry)
        if inner is not None:
            found += _flat(inner.routes)
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


def sign_in_url(request: Request) -> str:
    """``/login`` that comes back to this page once signed in."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(target)}"


def sign_in_required(request: Request, wants_json: bool) -> Response:
    if wants_json:
        return JSONResponse({"detail": "sign in required"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return RedirectResponse(sign_in_url(request), status_code=303)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use), for forms and X-CSRF-Token."""
    if not request.app.state.auth:
        return ""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


# --- sign-in ----------------------------------------------------------------------


def local_path(target: str) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def login_page(request: Request, message: str = "", status_code: int = 200, target: str = "/") -> HTMLResponse:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "login.html", {
        "csrf": csrf_token(request), "message": message, "next": local_path(target),
        "oidc": request.app.state.oidc is not None, "auth": request.app.state.auth,
    }, status_code=status_code)


async def form_fields(request: Request) -> dict[str, str]:
    """A posted form's fields (urlencoded, as browsers and htmx send it); 415 for anything else."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise HTTPException(415, "expected a form (application/x-www-form-urlencoded)")
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _check_form_csrf(request: Request, form: dict[str, str]) -> None:
    expected = request.session.get("csrf", "")
    if not (expected and hmac.compare_digest(form.get("csrf", ""), expected)):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def sign_in(request: Request, user: accounts.User, token_id: str = "") -> None:
    """Start a cookie session for ``user`` (a fresh session and CSRF token)."""
    request.session.clear()
    request.session.update({"user": user.name, "token": token_id, "csrf": secrets.token_urlsafe(24)})


@router.get("/login", response_class=HTMLResponse, summary="Sign-in page", include_in_schema=False)
def login_form(request: Request, next: str = "/") -> Response:
    if not request.app.state.auth:
        return RedirectResponse(local_path(next), status_code=303)
    return login_page(request, target=next)


@router.post("/login", response_class=HTMLResponse, summary="Sign in with an API token", include_in_schema=False)
async def login(request: Request) -> Response:
    """Form fields ``token``, ``csrf`` and ``next``; on success a session cookie and a redirect."""
    if not request.app.state.auth:
        raise not_found("page")
    form = await form_fields(request)
    _check_form_csrf(request, form)
    found = accounts.user_for_token(conn(request), form.get("token", "").strip())
    if found is None:
        return login_page(request, "Unknown or revoked token.", 401, form.get("next", "/"))
    sign_in(request, found[0], found[1])
    return RedirectResponse(local_path(form.get("next", "/")), status_code=303)


@router.post("/logout", summary="Sign out", include_in_schema=False)
async def logout(request: Request) -> Response:
    if request.app.state.auth:
        _check_form_csrf(request, await form_fields(request))
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


# --- visibility -----------------------------------------------------------------


class VisibilityChange(BaseModel):
    visibility: Literal["private", "org", "public"]


@router.put("/api/sessions/{session_id}/visibility", summary="Set who may see a session")
def put_visibility(request: Request, session_id: str, change: VisibilityChange) -> dict[str, Any]:
    """``private``: its owner and admins; ``org``: every signed-in user; ``public``:
    anyone, read-only. Only the owner or an admin may change it (403); a session the
    caller cannot see is a 404."""
    viewer = viewer_of(request)
    row = queries.session_row(conn(request), session_id, viewer)
    if row is None:
        raise not_found(f"session {session_id!r}")
    if not viewer.may_change(row["owner"]):
        raise HTTPException(403, "only the session's owner or an admin may change its visibility")
    accounts.set_session_visibility(conn(request), session_id, change.visibility)
    request.app.state.hub.wake()  # every other server's hub hears of it by the access-change log
    return {"session_id": session_id, "owner": row["owner"], "visibility": change.visibility}
