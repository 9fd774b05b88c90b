"""Access changes reach every server's open pages, live: two real ``kapacitor
serve --auth`` processes on one store (one SQLite file, and PostgreSQL), a change
made through one of them, by ingest or by the CLI (``users set``, ``repos set``,
``tokens revoke``, ``store copy``), and ``/events`` followed on both. Each
viewer's stream names the session when they may see it now or could before (their
timeline gains or drops it); nobody else's stream ever names it. A user whose
rights change (admin, a revoked token) has their streams told to re-read
everything, as they are now; pages open in Chromium lose what they may no longer
see. And every write to the access tables goes through the one announce path."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright
from starlette.requests import Request
from test_comments_browser import signed_in

from browser import launch
from capture_helpers import WIDGETS, LiveSession, Server, wait_for
from conftest import RECORDED, SAMPLE_DIRS
from fake_judge import FakeJudge
from kapacitor.access import accounts
from kapacitor.capture.importer import import_paths
from kapacitor.capture.synthetic import replicate
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.server.access import gate, identified_as_of
from kapacitor.server.live import LiveHub
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from test_access import BOB_SESSION, Team, cli, follow_events, make_users
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

VIEWERS = {"anonymous": None, "bob": "bob", "alice": "alice", "root": "root"}
SIGNED_IN = set(VIEWERS) - {"anonymous"}
"""Who hears of a session turning public: an anonymous visitor may follow no stream
but a public session's page's (refused here: ``test_live_streams`` follows one)."""
API = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"  # recorded in -home-dev-src-api-server
TODO = "922a15d3-3e4d-471a-9a7e-754f15615295"  # the other recorded session in -home-dev-src-widgets
SRC = Path(accounts.__file__).parents[1]
SESSIONS = json.loads((RECORDED / "sessions.json").read_text())


class TwoServers:
    """The team of ``test_access`` (server A) and a second server B on its store,
    with ``/events`` followed by every viewer on both."""

    def __init__(self, team: Team):
        self.team = team
        self.b = Server(team.db, None, "--auth").start().caught_up(token=team.tokens["root"])
        self.servers = {"A": team.server, "B": self.b}
        self.seen: dict[tuple[str, str], list[str]] = {}
        self.stop = threading.Event()
        ready = []
        for server_name, server in self.servers.items():
            for name, user in VIEWERS.items():
                lines: list[str] = []
                self.seen[server_name, name] = lines
                headers = {"Authorization": f"Bearer {team.tokens[user]}"} if user else {}
                client = httpx.Client(base_url=server.url, headers=headers, timeout=10)
                team.clients.append(client)
                started = threading.Event()
                ready.append(started)
                threading.Thread(target=follow_events, args=(client, lines, started, self.stop), daemon=True).start()
        for started in ready:
            assert started.wait(10)
        time.sleep(0.5)

    def close(self) -> None:
        self.stop.set()
        self.b.stop()
        self.team.close()

    def named(self, server: str, viewer: str, session: str = WIDGETS) -> bool:
        return any(session in line for line in self.seen[server, viewer])

    def told_all(self, server: str, viewer: str) -> bool:
        """Was ``viewer``'s stream on ``server`` told to re-read everything?"""
        return any(line.startswith("data:") and json.loads(line[5:]).get("all") for line in self.seen[server, viewer])

    def clear(self) -> None:
        for lines in self.seen.values():
            lines.clear()

    def url(self) -> str:
        """The store's URL, as ``--store`` takes it."""
        return self.team.db if isinstance(self.team.db, str) else f"sqlite://{self.team.db}"

    def key_of(self, session: str) -> str:
        """A session's repository key, as the read models have it."""
        db = accounts.open_accounts(self.team.db)
        try:
            return str(db.execute("SELECT key FROM repository_sessions WHERE session_id = ?", (session,)).fetchone()[0])
        finally:
            db.close()

    def timeline(self, server: str, user: str) -> dict:
        """The first page of ``user``'s timeline on ``server`` (what the page re-fetches)."""
        url = self.servers[server].url
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {self.team.tokens[user]}"}) as client:
            return client.get("/sessions.json").json()  # type: ignore[no-any-return]

    def listed(self, server: str, user: str) -> set[str]:
        """The sessions on the first page of ``user``'s timeline on ``server``."""
        return {s["session_id"] for s in self.timeline(server, user)["sessions"]}

    def reaches(self, viewers: set[str], session: str = WIDGETS) -> None:
        """Every stream of ``viewers`` on both servers names ``session`` soon; the
        others never do (waited for as long as the message took to arrive)."""
        for server in self.servers:
            for viewer in viewers:
                wait_for(lambda s=server, v=viewer: self.named(s, v, session), timeout=10)
        time.sleep(1.0)  # any message for the others went out with these
        for server in self.servers:
            for viewer in set(VIEWERS) - viewers:
                assert not self.named(server, viewer, session), (server, viewer)


@contextmanager
def bob_on_b(two: TwoServers, tmp_path: Path, path: str):  # type: ignore[no-untyped-def]
    """Bob signed in to server B in real Chromium, ``path`` open and its live stream
    connected: (the browser context, the page)."""
    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path / "chromium")
        try:
            page = signed_in(context, SimpleNamespace(server=two.b, tokens=two.team.tokens), "bob")
            opened(page, two.b.url + path)
            yield context, page
        finally:
            context.close()


def opened(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    expect(page.locator("#live-indicator.connected")).to_be_visible()


@pytest.fixture(params=["sqlite", "postgresql"])
def two(request, tmp_path):
    team = Team(tmp_path, request.getfixturevalue("pg_url") if request.param == "postgresql" else None)
    try:
        servers = TwoServers(team)
    except BaseException:
        team.close()
        raise
    yield servers
    servers.close()


def test_a_visibility_change_on_one_server_reaches_the_timelines_open_on_the_other(two):
    alice, url = two.team.client("alice"), f"/api/sessions/{WIDGETS}/visibility"
    assert alice.put(url, json={"visibility": "org"}).status_code == 200  # through server A
    two.reaches({"bob", "alice", "root"})  # bob gains it on both servers; anonymous learns nothing
    assert WIDGETS in two.listed("B", "bob")
    two.clear()
    assert alice.put(url, json={"visibility": "private"}).status_code == 200
    two.reaches({"bob", "alice", "root"})  # bob could see it: his list drops it
    assert WIDGETS not in two.listed("B", "bob")
    two.clear()
    assert alice.put(url, json={"visibility": "public"}).status_code == 200
    two.reaches(SIGNED_IN)
    assert WIDGETS in two.listed("B", "bob")


def test_default_visibility_set_by_the_cli_reaches_every_servers_open_timelines(two):
    """``kapacitor users set`` / ``repos set`` change no server, yet both announce
    the sessions whose visibility follows from the default they changed."""
    store, key = two.team.db, two.key_of(WIDGETS)
    cli(store, "users", "set", "alice", "--default-visibility", "org")
    two.reaches({"bob", "alice", "root"})
    assert WIDGETS in two.listed("B", "bob") and WIDGETS in two.listed("A", "bob")
    two.clear()
    cli(store, "repos", "set", key, "--default-visibility", "public")
    two.reaches(SIGNED_IN)
    two.clear()
    cli(store, "repos", "set", key, "--default-visibility", "private")
    two.reaches({"bob", "alice", "root"})  # bob could see it: his list drops it
    assert WIDGETS not in two.listed("B", "bob")
    two.clear()
    cli(store, "users", "set", "bob", "--default-visibility", "public")  # bob's session has its own setting (org)
    time.sleep(1.5)
    assert not any(two.named(s, v, BOB_SESSION) for s in two.servers for v in VIEWERS)  # nothing changed: no news


def test_a_timeline_open_in_chromium_on_the_other_server_gains_and_drops_the_session(two, tmp_path):
    """What the streams above drive: bob's timeline, open in real Chromium on server
    B, shows alice's session once she shares it through server A, and drops it when
    she makes it private again, without a reload."""
    with bob_on_b(two, tmp_path, "/") as (_, page):
        row = page.locator(f'tr[data-session="{WIDGETS}"]')
        expect(row).to_have_count(0)
        alice, url = two.team.client("alice"), f"/api/sessions/{WIDGETS}/visibility"
        assert alice.put(url, json={"visibility": "org"}).status_code == 200
        expect(row).to_have_count(1, timeout=10_000)
        assert alice.put(url, json={"visibility": "private"}).status_code == 200
        expect(row).to_have_count(0, timeout=10_000)
        assert page.errors == []


def test_making_and_unmaking_an_admin_reaches_that_users_open_streams_on_every_server(two):
    """``users set bob --admin`` changes everything bob may see: his streams on both
    servers are told to re-read everything and from then on hear of what an admin
    may see (alice's private session); ``--no-admin`` the same way back. Nobody
    else is told anything."""
    store, key = two.team.db, two.key_of(WIDGETS)
    cli(store, "users", "set", "bob", "--admin")
    for server in two.servers:
        wait_for(lambda s=server: two.told_all(s, "bob"), timeout=10)
    time.sleep(1.0)
    assert not any(two.told_all(s, v) for s in two.servers for v in VIEWERS if v != "bob")
    assert WIDGETS in two.listed("B", "bob")  # private, alice's: his page's re-read lists it
    two.clear()
    cli(store, "repos", "set", key, "--default-visibility", "private")  # WIDGETS stays private: admins hear of it
    two.reaches({"bob", "alice", "root"})
    two.clear()
    cli(store, "users", "set", "bob", "--no-admin")
    for server in two.servers:
        wait_for(lambda s=server: two.told_all(s, "bob"), timeout=10)
    assert WIDGETS not in two.listed("B", "bob")
    two.clear()
    cli(store, "repos", "set", key, "--default-visibility", "private")
    two.reaches({"alice", "root"})  # bob is no admin on either server any more
    two.clear()
    cli(store, "users", "set", "bob", "--no-admin")  # nothing changes: no news
    time.sleep(1.5)
    assert not any(two.told_all(s, v) for s in two.servers for v in VIEWERS)


def test_a_revoked_token_leaves_the_streams_it_opened_with_what_anyone_may_see(two):
    """``tokens revoke``: bob's open streams, signed in with that token, are told to
    re-read everything (his pages then meet the sign-in page) and from then on hear
    only of what an anonymous viewer may see: not of his org session going private."""
    store = two.team.db
    [bobs] = [t["id"] for t in json.loads(cli(store, "tokens", "list", "--json")) if t["user"] == "bob"]
    cli(store, "tokens", "revoke", bobs)
    for server in two.servers:
        wait_for(lambda s=server: two.told_all(s, "bob"), timeout=10)
    two.clear()
    root = two.team.client("root")
    assert root.put(f"/api/sessions/{BOB_SESSION}/visibility", json={"visibility": "private"}).status_code == 200
    two.reaches({"alice", "root"}, BOB_SESSION)  # alice could see it (org); bob's old stream is nobody's now


def test_a_session_a_users_token_sends_reaches_whoever_may_see_it_on_every_server(two, tmp_path):
    """Ingest makes the token's user the owner of a session new to the store before
    its first events are stored: alice's default is org, so bob's streams on both
    servers hear of her new session as it arrives; anonymous never does."""
    cli(two.team.db, "users", "set", "alice", "--default-visibility", "org")
    two.reaches({"bob", "alice", "root"})
    two.clear()
    session = LiveSession(tmp_path / "more", API, RECORDED / "projects" / "-home-dev-src-api-server")
    session.write_all()
    two.team.send_hook("alice", session, "Stop")
    two.reaches({"bob", "alice", "root"}, API)
    assert API in two.listed("B", "bob") and API in two.listed("A", "bob")


def test_store_copy_into_a_store_servers_run_on_shows_each_session_as_its_access_says(two, tmp_path):
    """``store copy`` from a laptop into the store both servers run on: the session
    the team store held without an owner (imported there) gets alice as its owner
    and org, announced, so bob's timelines gain it; a session private on the laptop
    never reaches bob, not even while its events arrive under the team store's
    repository default of org; anonymous hears of neither."""
    store, url = two.team.db, two.url()
    two.clear()
    cli(store, "import", str(RECORDED / "projects" / "-home-dev-src-api-server"))  # ownerless: root's only
    two.reaches({"root"}, API)
    cli(store, "repos", "set", two.key_of(WIDGETS), "--default-visibility", "org")
    two.clear()

    laptop = tmp_path / "laptop.db"
    cli(laptop, "import", str(RECORDED / "projects" / "-home-dev-src-api-server"),
        str(RECORDED / "projects" / "-home-dev-src-widgets" / f"{TODO}.jsonl"))
    db = accounts.open_accounts(laptop)
    try:
        accounts.add_user(db, "alice")
        for session, visibility in ((API, "org"), (TODO, "private")):
            accounts.claim_session(db, session, "alice")
            accounts.set_session_visibility(db, session, visibility)
    finally:
        db.close()
    cli(laptop, "store", "copy", f"sqlite://{laptop}", url)
    two.reaches({"bob", "alice", "root"}, API)
    two.reaches({"alice", "root"}, TODO)
    assert two.key_of(TODO) == two.key_of(WIDGETS)  # the repository whose default is org in the team store
    assert API in two.listed("B", "bob") and TODO not in two.listed("B", "bob") and TODO in two.listed("A", "alice")


def test_a_session_page_open_in_chromium_goes_when_its_viewer_may_no_longer_see_it(two, tmp_path):
    """Bob's page of alice's session, open in Chromium on server B, turns into the
    404 page when she makes it private through server A, and again when, made an
    admin, he had it open and is made an admin no more; his page of his own session
    turns into the sign-in page when the token he signed in with is revoked: nothing
    he may not see stays on his screen. Each time without a reload of his own."""
    alice, url = two.team.client("alice"), f"/api/sessions/{WIDGETS}/visibility"
    assert alice.put(url, json={"visibility": "org"}).status_code == 200
    with bob_on_b(two, tmp_path, f"/sessions/{WIDGETS}") as (_, page):
        chat = page.locator("#session-head")
        expect(chat).to_have_count(1)
        assert alice.put(url, json={"visibility": "private"}).status_code == 200
        expect(chat).to_have_count(0, timeout=10_000)
        expect(page.get_by_text("no such session")).to_be_visible()

        cli(two.team.db, "users", "set", "bob", "--admin")
        opened(page, f"{two.b.url}/sessions/{WIDGETS}")
        expect(chat).to_have_count(1)
        cli(two.team.db, "users", "set", "bob", "--no-admin")
        expect(chat).to_have_count(0, timeout=10_000)
        expect(page.get_by_text("no such session")).to_be_visible()

        opened(page, f"{two.b.url}/sessions/{BOB_SESSION}")  # his own
        expect(chat).to_have_count(1)
        [bobs] = [t["id"] for t in json.loads(cli(two.team.db, "tokens", "list", "--json")) if t["user"] == "bob"]
        cli(two.team.db, "tokens", "revoke", bobs)  # the token he signed in with
        expect(page.locator("#token")).to_be_visible(timeout=10_000)  # sent to sign in
        assert [e for e in page.errors if not re.search(r"status of (404|401) ", e)] == []  # the re-reads refused


def test_over_two_thousand_sessions_changed_at_once_make_the_pages_that_see_them_re_read_everything(two, tmp_path):
    """More sessions change at once than a message lists (``live.MAX_LISTED``): a
    repository default opens 2,050 sessions to the org, then closes them again. The
    streams of whoever may see one of them now or could before are told to re-read
    everything (anonymous, who may see none, is not), and bob's pages in Chromium
    on the other server re-read: his timeline gains them, then loses every one, and
    the page of one of them turns into the 404 page."""
    prompt = (RECORDED / "projects" / "-home-dev-notes" / f"{BOB_SESSION}.jsonl").read_bytes().splitlines(keepends=True)[:3]
    one = tmp_path / "one" / "projects" / "-home-dev-notes" / f"{BOB_SESSION}.jsonl"  # a prompt: a session of its own
    one.parent.mkdir(parents=True)
    one.write_bytes(b"".join(prompt))
    copies = [path.stem for path in replicate(tmp_path / "one", tmp_path / "many", 2050) if path.suffix == ".jsonl"]
    cli(two.team.db, "import", str(tmp_path / "many" / "projects"))  # no owner: private, root's only
    for server in two.servers.values():
        server.caught_up(token=two.team.tokens["root"])
    key = two.key_of(copies[1])
    assert len(copies) == 2050 and two.timeline("B", "root")["total"] == 2050 + 2
    with bob_on_b(two, tmp_path, "/") as (context, page):
        rows = page.locator("tr[data-session]")
        expect(rows).to_have_count(1)  # his own
        two.clear()
        cli(two.team.db, "repos", "set", key, "--default-visibility", "org")
        for server in two.servers:
            for viewer in ("bob", "alice", "root"):
                wait_for(lambda s=server, v=viewer: two.told_all(s, v), timeout=10)
        expect(rows.nth(5)).to_be_visible(timeout=10_000)  # a page of them
        assert two.timeline("B", "bob")["total"] == 2050 + 1
        session = context.new_page()
        opened(session, f"{two.b.url}/sessions/{copies[7]}")
        expect(session.locator("#session-head")).to_have_count(1)
        two.clear()
        cli(two.team.db, "repos", "set", key, "--default-visibility", "private")
        expect(rows).to_have_count(1, timeout=10_000)
        assert page.locator(f'tr[data-session="{BOB_SESSION}"]').count() == 1
        expect(session.get_by_text("no such session")).to_be_visible(timeout=10_000)
        assert two.timeline("B", "bob")["total"] == 1
        time.sleep(1.0)
        assert not any(two.told_all(s, "anonymous") for s in two.servers)
        assert page.errors == []


@pytest.fixture(params=["sqlite", "postgresql"])
def judged_team(request, tmp_path):
    """The team of ``test_access``, its server's judge a scripted one on loopback
    that takes 1.5 s a question: an eval runs for several seconds."""
    judge = FakeJudge({"*": [{"sleep": 1.5}]})
    env = {"KAPACITOR_JUDGE": "anthropic", "ANTHROPIC_BASE_URL": judge.url, "ANTHROPIC_API_KEY": "sk-ant-fake"}
    try:
        team = Team(tmp_path, request.getfixturevalue("pg_url") if request.param == "postgresql" else None, **env)
    except BaseException:
        judge.close()
        raise
    yield team
    team.close()
    judge.close()


def said(lines: list[str]) -> list[str]:
    """An SSE stream's lines less its pings and blank lines."""
    return [line for line in lines if line and not line.startswith(":")]


def test_an_evals_progress_stops_reaching_whoever_may_no_longer_see_its_session(judged_team):
    """The progress of an eval under way (``/sessions/{id}/eval/jobs/{job}/events``)
    follows its viewer's rights as ``/events`` does: bob's stream of an eval of
    alice's org session ends with ``gone`` when she makes it private, and his stream
    of his own session's eval (queued behind it) when the token he signed in with is
    revoked; he is told nothing after. Alice's streams of both go on to ``done``."""
    team = judged_team
    alice, bob = team.client("alice"), team.client("bob")
    assert alice.put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "org"}).status_code == 200
    jobs = {sid: bob.post(f"/sessions/{sid}/eval/run").json()["events"] for sid in (WIDGETS, BOB_SESSION)}
    seen: dict[tuple[str, str], list[str]] = {}
    followers: dict[tuple[str, str], threading.Thread] = {}
    stop = threading.Event()
    for user in ("bob", "alice"):
        for sid, events in jobs.items():
            seen[user, sid], started = [], threading.Event()
            followers[user, sid] = threading.Thread(target=follow_events, daemon=True,
                                                    args=(team.client(user), seen[user, sid], started, stop, events))
            followers[user, sid].start()
            assert started.wait(10)
    try:
        wait_for(lambda: "event: progress" in seen["bob", WIDGETS], timeout=60)  # under way, and bob follows it
        assert alice.put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "private"}).status_code == 200
        wait_for(lambda: not followers["bob", WIDGETS].is_alive(), timeout=15)
        [bobs] = [t["id"] for t in json.loads(cli(team.db, "tokens", "list", "--json")) if t["user"] == "bob"]
        cli(team.db, "tokens", "revoke", bobs)
        wait_for(lambda: not followers["bob", BOB_SESSION].is_alive(), timeout=15)
        for sid in jobs:
            wait_for(lambda s=sid: "event: done" in seen["alice", s], timeout=120)
    finally:
        stop.set()
    for sid in jobs:
        end = said(seen["bob", sid])[-2:]
        assert end == ["event: gone", f'data: {{"detail": "no such session {sid!r}"}}'], said(seen["bob", sid])
        assert "event: done" not in seen["bob", sid]
        assert said(seen["bob", sid]).count("event: progress") < said(seen["alice", sid]).count("event: progress")
    assert "event: progress" not in seen["bob", BOB_SESSION]  # it started after his token was revoked
    assert "event: gone" not in seen["alice", WIDGETS] + seen["alice", BOB_SESSION]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    return f"sqlite://{tmp_path / 'events.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def stream_request(db, token: str) -> Request:  # type: ignore[no-untyped-def]
    """``GET /events`` with ``token``, as the app's gate meets it."""
    app = SimpleNamespace(state=SimpleNamespace(auth=True, db=db))
    return Request({"type": "http", "method": "GET", "path": "/events", "query_string": b"", "app": app,
                    "route": SimpleNamespace(path="/events"), "headers": [(b"authorization", f"Bearer {token}".encode())]})


def test_a_change_landing_between_a_streams_sign_in_and_its_start_still_reaches_it(store_url):
    """The race at a stream's start: ``/events`` identifies its viewer (the app's
    gate), a rights change lands and the hub announces it to the streams it has,
    and only then is the new stream registered. The hub knows which access change
    the viewer was identified as of, so its next look catches the stream up: bob,
    made an admin, is signed in again and told to re-read everything, and hears
    from then on what an admin hears; alice hears of the session that became hers
    to see. A stream identified after the change has nothing to catch up."""
    store = open_store(store_url)
    import_paths(store, SAMPLE_DIRS)
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    runner.catch_up()
    tokens = make_users(store_url)
    db = accounts.open_accounts(store_url)
    hub = LiveHub(store, db, [p.name for p in PROJECTIONS])
    shared, hidden = (SESSIONS[name]["session_id"] for name in ("api-fix", "notes-denied"))  # imported: no owner, private

    async def scenario() -> None:
        await hub.start()
        as_bob, as_alice = stream_request(db, tokens["bob"]), stream_request(db, tokens["alice"])
        bob, alice = gate(as_bob), gate(as_alice)  # identified ...
        accounts.set_user(db, "bob", admin=True)  # ... the changes land ...
        accounts.set_session_visibility(db, shared, "org")
        await hub.step()  # ... and are announced to the streams the hub has ...
        late_bob = hub.subscribe(bob, seen=identified_as_of(as_bob))  # ... before these start
        late_alice = hub.subscribe(alice, seen=identified_as_of(as_alice))
        assert identified_as_of(as_bob) < hub.access_seq and not bob.admin
        await hub.step()
        assert late_bob.get_nowait() == hub.everything() and hub.queues[late_bob].admin and late_bob.empty()
        assert late_alice.get_nowait()["sessions"] == [shared] and not hub.queues[late_alice].admin
        accounts.set_session_visibility(db, hidden, "private")  # what an admin may see, and alice may not
        await hub.step()
        assert late_bob.get_nowait()["sessions"] == [hidden] and late_alice.empty()
        as_carol = stream_request(db, tokens["bob"])  # identified after the changes: nothing missed
        on_time = hub.subscribe(gate(as_carol), seen=identified_as_of(as_carol))
        await hub.step()
        assert on_time.empty() and hub.queues[on_time].admin

    try:
        asyncio.run(scenario())
    finally:
        runner.close()
        db.close()
        store.close()


WRITES = re.compile(r"\b(?:INSERT INTO|UPDATE|DELETE FROM)\s+(?:users|tokens|session_access|repository_access)\b(?:\s+SET\s+\w+)?")
UNSEEN = {
    ("create_token", "INSERT INTO tokens"): "a new token signs nobody in until it is used",
    ("set_user", "UPDATE users SET email"): "an email changes only whom OIDC signs in, at sign-in",
}
"""Writes to the access tables that change nobody's view, and why."""


def access_writes(tree: ast.AST) -> dict[tuple[str, str], bool]:
    """Each write to the access tables in ``tree`` (function, statement's head), and
    whether it is made inside ``with changes.changing(...)``."""
    found: dict[tuple[str, str], bool] = {}

    def visit(node: ast.AST, function: str, announced: bool) -> None:
        if isinstance(node, ast.FunctionDef):
            function = node.name
        if isinstance(node, ast.With) and any(
                isinstance(item.context_expr, ast.Call) and ast.unparse(item.context_expr.func) == "changes.changing"
                for item in node.items):
            announced = True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (write := WRITES.search(node.value)):
            site = (function, " ".join(write.group(0).split()))
            found[site] = found.get(site, True) and announced
        for child in ast.iter_child_nodes(node):
            visit(child, function, announced)

    visit(tree, "", False)
    return found


def test_every_write_to_the_access_tables_goes_through_the_one_announce_path():
    """The access tables are written in ``access/accounts.py`` only, and each write
    there is made inside ``changes.changing`` (logged for every server's live hub)
    unless it is listed above with the reason it changes nobody's view: a new write
    site cannot skip the live hubs unnoticed."""
    writers = {path.relative_to(SRC).as_posix() for path in SRC.rglob("*.py") if WRITES.search(path.read_text())}
    assert writers == {"access/accounts.py"}, writers
    sites = access_writes(ast.parse((SRC / "access" / "accounts.py").read_text()))
    assert {function for function, _ in sites} >= {
        "add_user", "set_user", "revoke_token", "claim_session", "set_session_visibility", "set_repository_visibility",
        "copy_access"}, sites
    silent = {site for site, announced in sites.items() if not announced}
    assert silent == set(UNSEEN), f"announce these writes (access.changes.changing): {silent - set(UNSEEN)}"
