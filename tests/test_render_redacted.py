"""Masked secrets in the chat: each marker is a badge naming the kind, in
markdown, in highlighted code (where Pygments splits the marker) and on the
real chat page of an imported session."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import httpx

from kapacitor.capture.importer import import_paths
from kapacitor.server.app import create_app
from kapacitor.server.render.code import highlight
from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.render.redacted import badges
from test_redaction_paths import SESSION, write_session

MARKER = "[REDACTED github-pat #61aed6]"


class Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.open.append(tag)

    def handle_endtag(self, tag):  # noqa: ANN001
        assert self.open.pop() == tag


def balanced(html: str) -> bool:
    parser = Balance()
    parser.feed(html)
    return not parser.open


def test_a_marker_in_markdown_is_a_badge():
    shown = badges(render_markdown(f"The token is {MARKER}, rotate it."))
    assert '<span class="badge redacted"' in shown and "secret: github-pat #61aed6" in shown
    assert "[REDACTED" not in shown and balanced(shown)


def test_a_marker_split_by_the_highlighter_is_one_badge_and_the_html_stays_balanced():
    code = highlight(f"export GITHUB_TOKEN={MARKER}  # from CI\ncurl -u ci:[REDACTED password #0a1b2c] x", language="bash")
    assert "REDACTED" in code and "badge" not in code
    shown = badges(code)
    assert shown.count('class="badge redacted"') == 2 and "REDACTED" not in shown.replace("badge redacted", "")
    assert balanced(shown) and "from CI" in shown


def test_text_without_markers_is_returned_as_is():
    rendered = render_markdown("nothing [REDACTED] here, nor [REDACTED x]")
    assert badges(rendered) == rendered


def test_the_chat_page_shows_badges(tmp_path, store, store_path):
    write_session(tmp_path / "projects", str(tmp_path / "work"))
    import_paths(store, [tmp_path / "projects"])
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    app.state.runner.catch_up()

    async def fetch() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return (await client.get(f"/sessions/{SESSION}/chat?start=0&count=500")).text

    try:
        page = asyncio.run(fetch())
    finally:
        app.state.close()
    assert page.count('class="badge redacted"') >= 20
    assert "secret: github-pat #" in page and "secret: password #" in page
