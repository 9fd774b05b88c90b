"""The stylesheets as a whole: every one of them loads on every page (the base
template links them all), so a rule one page's stylesheet writes for a generic
class reaches the same class on every other page. The eval tab's ``.badge``
(uppercase) once turned the chat's "901 ms" duration badges into "901 MS"."""

from __future__ import annotations

import re
from collections import defaultdict

from kapacitor.server.app import STATIC

BARE_CLASS = re.compile(r"\.([\w-]+)(?:[.:][\w()-]+|\[[^\]]*\])*")
"""A selector of one class (with more classes, pseudo-classes or attributes on
the same element) and no container: it applies anywhere on any page."""


def selectors(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    heads = (head.strip() for head in re.findall(r"([^{}]+)\{", css))
    return [s.strip() for head in heads if not head.startswith("@") for s in head.split(",")]


def test_a_class_styled_anywhere_is_styled_by_one_stylesheet():
    """A bare ``.name`` rule belongs to one file; another file styles that class only
    inside its own container (``.chat-item .badge``, ``.eval-tab .badge``)."""
    owners: dict[str, set[str]] = defaultdict(set)
    for path in sorted(STATIC.glob("*.css")):
        for selector in selectors(path.read_text()):
            if found := BARE_CLASS.fullmatch(selector):
                owners[found.group(1)].add(path.name)
    assert {name: files for name, files in owners.items() if len(files) > 1} == {}


def test_the_selector_reader_sees_bare_and_contained_rules():
    css = "/* .x { } */ .badge { a: b }\n.eval-tab .badge, .badge.pass:hover { }\n@media (x) { .grid3 { } }"
    assert selectors(css) == [".badge", ".eval-tab .badge", ".badge.pass:hover", ".grid3"]
    assert [bool(BARE_CLASS.fullmatch(s)) for s in selectors(css)] == [True, False, True, True]
