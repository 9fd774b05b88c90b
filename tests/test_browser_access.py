"""Sign-in, the visibility control and a plain form's write (Memory) in real
headless Chromium, against the real server with --auth on a loopback port; the
API docs render offline under the CSP."""

from __future__ import annotations

from playwright.sync_api import expect

from capture_helpers import WIDGETS
from test_access import BOB_SESSION, Team


def csp_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_sign_in_then_open_a_private_session_to_the_org(tmp_path, page):
    team = Team(tmp_path)
    try:
        errors = csp_errors(page)
        page.goto(f"{team.server.url}/sessions/{WIDGETS}")
        expect(page).to_have_url(f"{team.server.url}/login?next=/sessions/{WIDGETS}")
        page.fill("#token", "kpc_wrong")
        page.click("button[type=submit]")
        expect(page.locator(".login-error")).to_contain_text("Unknown or revoked token")
        page.fill("#token", team.tokens["alice"])
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{team.server.url}/sessions/{WIDGETS}")
        expect(page.locator(".whoami")).to_have_text("alice")
        expect(page.locator("#tab-body")).to_contain_text("create hello.py")
        select = page.locator("#visibility")
        expect(select).to_have_value("private")

        bob = team.client("bob")
        assert bob.get(f"/sessions/{WIDGETS}.json").status_code == 404
        select.select_option("org")
        expect(page.locator(".visibility .saved")).to_have_text("saved")
        answer = bob.get(f"/sessions/{WIDGETS}.json")
        assert answer.status_code == 200 and answer.json()["visibility"] == "org", answer.text[:300]

        page.goto(f"{team.server.url}/sessions/{BOB_SESSION}")  # bob's, org: alice reads it, cannot change it
        expect(page.locator("#visibility")).to_have_count(0)
        expect(page.locator(".visibility .badge")).to_have_text("org")

        page.goto(f"{team.server.url}/memory")  # a plain HTML form: it sends the page's CSRF token as a field
        page.fill('form.fact-add input[name="text"]', "widgets build with make")
        page.click('form.fact-add button[type="submit"]')
        expect(page.locator(".fact-list .fact-text")).to_have_text(["widgets build with make"])
        page.locator(".fact-retire button").click()
        expect(page.locator(".fact-list .fact-text")).to_have_count(0)

        page.click(".signout button")
        expect(page).to_have_url(f"{team.server.url}/login")
        page.goto(f"{team.server.url}/")
        expect(page).to_have_url(f"{team.server.url}/login?next=/")
        assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        for client in team.clients:
            client.close()
        team.server.stop()


def test_api_docs_render_offline_under_the_csp(tmp_path, page, live_server):
    errors = csp_errors(page)
    requests: list[str] = []
    page.on("requestfinished", lambda r: requests.append(r.url))  # what the CSP let through
    page.goto(f"{live_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Kapacitor")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    page.goto(f"{live_server.url}/redoc")
    expect(page.locator("h1").first).to_contain_text("Kapacitor")
    elsewhere = [url for url in requests if not url.startswith((live_server.url, "data:", "blob:"))]
    assert not elsewhere, elsewhere
    expect(page.locator(".menu-content a[href='https://redocly.com/redoc/']")).to_be_attached()  # its footer, without the CDN logo
    assert not [e for e in errors if "Content Security Policy" in e], errors
    page.get_by_role("link", name="← Kapacitor dashboard").click()  # both docs pages lead back
    expect(page).to_have_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/docs")
    expect(page.locator(".docs-bar a[href='/']")).to_be_visible()


def test_a_session_shared_with_the_org_appears_in_an_open_timeline_without_reload(tmp_path, page):
    team = Team(tmp_path)
    try:
        page.goto(f"{team.server.url}/login?next=/")
        page.fill("#token", team.tokens["bob"])
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{team.server.url}/")
        rows = page.locator("#timeline")
        expect(rows).to_contain_text(BOB_SESSION[:8])
        expect(rows).not_to_contain_text(WIDGETS[:8])
        expect(page.locator("#live-indicator.connected")).to_be_attached()  # a locator, not wait_for_function: the CSP forbids eval
        alice = team.client("alice")
        assert alice.put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "org"}).status_code == 200
        expect(rows).to_contain_text(WIDGETS[:8])  # no reload: the stream said so
        assert alice.put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "private"}).status_code == 200
        expect(rows).not_to_contain_text(WIDGETS[:8])
    finally:
        for client in team.clients:
            client.close()
        team.server.stop()


def test_an_anonymous_viewer_of_a_public_session_is_offered_no_link_that_leads_to_sign_in(tmp_path, page):
    """Trial 7: signed out on a team server, a public session rendered, but the top
    bar (Overview, Evals, Marked, Memory, API), the sidebar's "All sessions" and
    "all marked sessions" all led to /login. Every link and form a tab offers is
    opened as that viewer (none may end at sign-in); sign-in is offered instead,
    and brings them back; once signed in, the pages are offered again."""
    team = Team(tmp_path)
    page.context.clear_cookies()  # the module's browser context: signed out
    try:
        bob = team.client("bob")
        assert bob.put(f"/api/sessions/{BOB_SESSION}/visibility", json={"visibility": "public"}).status_code == 200
        session = f"{team.server.url}/sessions/{BOB_SESSION}"
        for tab in ("", "/trace", "/stats", "/eval"):
            page.goto(session + tab)
            expect(page.locator("h1")).to_be_visible()
            expect(page.locator("#session-mark .mark-bar")).to_be_attached()  # loaded after the page
            if tab == "/eval":
                expect(page.locator(".eval-tab")).to_be_attached()
            targets = page.eval_on_selector_all(
                "a[href], form[action]", "els => els.map(e => e.getAttribute('href') || e.getAttribute('action'))")
            local = {t for t in targets if t.startswith("/") and not t.startswith("/login")}
            assert local, targets
            for target in sorted(local):
                answer = page.request.get(team.server.url + target, max_redirects=0)
                assert not answer.headers.get("location", "").startswith("/login"), (tab, target)
                assert answer.status not in (401, 403), (tab, target, answer.status)
            for name in ("Overview", "Evals", "Marked", "Memory", "API", "All sessions", "all marked sessions", "All evals"):
                expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
            expect(page.locator("form.top-search")).to_have_count(0)
            expect(page.locator(".eval-run")).to_have_count(0)
            sign_in = page.locator(".topbar a.sign-in")
            expect(sign_in).to_have_attribute("href", f"/login?next=/sessions/{BOB_SESSION}{tab}")
            expect(page.locator(".side-sign-in")).to_contain_text("Sign in to see the team's sessions")

        page.goto(session)
        page.locator(".topbar a.sign-in").click()
        page.fill("#token", team.tokens["alice"])
        page.click("button[type=submit]")
        expect(page).to_have_url(session)  # back where they were
        for name in ("Overview", "Evals", "Marked", "Memory", "API"):
            expect(page.locator(".topbar").get_by_role("link", name=name, exact=True)).to_have_count(1)
        expect(page.locator("#repo-list").get_by_role("link", name="All sessions")).to_have_count(1)
        expect(page.get_by_role("link", name="all marked sessions")).to_have_count(1)
        expect(page.locator(".crumbs a")).to_have_count(1)  # the repository's page
    finally:
        page.context.clear_cookies()
        for client in team.clients:
            client.close()
        team.server.stop()
