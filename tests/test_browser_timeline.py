"""The timeline and the small things every page has, in real headless Chromium
against the real server on the sample transcripts: sorting by a column header,
Back/Forward keeping the filter form and the URL in sync, a short id in the
search box, the sidebar following the list, j/k and Enter, no sideways scroll at
390 px on any page, dark mode following the system setting."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.responses import HTMLResponse
from playwright.sync_api import expect
from test_browser import HELLO, WIDGETS, recorded_context

from browser import start_server
from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.collab import comments
from kapacitor.demo import demo_eval
from kapacitor.eval.record import record_eval
from kapacitor.server.app import create_app
from kapacitor.store import open_store
from test_access import flat

API = "acme/api-server"
LONG_WORDS_EVAL = {
    "session": HELLO, "model": "claude-sonnet-4-5", "seconds": 12.0,
    "answers": {"repeated_failures": {"score": 2, "finding": "The deploy failed four times before its prerequisites were checked.",
                                      "recommendation": "List every prerequisite the script needs before running it again."},
                "broken_tests": {"score": 4, "finding": "No tests were broken."}},
    "retrospective": {"assessment": "A session that went wrong: trial and error.",
                      "strengths": ["The final change makes the script fail early with a clear message"],
                      "issues": ["Four failed deploy runs before reading the script"],
                      "suggestions": ["Read the script and list its prerequisites first", "Time-box waits on remote health checks"]},
}
"""An eval of HELLO whose retrospective has the long words that once widened the
Evaluation tab at 390 px."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    url = f"sqlite://{tmp / 'events.db'}"
    store = open_store(url)
    import_paths(store, SAMPLE_DIRS, resolve_context=recorded_context)
    record_eval(store, demo_eval(LONG_WORDS_EVAL), {"repository": WIDGETS, "user": "dev@example.com"})
    second = replace(demo_eval(LONG_WORDS_EVAL | {"model": "claude-opus-4-5"}), eval_id="a-second-eval-of-hello")
    record_eval(store, second, {"repository": WIDGETS, "user": "dev@example.com"})
    comments.add(store, HELLO, "dev@example.com", "The tests ran **before** the fix: a good habit.", comments.check_target("session"))
    store.close()
    server = start_server(url, tmp / "home")
    yield server
    assert "Traceback" not in server.stop()


def form_state(page) -> dict[str, str]:
    """The filter form's non-empty fields, as the URL would hold them."""
    return page.evaluate("""() => Object.fromEntries(
        [...new FormData(document.getElementById('filters'))].filter(([k, v]) => v !== ''))""")


def url_state(page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.url).query))


def expect_in_sync(page, wanted: dict[str, str]) -> None:
    """The URL holds ``wanted`` (after htmx pushed or restored it) and the form says the same."""
    page.wait_for_function("""wanted => {
        const sorted = pairs => JSON.stringify(pairs.sort());
        return sorted([...new URLSearchParams(location.search)]) === sorted(Object.entries(wanted))}""", arg=wanted)
    assert form_state(page) == url_state(page) == wanted


def test_back_and_forward_keep_the_form_and_the_url_in_sync(server, page):
    page.goto(server.url + "/")
    page.select_option("select[name=repo]", WIDGETS)
    expect_in_sync(page, {"repo": WIDGETS})
    page.locator("#q").fill("hello")
    expect_in_sync(page, {"repo": WIDGETS, "q": "hello"})
    page.select_option("select[name=user]", "dev@example.com")
    expect_in_sync(page, {"repo": WIDGETS, "q": "hello", "user": "dev@example.com"})
    page.go_back()
    expect_in_sync(page, {"repo": WIDGETS, "q": "hello"})
    page.go_back()
    expect_in_sync(page, {"repo": WIDGETS})
    expect(page.locator("tr.session-row")).to_have_count(2)
    page.go_forward()
    expect_in_sync(page, {"repo": WIDGETS, "q": "hello"})
    page.go_back()
    expect_in_sync(page, {"repo": WIDGETS})
    # the next filter after Back keeps what the URL says, and drops what Back undid
    page.locator("th[data-sort=tokens] a").click()
    expect_in_sync(page, {"repo": WIDGETS, "sort": "-tokens"})
    page.go_back()
    page.go_back()
    expect_in_sync(page, {})
    expect(page.locator("#q")).to_have_value("")
    expect(page.locator("tr.session-row")).to_have_count(server.get_json("/sessions.json")["total"])
    expect(page.locator("#repo-list li.active .name")).to_have_text("All sessions")


def test_filter_on_the_view_shown_adds_no_history_entry(server, page):
    """Choosing a user updates the list (one history entry); Filter then sends the
    same URL: it replaces that entry, so one Back returns to the view before."""
    page.goto(server.url + "/?sort=-cost")
    start = page.evaluate("history.length")
    page.select_option("select[name=user]", "dev@example.com")
    expect_in_sync(page, {"sort": "-cost", "user": "dev@example.com"})
    assert page.evaluate("history.length") == start + 1
    with page.expect_response(lambda r: "user=dev%40example.com" in r.url):
        page.locator("#filters button[type=submit]").click()
    expect(page.locator("#filters")).not_to_have_class(re.compile("htmx-request"))
    assert page.evaluate("history.length") == start + 1
    page.go_back()
    expect_in_sync(page, {"sort": "-cost"})


def test_a_column_header_sorts_the_list_and_says_so(server, page):
    page.goto(server.url + "/?repo=" + WIDGETS.replace("/", "%2F"))
    page.locator("th[data-sort=tokens] a").click()
    expect_in_sync(page, {"repo": WIDGETS, "sort": "-tokens"})
    expect(page.locator("th[data-sort=tokens]")).to_have_attribute("aria-sort", "descending")
    assert page.locator("th[aria-sort]").count() == 1
    listing = server.get_json(f"/sessions.json?repo={WIDGETS}&sort=-tokens")["sessions"]
    shown = page.locator("tr.session-row").evaluate_all("rows => rows.map(r => r.dataset.session)")
    assert shown == [s["session_id"] for s in listing] and len(shown) == 2
    assert listing[0]["tokens"] >= listing[1]["tokens"]
    page.locator("th[data-sort=tokens] a").click()
    expect_in_sync(page, {"repo": WIDGETS, "sort": "tokens"})
    expect(page.locator("th[data-sort=tokens]")).to_have_attribute("aria-sort", "ascending")
    assert page.locator("tr.session-row").evaluate_all("rows => rows.map(r => r.dataset.session)") == shown[::-1]
    page.locator("#q").fill("e")  # filtering keeps the sort
    expect_in_sync(page, {"repo": WIDGETS, "sort": "tokens", "q": "e"})


def test_a_short_id_in_the_search_box_finds_its_session(server, page):
    page.goto(server.url + "/")
    page.locator("#q").fill(HELLO[:6])
    expect_in_sync(page, {"q": HELLO[:6]})
    expect(page.locator("tr.session-row")).to_have_count(1)
    expect(page.locator("tr.session-row")).to_have_attribute("data-session", HELLO)
    page.locator("#q").fill(HELLO[:8].upper())
    expect(page.locator("tr.session-row .sid")).to_have_text(HELLO[:8])


def test_the_sidebar_highlights_what_the_list_shows_and_says_when_nothing_matches(server, page):
    page.goto(server.url + "/")
    expect(page.locator("#repo-list li.active .name")).to_have_text("All sessions")
    page.select_option("select[name=repo]", API)
    expect(page.locator(f"#repo-list li.active[data-name='{API}']")).to_have_count(1)
    expect(page.locator("#repo-list li.active")).to_have_count(1)
    page.go_back()
    expect(page.locator("#repo-list li.active .name")).to_have_text("All sessions")
    page.locator("#repo-filter").fill("no-such-repository")
    expect(page.locator("#repo-none")).to_be_visible()
    expect(page.locator("#repo-none")).to_contain_text("no-such-repository")
    page.locator("#repo-filter").fill("api")
    expect(page.locator("#repo-none")).to_be_hidden()
    page.goto(f"{server.url}/sessions/{HELLO}/stats")  # a session page: its repository
    expect(page.locator("#repo-list li.active")).to_have_attribute("data-name", WIDGETS)


def test_j_and_k_move_through_the_list_and_enter_opens(server, page):
    page.goto(server.url + "/")
    ids = page.locator("tr.session-row").evaluate_all("rows => rows.map(r => r.dataset.session)")
    page.keyboard.press("j")
    expect(page.locator("tr.session-row.current")).to_have_attribute("data-session", ids[0])
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    expect(page.locator("tr.session-row.current")).to_have_attribute("data-session", ids[1])
    assert page.evaluate("document.activeElement.closest('tr').dataset.session") == ids[1]
    page.locator("#q").focus()
    page.keyboard.press("j")  # typing in a field is typing
    expect(page.locator("#q")).to_have_value("j")
    page.locator("#q").fill("")
    expect_in_sync(page, {})
    page.locator("tr.session-row.current .title a").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/sessions/{ids[1]}")


FRAGMENTS = {
    "/sidebar", "/sessions/{session_id}/chat", "/sessions/{session_id}/trace/detail",
    "/sessions/{session_id}/trace/children", "/sessions/{session_id}/head",
}  # fmt: skip
"""HTML routes that answer a piece of a page (htmx, live refresh), not a page."""


QUERIES = {"/search": "?q=hello", "/sessions/{session_id}/eval/compare": "?a=none&b=none"}


def html_pages(tmp_path) -> dict[str, str]:
    """Every HTML page the app routes (each GET route answering HTML that is not a
    fragment), with its parameters filled in."""
    app = create_app(f"sqlite://{tmp_path / 'routes.db'}", run_projections=False)
    fill = {"{session_id}": HELLO, "{scope:path}": WIDGETS, "{key:path}": WIDGETS, "{name}": "dev@example.com"}
    pages = {}
    for route in flat(app.routes):
        if "GET" not in getattr(route, "methods", ()) or route.path in FRAGMENTS:
            continue
        if getattr(route, "response_class", None) is not HTMLResponse and route.path not in ("/docs", "/redoc"):
            continue
        path = route.path
        for name, value in fill.items():
            path = path.replace(name, value)
        assert "{" not in path, f"a page this test cannot fill in: {route.path}"
        pages[route.path] = path + QUERIES.get(route.path, "")
    app.state.close()
    return pages


CLIPPED_TABLES = """() => [...document.querySelectorAll('table')].filter(t => {
    if (!t.offsetParent) return false;
    for (let a = t; a && a !== document.body; a = a.parentElement) {
        if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return false;  // it scrolls in its box
    }
    const box = t.parentElement.closest('.panel, .card, section, main') || document.body;
    return t.getBoundingClientRect().right > box.getBoundingClientRect().right + 1;
}).map(t => t.className || t.querySelector('th')?.textContent)"""
"""Tables wider than the box they sit in, with nothing to scroll them: their
last columns are cut off (or spill over the next box)."""


def test_no_page_scrolls_sideways_at_390_800_or_1440_px(server, page, tmp_path):
    """Every page, each session tab (the Evaluation tab with an eval in it) and
    /evals with scores: nothing wider than the screen, no table cut off."""
    pages = html_pages(tmp_path)
    assert {"/", "/sessions/{session_id}", "/sessions/{session_id}/stats", "/sessions/{session_id}/eval", "/evals"} <= set(pages)
    page.goto(f"{server.url}/sessions/{HELLO}/eval")
    expect(page.locator(".eval-retro")).to_contain_text("prerequisites")
    wide, clipped = {}, {}
    for width in (390, 800, 1440):
        page.set_viewport_size({"width": width, "height": 844})
        for route, path in sorted(pages.items()) + [("/?q", "/?q=hello"), ("404", "/sessions/nope")]:
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
            scrolls = page.evaluate("document.documentElement.scrollWidth")
            if scrolls > width:
                wide[f"{route} at {width}"] = scrolls
            if cut := page.evaluate(CLIPPED_TABLES):
                clipped[f"{route} at {width}"] = cut
    assert wide == {}, f"pages wider than the screen: {wide}"
    assert clipped == {}, f"tables cut off: {clipped}"
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/")  # the sidebar is behind its button, the rows are cards
    expect(page.locator("#sidebar")).to_be_hidden()
    page.locator(".sidebar-toggle").click()
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator(".sidebar-toggle")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator("table.sessions thead")).to_be_hidden()
    expect(page.locator("select[name=sort]")).to_be_visible()


def test_at_390_px_the_top_bar_is_one_row_of_links_the_rest_behind_more(server, page):
    """Brand, Overview, More and the live badge share one row (the search box has
    its own below); More opens the other links, and one of them goes there. In
    dark mode /docs (Swagger UI) is dark too."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(server.url + "/")
    row = [page.locator(s) for s in (".sidebar-toggle", ".brand", "a.toplink[href='/overview']", ".menu-toggle", "#live-indicator")]
    middles = [(box := item.bounding_box())["y"] + box["height"] / 2 for item in row]
    assert max(middles) - min(middles) < 4, middles
    search = page.locator(".top-search input").bounding_box()
    assert search["y"] > max(middles) and search["width"] > 300
    evals = page.locator("#toplinks a.toplink[href='/evals']")
    expect(evals).to_be_hidden()
    page.locator(".menu-toggle").click()
    expect(page.locator(".menu-toggle")).to_have_attribute("aria-expanded", "true")
    expect(evals).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(evals).to_be_hidden()
    page.locator(".menu-toggle").click()
    evals.click()
    expect(page).to_have_url(server.url + "/evals")
    assert page.evaluate("document.documentElement.scrollWidth") == 390
    page.set_viewport_size({"width": 1440, "height": 900})
    expect(page.locator(".menu-toggle")).to_be_hidden()
    expect(page.locator("a.toplink[href='/memory']")).to_be_visible()
    page.emulate_media(color_scheme="dark")
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    assert luminance(page.evaluate("getComputedStyle(document.body).backgroundColor")) < 0.2
    assert page.locator("#swagger-ui").evaluate("e => getComputedStyle(e).filter").startswith("invert")


def luminance(css_colour: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_at_390_px_the_session_tabs_and_the_trace_labels_have_room(server, page):
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{server.url}/sessions/{HELLO}/trace")
    page.evaluate("document.querySelectorAll('.trace details').forEach(d => d.open = true)")
    cut = page.evaluate("""() => [...document.querySelectorAll('.tabs a')].filter(a =>
        a.scrollWidth > a.clientWidth + 1 || a.getBoundingClientRect().right > innerWidth + 1).map(a => a.textContent)""")
    assert cut == [], f"tabs cut at 390 px: {cut}"
    expect(page.locator(".tabs a", has_text="JSON")).to_be_in_viewport()
    squeezed = page.evaluate("""() => [...document.querySelectorAll('.trace .tlabel')].filter(l => l.offsetParent
        && l.clientWidth < Math.min(l.scrollWidth, 100)).map(l => l.textContent)""")
    assert page.locator(".trace .tlabel").count() > 3 and squeezed == [], f"trace labels squeezed: {squeezed}"


def test_dark_mode_follows_the_system_setting_and_the_page_has_its_icon(server, page):
    for path in ("/", f"/sessions/{HELLO}/trace", f"/sessions/{HELLO}/stats"):
        page.emulate_media(color_scheme="dark")
        page.goto(server.url + path)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        text = page.evaluate("getComputedStyle(document.body).color")
        assert luminance(background) < 0.2 < 0.7 < luminance(text), (path, background, text)
        panel = page.locator(".sessions, .trace-detail, .card").first
        assert luminance(panel.evaluate("e => getComputedStyle(e).backgroundColor")) < 0.2
        page.emulate_media(color_scheme="light")
        assert luminance(page.evaluate("getComputedStyle(document.body).backgroundColor")) > 0.9
    icon = page.locator("link[rel=icon]").get_attribute("href")
    response = page.request.get(server.url + icon)
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")


def test_the_focused_control_is_visible(server, page):
    page.goto(server.url + "/")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline


def test_the_top_bar_links_evals_and_an_eval_can_be_picked(server, page):
    page.goto(server.url + "/")
    page.locator("a.toplink", has_text="Evals").click()
    expect(page).to_have_url(server.url + "/evals")
    expect(page.locator("h1")).to_have_text("Session evals")
    page.goto(f"{server.url}/sessions/{HELLO}/eval")
    select = page.locator(".eval-pick select")
    older = select.locator("option").nth(1).get_attribute("value")
    select.select_option(older)  # eval.js submits it (no inline handler: the CSP forbids them)
    expect(page).to_have_url(re.compile(f"eval={older}"))
    expect(page.locator(".eval-pick select")).to_have_value(older)


def test_at_390_px_a_session_s_chat_starts_on_the_first_screen(server, page):
    """Without --auth no visibility control; the comments stay folded (their count
    shows) and the mark form is one row, so the tabs and the chat start high."""
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.url}/sessions/{HELLO}")
    expect(page.locator(".comment-total")).to_have_text("(1)")
    assert page.locator("#visibility").count() == 0
    assert page.locator("#comments").evaluate("d => d.open") is False
    form = page.locator(".mark-form").bounding_box()
    assert form is not None and form["height"] < 45, form
    tabs = page.locator(".tabs").bounding_box()
    assert tabs is not None and tabs["y"] < 450, tabs
    assert page.locator(".chat-item").first.bounding_box()["y"] < 844
    page.set_viewport_size({"width": 1440, "height": 900})  # with room, comments open by themselves
    page.reload()
    expect(page.locator(".comment-total")).to_have_text("(1)")
    assert page.locator("#comments").evaluate("d => d.open") is True
