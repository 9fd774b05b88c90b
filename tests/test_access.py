"""Who sees what on a team server (``kapacitor serve --auth``), on the real server
over loopback: users and tokens made by the real CLI, sessions sent by the real
hook with each user's token, every route of the app walked as an anonymous
visitor and as a second user, who must not learn anything of a private session
(pages, JSON, fragments, SSE, docs), while its owner reads it all."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from capture_helpers import KAPACITOR, WIDGETS, LiveSession, Server, run_hook, spooled, wait_for
from conftest import RECORDED
from kapacitor.access import accounts
from kapacitor.capture.aside import pending
from kapacitor.projections.repositories import total_tokens
from kapacitor.server.access import OPEN
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

BOB_SESSION = "97617f62-6fd5-442d-bb39-3ca75bd8c3e3"
MARKERS = (WIDGETS, "create hello.py")  # alice's private session: its id and its first prompt
NOT_READS = {("POST", "/login"), ("POST", "/logout")}
FILL = {"job_id": "no-such-job", "eval_id": "no-such-eval", "fact_id": "no-such-fact", "call_id": "no-such-call",
        "owner": "acme", "repo": "widgets", "number": "1", "scope": "org", "comment_id": "no-such-comment",
        "name": "alice", "key": "acme/widgets"}
"""Path parameters besides the session: things that do not exist (what a prober would try)."""
NOTHING_OF_IT_YET = {"/sessions/{session_id}/eval.json",
                     "/api/sessions/{session_id}/errors", "/api/sessions/{session_id}/plan"}
"""Session routes whose owner's view is empty for the walk's session (never evaluated, no
errors, no plan): they must still answer the owner 200 and nobody else."""
"""Routes that read no session (sign-in itself); every other route is walked."""


def cli(store: Path | str, *args: str) -> str:
    url = store if isinstance(store, str) else f"sqlite://{store}"
    done = subprocess.run([KAPACITOR, "--store", url, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_users(store: Path | str) -> dict[str, str]:
    """Users alice, bob and root (admin) and a token each (the CLI's own functions,
    in-process: ``test_the_cli_makes_users_and_tokens`` runs the commands)."""
    db = accounts.open_accounts(store)
    try:
        accounts.add_user(db, "alice", "alice@example.com")
        accounts.add_user(db, "bob")
        accounts.add_user(db, "root", admin=True)
        return {user: accounts.create_token(db, user)[1] for user in ("alice", "bob", "root")}
    finally:
        db.close()


class Team:
    """A store with users alice, bob and root (admin), a token each, the server with
    --auth (``env``: more of its environment), alice's session (private by default)
    and bob's (which he makes org)."""

    def __init__(self, tmp_path: Path, store: str | None = None, **env: str):
        self.db: Path | str = store or tmp_path / "team.db"
        self.clients: list[httpx.Client] = []
        self.tokens = make_users(self.db)
        self.server = Server(self.db, None, "--auth", **env).start()
        try:
            self.alice = LiveSession(tmp_path / "projects")
            self.alice.write_all()
            self.send_hook("alice", self.alice, "Stop")
            bob = LiveSession(tmp_path / "projects", BOB_SESSION, RECORDED / "projects" / "-home-dev-notes")
            bob.write_all()
            self.send_hook("bob", bob, "Stop")
            for user, sid in (("alice", WIDGETS), ("bob", BOB_SESSION)):
                client = self.client(user)
                wait_for(lambda c=client, s=sid: c.get(f"/sessions/{s}.json").status_code == 200, timeout=60)
            assert self.client("bob").put(f"/api/sessions/{BOB_SESSION}/visibility", json={"visibility": "org"}).status_code == 200
        except BaseException:  # a set-up that fails leaves no server or connection behind
            self.close()
            raise

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.server.stop()

    def send_hook(self, user: str, session: LiveSession, event: str) -> None:
        """The hook, as ``user``; what it spooled (a loaded machine's server did not
        answer within the hook's second) delivered at once by ``kapacitor sync``
        with the same token: the tests here are about who sees what, not hooks."""
        env = {"KAPACITOR_SERVER": self.server.url, "KAPACITOR_TOKEN": self.tokens[user]}
        sent = run_hook(event, session.payload(event), **env)
        assert sent.returncode == 0
        if spooled(session.session_id):
            synced = subprocess.run([KAPACITOR, "sync"], capture_output=True, text=True, timeout=300, env={**os.environ, **env})
            assert synced.returncode == 0 and not spooled(session.session_id), synced.stdout + synced.stderr

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        self.clients.append(httpx.Client(base_url=self.server.url, headers=headers, timeout=10))
        return self.clients[-1]

    def cookie_client(self, user: str) -> httpx.Client:
        """A browser-like client signed in through the login form."""
        client = self.client()
        page = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        answer = client.post("/login", data={"token": self.tokens[user], "csrf": csrf, "next": "/"})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        return client


def running(tmp_path: Path, store: str | None = None):  # type: ignore[no-untyped-def]
    team = Team(tmp_path, store)
    yield team
    team.close()


@pytest.fixture
def team(tmp_path):
    yield from running(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def each_team(request, tmp_path):
    """The team on a SQLite store, and on PostgreSQL."""
    yield from running(tmp_path, request.getfixturevalue("pg_url") if request.param == "postgresql" else None)


def flat(routes):  # type: ignore[no-untyped-def]
    """Routes with included routers opened (FastAPI keeps them as one entry each)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        yield from flat(inner.routes) if inner is not None else [route]


def app_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, as it is built: later routes are walked too."""
    from kapacitor.server.app import create_app

    app = create_app(f"sqlite://{tmp_path / 'routes.db'}", run_projections=False, auth=True)
    try:
        routes = []
        for route in flat(app.routes):
            if isinstance(route, Mount):
                assert route.path in ("/static", "/docs-assets"), f"a new mount {route.path}: walk it"
                continue
            assert isinstance(route, APIRoute), f"{route.path}: not an APIRoute, so the viewer gate does not run on it"
            routes += [(method, route.path) for method in sorted(route.methods)]
        return routes
    finally:
        app.state.close()


def leaks(text: str, asked: str = "", also: tuple[str, ...] = ()) -> list[str]:
    """The markers of alice's session (and ``also``: her repository's name) in ``text``,
    but one the URL ``asked`` for (a 404 may say which session it did not find)."""
    return [m for m in (*MARKERS, *also) if m in text and m not in asked]


def test_no_route_shows_a_private_session_to_anyone_but_its_owner(each_team, tmp_path):
    team = each_team
    routes = app_routes(tmp_path)
    node = team.client("alice").get(f"/sessions/{WIDGETS}/trace.json").json()["children"][0]["id"]
    queries = {"/sessions/{session_id}/trace/detail": f"?node={node}", "/sessions/{session_id}/chat": "?start=0",
               "/sessions/{session_id}/eval/compare": "?a=no-such-eval&b=no-such-eval",
               "/api/search": "?q=hello", "/search": "?q=hello"}
    viewers = {"anonymous": team.client(), "bob": team.client("bob"), "bob (cookie)": team.cookie_client("bob")}
    alice, root = team.client("alice"), team.client("root")
    fact = {"text": "widgets use tabs", "repo": "org", "session_id": WIDGETS, "by": "agent"}
    assert alice.post("/api/memory/facts", json=fact).status_code == 200  # a fact from her private session
    her_repo = alice.get(f"/sessions/{WIDGETS}.json").json()["repo"]
    assert her_repo != viewers["bob"].get(f"/sessions/{BOB_SESSION}.json").json()["repo"]
    her_scope = "acme/alices-widgets"  # a fact's scope is OWNER/REPO; her session's repository is a directory
    assert alice.post("/api/memory/facts", json=fact | {"repo": her_scope, "text": "widgets build with make"}).status_code == 200
    assert her_scope in alice.get("/memory").text  # the Memory page would list the repository and its facts
    assert leaks(alice.get("/api/memory/facts").text) and leaks(alice.get("/api/search?q=hello").text)
    chat_item = alice.get(f"/sessions/{WIDGETS}/chat.json").json()[0]["id"]
    comment = {"text": "a comment on her private session", "target": {"kind": "chat", "anchor": chat_item}}
    assert alice.post(f"/api/sessions/{WIDGETS}/comments", json=comment).status_code == 201
    assert alice.put(f"/api/sessions/{WIDGETS}/mark", json={"reason": "worth it"}).status_code == 200
    assert leaks(alice.get("/marked.json").text) and leaks(alice.get("/marked").text)  # the lists below would show it
    walked = 0
    for method, path in routes:
        if (method, path) in NOT_READS or path == "/events":
            continue  # the SSE stream is followed below
        unknown = set(re.findall(r"{(\w+)", path)) - {"session_id", *FILL}
        assert not unknown, f"{method} {path}: the walk does not know how to fill {unknown}"
        others = set(re.findall(r"{(\w+)", path)) - {"session_id"} or "no-such" in queries.get(path, "")
        url = re.sub(r"{(\w+)(:\w+)?}", lambda m: WIDGETS if m[1] == "session_id" else FILL[m[1]], path) + queries.get(path, "")
        walked += 1
        if method == "GET":
            head = root.get("/healthz").json()["head"]
            for name, client in viewers.items():
                answer = client.get(url)
                assert not leaks(answer.text, url, (her_repo, her_scope)), f"{name} reads the private session at GET {url}: {answer.status_code}"
                if "{session_id}" in path:
                    assert answer.status_code in (401, 404), (name, url, answer.status_code)
                elif name == "anonymous" and path not in OPEN:
                    assert answer.status_code in (401, 303), (url, answer.status_code)  # sign in first
            assert root.get("/healthz").json()["head"] == head, f"GET {url} appended to the log"  # a read writes nothing
            if others:
                continue  # nothing there (or an outside service, gh): the answers above are what it can show
            owner_view = alice.get(url)
            assert owner_view.status_code == (404 if path.startswith("/login/oidc") else 200), (url, owner_view.status_code)
            if "{session_id}" in path:
                assert leaks(owner_view.text) or path in NOTHING_OF_IT_YET, url
                assert root.get(url).status_code == 200  # an admin sees it too
            assert root.get("/healthz").json()["head"] == head, f"GET {url} appended to the log"  # a read writes nothing
        elif method in ("PUT", "PATCH", "DELETE") and path.startswith("/api/sessions/{session_id}/"):
            body = {"visibility": "public", "reason": "probe", "text": "probe"} if method != "DELETE" else None

            def send(client: httpx.Client, method: str = method, url: str = url, body=body, **headers: str) -> int:  # type: ignore[no-untyped-def]
                return client.request(method, url, json=body, headers=headers).status_code

            assert send(viewers["anonymous"]) == 401
            assert send(viewers["bob"]) == 404
            cookie = viewers["bob (cookie)"]
            assert send(cookie) == 403  # no CSRF token
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', cookie.get("/").text).group(1)  # type: ignore[union-attr]
            assert send(cookie, **{"X-CSRF-Token": csrf}) == 404
        elif (method, path) == ("POST", "/api/ingest/sessions/{session_id}/batches"):
            batch = json.dumps({"v": 1, "session_id": WIDGETS, "transcripts": []})
            for name, client in viewers.items():
                answer = client.post(url, content=batch, headers={"Content-Type": "application/json"})
                assert answer.status_code in (401, 403, 404), (name, answer.status_code)
                assert not leaks(answer.text, url), (name, answer.text)
        elif method == "POST" and (path.startswith(("/sessions/", "/api/memory/", "/memory/", "/api/sessions/"))):
            for name, client in viewers.items():  # writes: nobody but the owner may act on the session
                answer = client.post(url, json={"text": "probe"})
                assert not leaks(answer.text, url), f"{name} reads the private session at POST {url}: {answer.status_code}"
                if "{session_id}" in path:
                    assert answer.status_code in (401, 403, 404, 422), (name, url, answer.status_code)
                elif name == "anonymous":
                    assert answer.status_code in (401, 403), (name, url, answer.status_code)
        else:
            pytest.fail(f"{method} {path} is not walked: say what it may show to whom")
    assert alice.get(f"/sessions/{WIDGETS}.json").json()["visibility"] == "private"
    assert [c["text"] for c in alice.get(f"/api/sessions/{WIDGETS}/comments").json()["comments"]] == [comment["text"]]
    assert [m["author"] for m in alice.get(f"/api/sessions/{WIDGETS}/marks").json()["marks"]] == ["alice"]  # nobody else's writes took
    print(f"\nvisibility walk: {walked} of {len(routes)} routes walked ({len(NOT_READS)} sign-in routes and /events apart)")
    assert walked >= 20

    # Bob sees his own org session in the same lists where alice's stays hidden.
    listing = viewers["bob"].get("/sessions.json").json()
    assert [s["session_id"] for s in listing["sessions"]] == [BOB_SESSION]
    assert {s["session_id"] for s in alice.get("/sessions.json").json()["sessions"]} == {WIDGETS, BOB_SESSION}
    assert sum(r["sessions"] for r in viewers["bob"].get("/repos.json").json()) == 1  # totals for bob
    assert sum(r["sessions"] for r in alice.get("/repos.json").json()) == 2
    assert_figures_stay_private(viewers["bob"], alice, root)


def assert_figures_stay_private(bob: httpx.Client, alice: httpx.Client, root: httpx.Client) -> None:
    """The overview, developer and repository pages sum only what each viewer may see:
    no figure of alice's private session reaches bob (her tokens, her repository, her
    git user), while she and an admin get both sessions' figures."""
    hers, his = (alice.get(f"/sessions/{sid}.json").json() for sid in (WIDGETS, BOB_SESSION))
    days = sorted(s["started"][:10] for s in (hers, his))
    span = f"since={days[0]}&until={days[-1]}"
    for client, sessions in ((bob, [his]), (alice, [hers, his]), (root, [hers, his])):
        figures = client.get(f"/overview.json?{span}").json()
        assert figures["totals"]["sessions"] == len(sessions)
        assert figures["totals"]["tokens"] == sum(total_tokens(s["tokens"]) for s in sessions)
        assert {r["repo"] for r in figures["by_repo"]} == {s["repo"] for s in sessions}
        assert sum(m["tokens"] for m in figures["by_model"]) == figures["totals"]["tokens"]
        timeline = client.get(f"/?{span}", headers={"Accept": "text/html"}).text
        assert f'data-figure="sessions" data-value="{len(sessions)}">' in timeline
    assert hers["repo"] != his["repo"]
    missing = bob.get(f"/repos/acme/no-such-repo.json?{span}")
    assert missing.status_code == 404
    for url in (f"/repos/{hers['repo']}.json?{span}", f"/repos/{hers['repo']}?{span}"):
        hidden = bob.get(url)  # her repository looks like one that does not exist
        assert hidden.status_code == 404 and not leaks(hidden.text.replace(hers["repo"], ""))
    assert bob.get(f"/repos/{hers['repo']}.json?{span}").json()["detail"].replace(hers["repo"], "") == missing.json()["detail"].replace("acme/no-such-repo", "")
    assert alice.get(f"/repos/{hers['repo']}.json?{span}").json()["totals"]["sessions"] == 1
    if hers["user"] and hers["user"] != his["user"]:
        assert bob.get(f"/users/{hers['user']}.json?{span}").status_code == 404


def follow_events(client: httpx.Client, seen: list[str], ready: threading.Event, stop: threading.Event,
                  path: str = "/events") -> None:
    """Collect the lines of ``path`` (a live stream) until ``stop`` (or the client is closed)."""
    try:
        with client.stream("GET", path, timeout=httpx.Timeout(10, read=60)) as stream:
            ready.set()
            for line in stream.iter_lines():
                seen.append(line)
                if stop.is_set():
                    return
    except (httpx.HTTPError, RuntimeError, OSError):
        pass


def follow_all(team, names: dict[str, str | None]) -> tuple[dict[str, list[str]], threading.Event]:
    """``/events`` followed by each of ``names`` (label -> user, None: anonymous)
    until the returned event is set: the lines each saw, by label."""
    seen: dict[str, list[str]] = {name: [] for name in names}
    ready = {name: threading.Event() for name in names}
    stop = threading.Event()
    for name, user in names.items():
        threading.Thread(target=follow_events, args=(team.client(user), seen[name], ready[name], stop), daemon=True).start()
    for event in ready.values():
        assert event.wait(10)
    time.sleep(0.5)
    return seen, stop


def test_the_live_stream_tells_nobody_else_of_a_private_session(team):
    seen, stop = follow_all(team, {"anonymous": None, "bob": "bob", "alice": "alice"})
    team.send_hook("alice", team.alice, "Notification")
    wait_for(lambda: any(WIDGETS in line for line in seen["alice"]))
    time.sleep(1.0)  # any message for the others went out with alice's
    stop.set()
    assert not leaks("\n".join(seen["bob"])) and not leaks("\n".join(seen["anonymous"]))
    assert any("hello" in line for line in seen["bob"])  # bob's stream was open all along


def test_the_live_stream_tells_nobody_else_of_comments_on_a_private_session(team):
    seen, stop = follow_all(team, {"anonymous": None, "bob": "bob", "alice": "alice"})
    alice = team.client("alice")
    assert alice.post(f"/api/sessions/{WIDGETS}/comments", json={"text": "private thoughts"}).status_code == 201
    assert alice.put(f"/api/sessions/{WIDGETS}/mark", json={}).status_code == 200
    wait_for(lambda: any('"comments": ["' + WIDGETS in line for line in seen["alice"]))
    assert team.client("bob").post(f"/api/sessions/{BOB_SESSION}/comments", json={"text": "org thoughts"}).status_code == 201
    wait_for(lambda: any(BOB_SESSION in line for line in seen["bob"]))  # bob's stream does carry comments
    time.sleep(1.0)
    stop.set()
    assert not leaks("\n".join(seen["bob"])) and not leaks("\n".join(seen["anonymous"]))
    assert not any(BOB_SESSION in line for line in seen["anonymous"])  # org, not public


def test_a_session_shared_with_the_org_reaches_open_timelines_live(team):
    """Visibility is access control, not an event: its change is announced by itself,
    to the viewers who may see the session now (or could before it went private)."""
    seen, stop = follow_all(team, {"anonymous": None, "bob": "bob"})
    alice, bob, url = team.client("alice"), team.client("bob"), f"/api/sessions/{WIDGETS}/visibility"
    assert alice.put(url, json={"visibility": "org"}).status_code == 200
    wait_for(lambda: any(WIDGETS in line for line in seen["bob"]))
    assert WIDGETS in {s["session_id"] for s in bob.get("/sessions.json").json()["sessions"]}  # what the page re-fetches
    seen["bob"].clear()
    assert alice.put(url, json={"visibility": "private"}).status_code == 200
    wait_for(lambda: any(WIDGETS in line for line in seen["bob"]))  # he saw it: his list drops it
    assert WIDGETS not in {s["session_id"] for s in bob.get("/sessions.json").json()["sessions"]}
    time.sleep(1.0)
    stop.set()
    assert not any(WIDGETS in line for line in seen["anonymous"])  # org, never public


def test_a_session_sent_with_a_users_token_is_that_users(team):
    """The session's user is the account whose token sent it (not the OS login or
    git identity of the laptop, which stays as ``git_user``): filtering by user finds it."""
    alice = team.client("alice")
    assert alice.get(f"/sessions/{WIDGETS}.json").json()["user"] == "alice"
    assert [s["session_id"] for s in alice.get("/sessions.json?user=alice").json()["sessions"]] == [WIDGETS]
    assert [s["session_id"] for s in team.client("root").get("/sessions.json?user=bob").json()["sessions"]] == [BOB_SESSION]


def test_ingest_answers_for_a_session_the_caller_may_not_see_as_every_read_does(team, tmp_path):
    """Bob's batch for alice's private session gets the 404 a read gets (ingest does
    not confirm it exists); the real hook keeps that batch in its spool, in order, and
    sets nothing aside: nothing is lost. A truly new id is Bob's. Alice, who may see
    Bob's org session, is told it is not hers to write (403)."""
    bob, alice = team.client("bob"), team.client("alice")

    def batch(session_id: str) -> str:
        return json.dumps({"v": 1, "session_id": session_id, "transcripts": [], "hook": {
            "event": "Stop", "at": "2026-11-29T22:52:59.064862Z", "payload": {"session_id": session_id}}})

    def post(client: httpx.Client, session_id: str) -> httpx.Response:
        return client.post(f"/api/ingest/sessions/{session_id}/batches", content=batch(session_id),
                           headers={"Content-Type": "application/json"})

    read, written = bob.get(f"/sessions/{WIDGETS}.json"), post(bob, WIDGETS)
    assert (written.status_code, written.json()) == (read.status_code, read.json()) == (404, {"detail": f"no such session {WIDGETS!r}"})
    new = "5b0f3c1e-2d4a-4c8e-9f1a-0e6d7c8b9a01"
    read_new, written_new = bob.get(f"/sessions/{new}.json"), post(bob, new)
    assert (read_new.status_code, read_new.json()) == (404, {"detail": f"no such session {new!r}"})  # reads cannot tell the two apart
    assert written_new.status_code == 200 and written_new.json() == {"added": 1, "skipped": 0}
    assert wait_for(lambda: bob.get(f"/sessions/{new}.json").status_code == 200, timeout=60)
    assert alice.get(f"/sessions/{new}.json").status_code == 404  # Bob's, private
    refused = post(alice, BOB_SESSION)
    assert (refused.status_code, refused.json()) == (403, {"detail": f"session {BOB_SESSION!r} belongs to another user"})
    assert alice.get(f"/sessions/{BOB_SESSION}.json").status_code == 200  # she sees it: the 403 tells her nothing new

    # A session imported on the server has no owner (admins only): posting to it
    # does not make Bob its owner (he would read it all), and he learns nothing.
    imported = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"
    cli(team.db, "import", str(RECORDED / "projects" / "-home-dev-src-api-server"))
    root = team.client("root")
    assert wait_for(lambda: root.get(f"/sessions/{imported}.json").status_code == 200, timeout=60)
    written = post(bob, imported)
    assert (written.status_code, written.json()) == (404, {"detail": f"no such session {imported!r}"})
    assert bob.get(f"/sessions/{imported}.json").status_code == 404
    db = accounts.open_accounts(team.db)
    try:
        assert accounts.session_owner(db, imported) == ""
    finally:
        db.close()

    # The real hook, with Bob's token, on alice's session id: spooled, not set aside.
    env = {"KAPACITOR_SERVER": team.server.url, "KAPACITOR_TOKEN": team.tokens["bob"]}
    assert run_hook("PostToolUse", team.alice.payload("PostToolUse"), **env).returncode == 0
    assert len(spooled(WIDGETS)) == 1 and pending(WIDGETS) == []
    synced = subprocess.run([KAPACITOR, "sync"], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert synced.returncode == 1 and "still spooled" in synced.stderr and "404" in synced.stderr, synced.stderr
    assert len(spooled(WIDGETS)) == 1 and pending(WIDGETS) == []


def test_an_empty_timeline_says_why_to_a_team_member(tmp_path):
    """Bob, who may see nothing yet, is told sessions may be private and how his own
    arrive, not to import (he cannot) or run the demo."""
    tokens = make_users(tmp_path / "empty.db")
    server = Server(tmp_path / "empty.db", None, "--auth").start()
    try:
        def timeline(user: str) -> str:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens[user]}"}) as client:
                return client.get("/", headers={"Accept": "text/html"}).text

        page = timeline("bob")
        assert "No sessions match." in page and "may be private" in page and "kapacitor setup --server" in page
        assert "kapacitor import" not in page and "--demo" not in page
        assert "kapacitor import" in timeline("root")  # an admin may import
    finally:
        server.stop()


def test_visibility_opens_a_session_to_the_org_then_to_anyone(team):
    alice, bob, anonymous = team.client("alice"), team.client("bob"), team.client()
    url = f"/api/sessions/{WIDGETS}/visibility"
    assert bob.put(url, json={"visibility": "org"}).status_code == 404
    assert alice.put(url, json={"visibility": "org"}).json() == {"session_id": WIDGETS, "owner": "alice", "visibility": "org"}
    assert bob.get(f"/sessions/{WIDGETS}.json").json()["owner"] == "alice"
    assert bob.put(url, json={"visibility": "public"}).status_code == 403  # sees it, may not change it
    assert anonymous.get(f"/sessions/{WIDGETS}").status_code == 404
    assert anonymous.get("/sessions.json").status_code == 401
    assert alice.put(url, json={"visibility": "public"}).status_code == 200
    page = anonymous.get(f"/sessions/{WIDGETS}")
    assert page.status_code == 200 and "create hello.py" in page.text and 'id="visibility"' not in page.text
    assert alice.put(url, json={"visibility": "everyone"}).status_code == 422


def test_a_revoked_token_is_refused_at_once_even_in_a_signed_in_browser(team):
    browser = team.cookie_client("bob")
    assert browser.get("/sessions.json").status_code == 200
    token_id = next(t["id"] for t in json.loads(cli(team.db, "tokens", "list", "--json")) if t["user"] == "bob")
    cli(team.db, "tokens", "revoke", token_id)
    assert team.client("bob").get("/sessions.json").status_code == 401
    assert browser.get("/sessions.json").status_code == 401
    page = browser.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login"), (page.status_code, page.text[:300])


def test_a_signed_in_browsers_plain_forms_carry_their_csrf_token(team):
    """The Memory page's forms (add, edit, retire a fact; an eval's review form is
    another) are plain HTML forms (no script sets ``X-CSRF-Token``): a browser
    signed in by cookie sends the page's token as their ``csrf`` field, so its post
    is taken; without it, or with another, it is refused (403), nothing written."""
    browser = team.cookie_client("alice")
    page = browser.get("/memory", headers={"Accept": "text/html"}).text
    forms = re.findall(r'<form[^>]*method="post"[^>]*>.*?</form>', page, re.S)
    assert forms and all('name="csrf" value="' in form for form in forms if "/logout" not in form)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    fact = {"text": "widgets build with make", "scope": "org"}
    assert browser.post("/memory/facts", data=fact).status_code == 403
    assert browser.post("/memory/facts", data=fact | {"csrf": "forged"}).status_code == 403
    assert "widgets build with make" not in browser.get("/memory", headers={"Accept": "text/html"}).text
    added = browser.post("/memory/facts", data=fact | {"csrf": csrf})
    assert added.status_code == 303, added.text
    page = browser.get("/memory", headers={"Accept": "text/html"}).text
    assert "widgets build with make" in page
    retire = re.search(r'action="(/memory/facts/[^"]+/retire)"', page).group(1)  # type: ignore[union-attr]
    assert browser.post(retire, data={"scope": "org", "csrf": csrf}).status_code == 303
    assert "widgets build with make" not in browser.get("/memory", headers={"Accept": "text/html"}).text  # retired
    review = {"question_id": "quality", "agree": "true"}  # a route whose handler takes the form's fields itself
    url = f"/sessions/{WIDGETS}/eval/no-such-eval/reviews"
    assert browser.post(url, data=review).status_code == 403
    assert browser.post(url, data=review | {"csrf": csrf}).status_code == 404  # past the check: there is no such eval


def test_sign_in_needs_the_forms_csrf_token_and_a_good_token(team):
    client = team.client()
    assert client.post("/login", data={"token": team.tokens["bob"], "csrf": "forged"}).status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    wrong = client.post("/login", data={"token": "kpc_nope", "csrf": csrf})
    assert wrong.status_code == 401 and "Unknown or revoked token" in wrong.text
    assert client.post("/login", data={"token": team.tokens["bob"], "csrf": csrf, "next": "//evil.example"}).headers["location"] == "/"
    assert client.get("/healthz").status_code == 200
    anonymous = httpx.get(team.server.url + "/healthz")  # open to all (a load balancer's probe) ...
    assert anonymous.status_code == 200 and anonymous.json().keys() == {"ok", "version"}  # ... but no count of events
    assert {"head", "lag", "projections"} <= team.client("bob").get("/healthz").json().keys()
    assert httpx.get(team.server.url + "/static/app.css").status_code == 200


def test_the_cli_makes_users_and_tokens_and_keeps_only_hashes(tmp_path):
    db = tmp_path / "team.db"
    cli(db, "users", "add", "ana", "--email", "ana@example.com", "--admin")
    made = json.loads(cli(db, "tokens", "create", "--user", "ana", "--json"))
    assert made["user"] == "ana" and made["token"].startswith("kpc_")
    assert json.loads(cli(db, "users", "list", "--json"))[0] | {"created_at": ""} == {
        "name": "ana", "email": "ana@example.com", "admin": True, "default_visibility": "private", "created_at": ""}
    cli(db, "users", "set", "ana", "--default-visibility", "org")
    assert json.loads(cli(db, "users", "list", "--json"))[0]["default_visibility"] == "org"
    assert made["token"].encode() not in db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("team.db-*"))
    [listed] = json.loads(cli(db, "tokens", "list", "--json"))
    assert listed["id"] == made["id"] and "token" not in listed
    cli(db, "tokens", "revoke", made["id"])
    again = subprocess.run([KAPACITOR, "--store", f"sqlite://{db}", "tokens", "revoke", made["id"]], capture_output=True, text=True)
    assert again.returncode == 1 and again.stderr.strip() == f"Error: token {made['id']!r} is already revoked"
    unknown = subprocess.run([KAPACITOR, "--store", f"sqlite://{db}", "tokens", "create", "--user", "zed"], capture_output=True, text=True)
    assert unknown.returncode == 1 and "no user 'zed'" in unknown.stderr and "Traceback" not in unknown.stderr
