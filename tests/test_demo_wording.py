"""What the bundled demo's pages say reads plainly, on the real server: a
subagent's result in the stats table is its words, not markdown; the chat names
which time is the Agent call's and which the subagent's; an evaluation card says
how many questions its mean is over, apart from the 1-5 scale (real Chromium at
1440 and 390 px); and a bad ``?tz=`` keeps every page standing, the problem said
in place, as a bad date does (docs/json-api.md)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from html import unescape

import pytest
from playwright.sync_api import expect

from browser import start_server
from kapacitor.server.render.markdown import plain_text

REFACTOR = "79384b8e-9eee-5143-be6f-7a4dd23ad8ac"  # an Explore subagent whose answer is a markdown table
GOES_WRONG = "833ab0b6-48db-52db-a111-9a5dc3621b38"  # evaluated: categories of one and of two questions


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(None, tmp_path_factory.mktemp("home"), "--demo")
    server.wait_caught_up()
    yield server
    assert "Traceback" not in server.stop()


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_markdown_as_plain_words():
    text = "## Readers of `api/config.py`\n\n| file | line |\n|---|---|\n| api/db.py | **5** |\n\n- one\n- [two](http://x)\n"
    assert plain_text(text) == "Readers of api/config.py · file, line · api/db.py, 5 · one · two"
    assert plain_text("word " * 100, limit=40) == ("word " * 8).strip() + "…" == plain_text("word " * 100, limit=42)
    assert plain_text("x" * 300, 50) == "x" * 49 + "…"
    assert plain_text("<b>raw</b> html stays text") == "<b>raw</b> html stays text"  # the page escapes it


def test_a_subagent_s_result_in_the_stats_table_is_its_words_not_markdown(server):
    [agent] = server.get_json(f"/sessions/{REFACTOR}.json")["subagents"]
    assert "|---|" in agent["result"] and agent["result"].startswith("## ")  # the JSON keeps what it said
    status, page = fetch(f"{server.url}/sessions/{REFACTOR}/stats")
    table = page.split('data-section="subagents"', 1)[1].split("</table>", 1)[0]
    [cell] = re.findall(r'<td data-stat="result" title="([^"]*)">([^<]*)</td>', table)
    shown, whole = unescape(cell[1]), unescape(cell[0])
    assert status == 200 and shown and whole.startswith(shown.rstrip("…"))
    for syntax in ("##", "|", "---", "`", "**"):
        assert syntax not in shown and syntax not in whole, syntax
    assert shown == plain_text(agent["result"]) and whole == plain_text(agent["result"], 500)


def test_the_chat_says_which_time_is_the_agent_call_s_and_which_the_subagent_s(server):
    """The Agent call's badge (call to result) and the subagent's line (its own
    records' span) each carry a word and a tooltip from ``server/terms.py``."""
    from kapacitor.server.terms import TERMS

    [agent] = server.get_json(f"/sessions/{REFACTOR}.json")["subagents"]
    [call] = [i["tool"] for i in server.get_json(f"/sessions/{REFACTOR}/chat.json") if (i.get("tool") or {}).get("subagent")]
    status, page = fetch(f"{server.url}/sessions/{REFACTOR}")
    item = page[page.index('class="chat-item tool tool-Agent'):]
    summary, line = item.split("</summary>", 1)[0], re.search(r'<div class="agent-figures">(.*?)</div>', item).group(1)  # type: ignore[union-attr]
    call_time = re.search(r'<span class="badge time term" title="([^"]*)">call ([^<]+)</span>', summary)
    assert status == 200 and call_time and unescape(call_time.group(1)) == TERMS["agent_call_time"]
    own = re.search(r'<span class="term" title="([^"]*)">subagent ([^<]+)</span>', line)
    assert own and unescape(own.group(1)) == TERMS["subagent_time"]
    assert call["name"] == "Agent" and (call_time.group(2), own.group(2)) == ("27.7 s", "27.3 s")  # two times, each named
    assert agent["duration_seconds"] == pytest.approx(27.3, abs=0.05)


@pytest.mark.parametrize("width", [1440, 390])
def test_an_evaluation_card_says_the_scale_apart_from_how_many_questions_it_is_over(server, page, width, tmp_path):
    """"4 / of 5 / mean 4.0 over 1 question", never "mean 4.0 of 1" (which reads as
    a score out of 1); the cards fit the page at 1440 and 390 px."""
    [ev] = server.get_json(f"/sessions/{GOES_WRONG}/eval.json")[:1]
    categories = ev["summary"]["categories"]
    assert {c["questions"] for c in categories} >= {1, 2}  # both wordings are on the page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{server.url}/sessions/{GOES_WRONG}/eval")
    cards = page.locator(".eval-cards .card")
    expect(cards.first.locator("[data-eval-hint]")).to_have_text(f"mean of {len(categories)} categories")
    for c in categories:
        card = cards.filter(has=page.locator(f'[data-eval-category="{c["id"]}"]'))
        expect(card.locator("[data-eval-category]")).to_have_text(str(c["score"]))
        said = f"mean {c['mean']:.1f} over {c['questions']} question{'s' if c['questions'] != 1 else ''}"
        expect(card.locator("[data-eval-hint]")).to_have_text(said)
        expect(card.locator(".hint").first).to_have_text("of 5")
        box, hint = card.bounding_box(), card.locator("[data-eval-hint]").bounding_box()
        assert box and hint and hint["x"] + hint["width"] <= box["x"] + box["width"] + 1  # the hint stays in its card
    assert " of 1<" not in page.content() and " of 2<" not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.locator(".eval-cards").screenshot(path=str(tmp_path / f"eval-cards-{width}.png"))
    assert page.dialogs == []


SAYS_THE_ZONE = {  # every page that shows a time or a day: its frame stands, the problem where its results were
    "/": 'id="filters"', "/overview": "overview-form", "/users/{name}": "overview-form", "/repos/{key:path}": "overview-form",
    "/sessions/{session_id}": 'class="tabs"', "/sessions/{session_id}/trace": 'class="tabs"',
    "/sessions/{session_id}/stats": 'class="tabs"', "/sessions/{session_id}/eval": 'class="tabs"',
    "/sessions/{session_id}/eval/compare": 'class="tabs"', "/evals": "<h1>Session evals</h1>",
    "/memory": 'class="filters"', "/memory/{scope:path}": 'class="filters"', "/search": 'class="filters"',
    "/marked": "<h1>Worth learning from",
}  # fmt: skip
FILL = {"{session_id}": REFACTOR, "{name}": "bilal@acme.dev", "{key:path}": "acme/api-server", "{scope:path}": "acme/api-server"}
QUERY = {"/search": "q=config&", "/sessions/{session_id}/trace/detail": "node=x&", "/sessions/{session_id}/chat": "start=0&"}


def page_routes(tmp_path) -> list[str]:
    """Every GET route that answers HTML, as the app is built."""
    from fastapi.responses import HTMLResponse
    from test_access import flat

    from kapacitor.server.app import create_app

    app = create_app(f"sqlite://{tmp_path / 'routes.db'}", run_projections=False)
    try:
        return [r.path for r in flat(app.routes) if "GET" in getattr(r, "methods", ()) and r.response_class is HTMLResponse]
    finally:
        app.state.close()


def test_a_bad_zone_keeps_every_page_standing_and_says_so_in_place(server, tmp_path):
    """``?tz=Mars/Base`` on any page: a page with times is the page, its form or
    header and tabs kept, "tz: unknown time zone …" where its results would be
    (422, as a bad date); a fragment or a page with no time answers as without
    it; the JSON twins stay FastAPI's 422."""
    routes = page_routes(tmp_path)
    assert set(SAYS_THE_ZONE) <= set(routes), set(SAYS_THE_ZONE) - set(routes)
    for route in routes:
        path = route
        for name, value in FILL.items():
            path = path.replace(name, value)
        url = f"{server.url}{path}?{QUERY.get(route, '')}"
        good, _ = fetch(url)
        status, page = fetch(url + "tz=Mars/Base")
        assert "<h1>422" not in page, f"{route}: a bare error page"
        if route in SAYS_THE_ZONE:
            assert good == 200 and status == 422, (route, good, status)
            problems = page.split('class="form-problems"', 1)[-1]
            assert "tz: unknown time zone &#39;Mars/Base&#39;: use an IANA name" in problems and SAYS_THE_ZONE[route] in page, route
            assert "Back to all sessions" not in page
        else:
            assert status == good, (route, good, status)
    status, answer = fetch(f"{server.url}/sessions/{REFACTOR}.json?tz=Mars/Base")
    assert status == 422 and "unknown time zone 'Mars/Base'" in answer
