"""Visibility changes reach every server's open pages, live: two real ``kapacitor
serve --auth`` processes on one store (one SQLite file, and PostgreSQL), a change
made through one of them or by the CLI, and ``/events`` followed on both. Each
viewer's stream names the session when they may see it now or could before (their
timeline gains or drops it); nobody else's stream ever names it."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from browser import launch
from capture_helpers import WIDGETS, Server, wait_for
from kapacitor.access import accounts
from test_access import BOB_SESSION, Team, cli, follow_events
from test_comments_browser import signed_in
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

VIEWERS = {"anonymous": None, "bob": "bob", "alice": "alice", "root": "root"}
SIGNED_IN = set(VIEWERS) - {"anonymous"}
"""Who hears of a session turning public: an anonymous visitor may follow no stream
but a public session's page's (refused here: ``test_live_streams`` follows one)."""


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

    def clear(self) -> None:
        for lines in self.seen.values():
            lines.clear()

    def listed(self, server: str, user: str) -> set[str]:
        """The sessions ``user``'s timeline on ``server`` lists (what the page re-fetches)."""
        url = self.servers[server].url
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {self.team.tokens[user]}"}) as client:
            return {s["session_id"] for s in client.get("/sessions.json").json()["sessions"]}

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
    store = two.team.db
    db = accounts.open_accounts(store)
    try:
        [(key,)] = db.execute("SELECT key FROM repository_sessions WHERE session_id = ?", (WIDGETS,)).fetchall()
    finally:
        db.close()
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
    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path / "chromium")
        try:
            page = signed_in(context, SimpleNamespace(server=two.b, tokens=two.team.tokens), "bob")
            page.goto(two.b.url + "/")
            expect(page.locator("#live-indicator.connected")).to_be_visible()
            row = page.locator(f'tr[data-session="{WIDGETS}"]')
            expect(row).to_have_count(0)
            alice, url = two.team.client("alice"), f"/api/sessions/{WIDGETS}/visibility"
            assert alice.put(url, json={"visibility": "org"}).status_code == 200
            expect(row).to_have_count(1, timeout=10_000)
            assert alice.put(url, json={"visibility": "private"}).status_code == 200
            expect(row).to_have_count(0, timeout=10_000)
            assert page.errors == []
        finally:
            context.close()
