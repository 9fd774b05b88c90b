"""The dashboard: an ASGI app (FastAPI, Jinja2 templates, htmx, SSE) over one store.

``create_app`` opens the store, makes sure every read model's tables exist, and
(unless told not to) runs the projections in-process for the app's lifetime, so
the pages read tables that follow the log. Every page has a JSON twin; FastAPI
documents them at /docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from kapacitor import __version__
from kapacitor.access import accounts
from kapacitor.eval.config import EvalConfig, load_config
from kapacitor.eval.jobs import EvalWorker
from kapacitor.projections import skipped
from kapacitor.projections.catalog import PROJECTIONS, statuses
from kapacitor.projections.runner import ProjectionRunner, checkpoints
from kapacitor.server import (
    access,
    api_json,
    comments_pages,
    docs_assets,
    eval_pages,
    format,
    ingest,
    live,
    memory_api,
    memory_pages,
    oidc,
    overview,
    sessions_pages,
    timeline,
)
from kapacitor.server.access import SignInRequired, gate
from kapacitor.server.chat_cache import ChatCache
from kapacitor.server.chat_warmup import ChatWarmer
from kapacitor.server.form_query import problem_line
from kapacitor.server.guard import Guard
from kapacitor.server.live import LiveHub
from kapacitor.server.queries import SORT_LABELS
from kapacitor.server.terms import TERMS
from kapacitor.server.web import render
from kapacitor.store import open_store
from kapacitor.store.base import EventStore
from kapacitor.store.readdb import ReadDb, open_read_db

HERE = Path(__file__).parent
STATIC = HERE / "static"
SESSION_DAYS = 14
FIRST_SCRIPTS = ("htmx.min.js",)  # the others may use it
HEAD_SCRIPT = "zone.js"  # runs before the page is drawn: it may reload it in the viewer's zone


def static_assets() -> tuple[list[str], list[str]]:
    """Every stylesheet and deferred script in static/, htmx first: the base
    template links them all (and ``HEAD_SCRIPT`` on its own, before them)."""
    css = sorted(p.name for p in STATIC.glob("*.css"))
    js = sorted((p.name for p in STATIC.glob("*.js") if p.name != HEAD_SCRIPT), key=lambda n: (n not in FIRST_SCRIPTS, n))
    return css, js


def create_app(
    store_url: str,
    *,
    run_projections: bool = True,
    token: str | None = None,
    auth: bool = False,
    public_url: str = "",
    oidc_settings: oidc.OidcSettings | None = None,
    eval_config: EvalConfig | None = None,
) -> FastAPI:
    """The dashboard and ingest API over the store at ``store_url``. ``token`` is a
    bearer token ingest accepts besides users' tokens (default ``$KAPACITOR_TOKEN``;
    none: loopback only). ``auth``: team mode, every read needs a signed-in user
    (see ``server.access``); without it the app answers loopback names only.
    ``public_url``: where users reach the server (https: the cookie is Secure).
    ``oidc_settings``: sign-in through an OpenID Connect provider (``server.oidc``).
    ``eval_config`` sets the judge of Run eval and auto-eval (default: ``load_config()``);
    its job queue lives in the store's own database, like the read models."""
    store = open_store(store_url)
    db = open_read_db(store)  # read models and access tables live in the store's own database
    accounts.ensure_schema(db)
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)  # creates missing read-model tables
    hub = LiveHub(store, db, [p.name for p in PROJECTIONS])
    runner.on_progress = hub.wake  # a change reaches open pages when it is applied, not at the next poll
    eval_worker = EvalWorker(store, store_url, open_read_db(store), eval_config or load_config())

    def close() -> None:
        """Stop the background work and close every handle this app opened
        (each read-model handle holds a connection per thread that used it):
        the lifespan's end, or ``app.state.close()`` where an app is used
        without one (tests calling it through ASGI)."""
        warmer.close()
        eval_worker.close()
        runner.close()
        db.close()
        store.close()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher = None
        if run_projections:
            runner.start()
            eval_worker.start()
            warmer.start()
            watcher = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            if watcher:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            close()

    app = FastAPI(title="Kapacitor", version=__version__, lifespan=lifespan,
                  description="Coding-agent sessions as events: every page's data as JSON.",
                  docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(gate), Depends(access.form_csrf), Depends(api_json.json_zone)],
                  default_response_class=api_json.ZonedJSONResponse)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(format.FILTERS)
    css, js = static_assets()
    templates.env.globals.update(stylesheets=css, scripts=js, version=__version__, terms=TERMS,
                                 sorts=SORT_LABELS)
    app.state.store, app.state.db, app.state.runner, app.state.hub, app.state.templates = store, db, runner, hub, templates
    app.state.eval_worker, app.state.close = eval_worker, close
    app.state.chat_cache = ChatCache()
    app.state.chat_warmer = warmer = ChatWarmer(store, db, app.state.chat_cache)
    app.state.ingest_token = os.environ.get("KAPACITOR_TOKEN", "") if token is None else token
    app.state.auth, app.state.oidc, app.state.public_url = auth, None, public_url
    if oidc_settings is not None:
        if not auth:
            raise ValueError("OIDC sign-in is for a server with --auth")
        oidc.install(app, oidc_settings)
    app.state.has_users = lambda: bool(accounts.list_users(db))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=docs_assets.DOCS_ASSETS), name="docs-assets")
    app.include_router(access.router)
    app.include_router(oidc.router)
    app.include_router(timeline.router)
    app.include_router(overview.router)
    app.include_router(sessions_pages.router)
    app.include_router(eval_pages.router)
    app.include_router(live.router)
    app.include_router(ingest.router)
    app.include_router(memory_api.router)
    app.include_router(memory_pages.router)
    app.include_router(comments_pages.router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Pages get an HTML error page; the JSON API keeps FastAPI's JSON error. On a
        team server a page not found by an anonymous visitor offers sign-in instead
        (a private session and a missing one look alike)."""
        if _wants_json(request):
            return await http_exception_handler(request, exc)
        if exc.status_code == 404 and auth and not access.viewer_of(request).signed_in:
            return access.sign_in_required(request, wants_json=False)
        return render(request, "error.html", status_code=exc.status_code, code=exc.status_code, message=exc.detail)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return access.sign_in_required(request, _wants_json(request))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        """A bad query parameter: JSON detail for the API, a one-line error page for pages."""
        if _wants_json(request):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(problem_line(".".join(map(str, e["loc"][1:])), e["msg"]) for e in exc.errors())
        return render(request, "error.html", status_code=422, code=422, message=f"bad request ({problems})")

    @app.get("/healthz", summary="Health: the store, the read models' lag and skipped events",
             responses={503: {"description": "unhealthy: the same body, `ok` false, `problems` says why"}})
    def healthz(request: Request) -> Response:
        """``ok``, ``problems`` (one line each), ``head``, ``lag`` (how many events
        the slowest read model has yet to apply: normal while catching up),
        ``projections`` (checkpoints), ``skipped`` (events each read model stepped
        over), ``stalled`` (read models waiting out a transient error), ``version`` (the
        server's: capture clients retry batches it refused once it changes). 503 when
        not ok: a damaged store, a skipped event, a stall. It knows nothing of the
        capture clients' spools or set-aside batches (they never reached it): each
        machine's `kapacitor doctor` and `kapacitor sync` report those. On a server
        with ``--auth`` an anonymous caller (a load balancer's probe) gets ``ok`` and
        ``version`` only: the rest counts everyone's events, so it would show how busy
        sessions are that the caller may not see."""
        health = health_report(store, db, runner)
        if auth and not access.viewer_of(request).signed_in:
            health = {key: health[key] for key in ("ok", "version")}
        return JSONResponse(health, status_code=200 if health["ok"] else 503)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, object]:
        return app.openapi()

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "docs.html", {"ui": "swagger"})

    @app.get("/redoc", response_class=HTMLResponse, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "docs.html", {"ui": "redoc"})

    @app.get("/redoc.js", include_in_schema=False)
    def redoc_script() -> Response:
        return Response(docs_assets.redoc_bundle(), media_type="text/javascript")

    if auth:
        secret = accounts.server_secret(db, "session-cookie")
        app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie="kapacitor_session",
                           max_age=SESSION_DAYS * 86400, same_site="lax", https_only=public_url.startswith("https:"))
    app.add_middleware(Guard, local_only=not auth)  # outermost: checked before anything else runs
    return app


def health_report(store: EventStore, db: ReadDb, runner: ProjectionRunner) -> dict[str, object]:
    """What ``/healthz`` answers (see there)."""
    problems: list[str] = []
    head, lag, positions, counts, ahead = 0, 0, {}, {}, []
    try:
        head = store.head_position()
        positions = {name: cp.position for name, cp in checkpoints(db).items()}
        lag = store.count_after(min(positions.values(), default=0))
        counts = skipped.counts(db)
        ahead = [state.projection.name for state in statuses(db, store) if state.ahead]
    except Exception as exc:  # the store itself fails: that is the report
        problems.append(f"store: {type(exc).__name__}: {exc}")
    damaged = getattr(store, "damaged", "")  # the SQLite store notes a damaged file
    if damaged:
        problems.append(f"store: damaged ({damaged}); nothing is written to it")
    problems += [f"read model {name!r} skipped {n:,} event(s) (`kapacitor projections status`)" for name, n in counts.items()]
    problems += [f"read model {name!r} is past the log's head (checkpoint {positions[name]}, head {head}): the store was"
                 " replaced under it (`kapacitor projections rebuild`)" for name in ahead]
    stalled = runner.stalled()
    problems += [f"read model {name!r} waits out: {error}" for name, error in stalled.items()]
    if runner.error:
        problems.append(f"read models cannot read the log: {runner.error}")
    return {"ok": not problems, "problems": problems, "version": __version__, "head": head, "lag": lag,
            "projections": positions, "skipped": counts, "stalled": stalled}


def _wants_json(request: Request) -> bool:
    """The JSON API and non-browser clients get JSON errors; browsers get pages."""
    return request.url.path.endswith(".json") or "text/html" not in request.headers.get("accept", "")
