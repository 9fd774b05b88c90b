"""Masked secrets in the chat: each marker is a badge naming the kind, in
markdown, in highlighted code (where Pygments splits the marker) and on the
real chat page of an imported session."""

from __future__ import annotations

import asyncio
import json
import re
from html.parser import HTMLParser

import httpx

from kapacitor.capture.importer import import_paths
from kapacitor.server.app import create_app
from kapacitor.server.render.code import highlight
from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.render.redacted import badges
from redaction_corpus import GHP
from test_redaction_paths import SESSION, _record, write_session

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


def test_a_title_keeps_its_marker_whole_and_every_page_shows_markers_as_badges(tmp_path, store, store_path):
    """The title (the first prompt's first 200 characters) never ends inside a
    marker; the session header, the list row, the trace's labels and details,
    and search hits show a marker as the chat does."""
    cwd = str(tmp_path / "work")
    folder = tmp_path / "projects" / "".join(c if c.isalnum() else "-" for c in cwd)
    folder.mkdir(parents=True)
    prompt = ("deploy the staging app " * 9)[:180] + f" GITHUB_TOKEN={GHP} then run the smoke tests"
    assert prompt.index("ghp_") < 200 < prompt.index("ghp_") + len("[REDACTED github-pat #000000]")
    lines = [_record("prompt", prompt, 1, cwd), _record("text", f"Deploying with token {GHP} now", 2, cwd)]
    (folder / f"{SESSION}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    import_paths(store, [tmp_path / "projects"])
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    app.state.runner.catch_up()

    async def fetch(*paths: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return [await client.get(path, headers={"Accept": "text/html"}) for path in paths]

    try:
        title, head, rows, trace, hits, kind_hits = asyncio.run(fetch(
            f"/sessions/{SESSION}.json", f"/sessions/{SESSION}", "/", f"/sessions/{SESSION}/trace", "/search?q=deploying",
            "/search?q=pat"))  # a word only the marker holds: the snippet keeps the marker whole, unmarked
    finally:
        app.state.close()
    assert re.search(r" GITHUB_TOKEN=\[REDACTED github-pat #[0-9a-f]{6}\]$", title.json()["title"]), title.json()["title"]
    h1 = re.search(r"<h1>.*?</h1>", head.text, re.S).group(0)  # type: ignore[union-attr]
    row = re.search(r'<td class="title">.*?</td>', rows.text, re.S).group(0)  # type: ignore[union-attr]
    labels = re.findall(r'<span class="tlabel">.*?</span></span>|<span class="tlabel">[^<]*</span>', trace.text)
    details = re.findall(r'<template class="tdetail">.*?</template>', trace.text, re.S)
    hit = re.search(r'<div class="snippet">.*?</div>', hits.text, re.S)
    kind_hit = re.search(r'<div class="snippet">.*?</div>', kind_hits.text, re.S)
    for name, html in {"header": h1, "row": row, "labels": "".join(labels), "details": "".join(details),
                       "search": hit.group(0) if hit else "", "search by kind": kind_hit.group(0) if kind_hit else ""}.items():
        text = re.sub(r'="[^"]*"', '=""', html)  # a tooltip is plain text: the marker as stored
        assert "secret: github-pat #" in text and "[REDACTED" not in text and balanced(html), (name, html[:600])
