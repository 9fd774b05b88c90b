"""Comments and marks in real headless Chromium against the real team server
(--auth) on a loopback port, on SQLite and PostgreSQL: alice comments on a chat
item and a trace node of bob's session and bob's open page shows it (and her
edit) without a reload; bob marks the session, alice's page shows the mark, and the session is
in the marked list and the timeline's marked filter."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from browser import launch
from test_access import BOB_SESSION, running
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgresql"])
def team(request, tmp_path):
    yield from running(tmp_path, request.getfixturevalue("pg_url") if request.param == "postgresql" else None)


@pytest.fixture
def browsers(tmp_path):
    """Two browsers (separate profiles, so separate sign-ins)."""
    with sync_playwright() as playwright:
        first, second = launch(playwright, tmp_path / "one"), launch(playwright, tmp_path / "two")
        yield first, second
        first.close()
        second.close()


def signed_in(context, team, user: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.location.get("url", "") else None)
    page.errors = errors
    page.goto(f"{team.server.url}/login")
    page.fill("#token", team.tokens[user])
    page.click("button[type=submit]")
    expect(page.locator(".whoami")).to_have_text(user)
    return page


def test_a_comment_in_one_page_appears_live_in_another_and_a_mark_lists_the_session(team, browsers):
    alice, bob = signed_in(browsers[0], team, "alice"), signed_in(browsers[1], team, "bob")
    session_url = f"{team.server.url}/sessions/{BOB_SESSION}"
    for page in (alice, bob):
        page.goto(session_url)
        expect(page.locator("#comment-list")).to_contain_text("No comments yet")
    item = alice.locator(".chat-item[id^='e-']").nth(1)
    anchor = item.get_attribute("id")
    alice.locator(f"[id='{anchor}'] .comment-btn").first.click()
    expect(alice.locator("#comment-form .comment-on-label")).not_to_have_text("the session")
    alice.fill("#comment-form textarea", "This is where it **clicked**.")
    alice.click("#comment-form button[type=submit]")
    expect(alice.locator("#comment-list .comment")).to_have_count(1)
    expect(alice.locator(f"[id='{anchor}'] .comment-btn.has-comments").first).to_have_text("1 comment")

    # bob's page, open all along, shows it without a reload (SSE), with the count on the item
    expect(bob.locator("#comment-list .comment")).to_have_count(1)
    expect(bob.locator("#comment-list .comment strong", has_text="clicked")).to_be_visible()
    expect(bob.locator("#comment-list .comment .author")).to_have_text("alice")
    expect(bob.locator(f"[id='{anchor}'] .comment-btn.has-comments").first).to_have_text("1 comment")
    bob.locator(f"[id='{anchor}'] .comment-btn").first.click()
    expect(bob.locator("#comment-list .comment.highlight")).to_have_count(1)

    # alice rewords it; bob sees the new words, marked edited, and may not edit hers
    expect(bob.locator("#comment-list .comment-edit")).to_have_count(0)
    alice.click("#comment-list .comment-edit summary")
    alice.fill("#comment-list .comment-edit textarea", "This is where it **clicked**: the failing test.")
    alice.click("#comment-list .comment-edit button[type=submit]")
    expect(bob.locator("#comment-list .comment")).to_contain_text("the failing test")
    expect(bob.locator("#comment-list .comment .edited")).to_have_text("(edited)")

    # a trace node: comment from the trace tab, bob's trace tab counts it live
    alice.goto(f"{session_url}/trace")
    bob.goto(f"{session_url}/trace")
    node = alice.locator("[data-trace] .tnode[data-id]").nth(1)
    node_id = node.get_attribute("data-id")
    node.locator(".comment-btn").click()
    alice.fill("#comment-form textarea", "slow step")
    alice.click("#comment-form button[type=submit]")
    expect(bob.locator(f"[data-trace] .tnode[data-id='{node_id}'] .comment-btn")).to_have_text("1 comment")

    # bob marks the session: alice's page shows the mark, the marked list and the timeline filter find it
    bob.fill(".mark-form input[name=reason]", "how to read a failing test")
    bob.click(".mark-form button[type=submit]")
    expect(bob.locator(".mark-bar .mark-badge")).to_be_visible()
    expect(alice.locator(".mark-bar .mark")).to_contain_text("how to read a failing test")
    alice.click("a.toplink[href='/marked']")
    expect(alice.locator(f".marked-session[data-session='{BOB_SESSION}']")).to_contain_text("how to read a failing test")
    alice.goto(f"{team.server.url}/")
    alice.check("input[name=marked]")
    expect(alice.locator(f"tr.session-row[data-session='{BOB_SESSION}'] .mark-star")).to_be_visible()
    expect(alice.locator("tr.session-row")).to_have_count(1)
    for page in (alice, bob):
        assert not page.errors, page.errors
