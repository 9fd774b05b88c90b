"""The session header on a team server says each name once, in words: the session's
user (a link), then "owner NAME" only when the owner is someone else, and "visible
to" before the visibility a reader may not change. Real recorded transcripts
imported into a real SQLite store, the real server with --auth, real Chromium at
1440 and 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from capture_helpers import Server
from conftest import SHARED
from kapacitor.access import accounts
from kapacitor.capture.importer import import_paths
from kapacitor.projections.session_summary import SessionSummaries
from kapacitor.store import open_store

RECORDED_332 = SHARED / "claude-code" / "recorded-2.1.332"
SAME = "7c12af23-4fd1-40dc-becd-4a92d4636a56"  # owned by its own user
OTHER = "e428fb58-8ecc-4944-8d31-cd7a84574c73"  # owned by ann, who is not its user


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """Two imported sessions, both org: one owned by its user, one by ann; bob reads them."""
    path = tmp_path_factory.mktemp("team") / "team.db"
    store = open_store(f"sqlite://{path}")
    try:
        import_paths(store, [RECORDED_332 / name / "projects" for name in ("hello-todo", "hello-sync")])
        folded = SessionSummaries()
        for event in store.read_all():
            folded.apply(event)
        user = folded.sessions[SAME].user
    finally:
        store.close()
    db = accounts.open_accounts(path)
    try:
        for name in (user, "ann", "bob"):
            accounts.add_user(db, name)
        token = accounts.create_token(db, "bob")[1]
        for session, owner in ((SAME, user), (OTHER, "ann")):
            accounts.claim_session(db, session, owner)
            accounts.set_session_visibility(db, session, "org")
    finally:
        db.close()
    server = Server(path, None, "--auth").start().caught_up(token=token)
    yield server, token, user
    server.stop()


def sign_in(page, server, token: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page.locator(".whoami")).to_have_text("bob")


@pytest.mark.parametrize("width", [1440, 390])
def test_the_owner_is_named_in_words_and_only_when_it_is_not_the_user(team, page, width, tmp_path):
    server, token, user = team
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, server, token)

    page.goto(f"{server.url}/sessions/{SAME}")
    meta = page.locator("#session-head .meta")
    expect(meta.locator("a.user")).to_have_text(user)
    expect(meta.locator(".owner")).to_have_count(0)
    expect(meta.locator(".visibility")).to_have_text("visible to org")
    assert meta.inner_text().count(user) == 1
    page.screenshot(path=str(tmp_path / f"same-{width}.png"))

    page.goto(f"{server.url}/sessions/{OTHER}")
    expect(meta.locator("a.user")).to_have_text(user)
    expect(meta.locator(".owner")).to_have_text("owner ann")
    expect(meta.locator(".owner")).to_be_visible()
    expect(meta.locator(".visibility")).to_have_text("visible to org")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(tmp_path / f"other-{width}.png"))
    assert page.dialogs == []
