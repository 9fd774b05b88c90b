"""Terminal output as the terminal showed it (issue 9, point 8): ANSI colours
rendered (or stripped where a highlighter takes over), carriage-return progress
collapsed, markdown task lists and footnotes rendered."""

from __future__ import annotations

from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.render.output import render_folded
from kapacitor.server.render.terminal import ansi_html, collapse_progress, strip_ansi

PYTEST = "tests/test_a.py \x1b[31mF\x1b[0m\x1b[32m.\x1b[0m\x1b[31m                                  [100%]\x1b[0m\n\x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m1 passed\x1b[0m"
NPM = "\x1b[37;40mnpm\x1b[0m \x1b[0m\x1b[31;40mERR!\x1b[0m \x1b[0m\x1b[35mcode\x1b[0m E404"
CARGO = "\x1b[0m\x1b[1m\x1b[32m   Compiling\x1b[0m kapa v0.1.0\n\x1b[1m\x1b[38;5;9merror[E0308]\x1b[0m\x1b[1m: mismatched types\x1b[0m"
GIT = "\x1b[33mcommit 4f3b524\x1b[m\n\x1b[1mdiff --git a/x b/x\x1b[m\n\x1b[31m-old\x1b[m\n\x1b[32m+new\x1b[m\x1b[K"


def test_colours_become_spans_and_no_escape_is_left():
    for sample in (PYTEST, NPM, CARGO, GIT):
        html = str(render_folded(sample))
        assert "\x1b" not in html and "[31m" not in html and "[0m" not in html and "[K" not in html
    pytest_html = str(ansi_html(PYTEST))
    assert '<span class="ansi-red">F</span>' in pytest_html
    assert '<span class="ansi-bold ansi-red">1 failed</span>' in pytest_html
    assert '<span class="ansi-green">1 passed</span>' in pytest_html
    assert '<span class="ansi-bg-black ansi-red">ERR!</span>' in str(ansi_html(NPM))
    cargo = str(ansi_html(CARGO))
    assert '<span class="ansi-bold ansi-green">   Compiling</span>' in cargo and "error[E0308]" in cargo
    assert '<span class="ansi-green">+new</span>' in str(ansi_html(GIT))


def test_text_inside_colours_is_still_escaped():
    html = str(ansi_html("\x1b[31m<script>alert(1)</script>\x1b[0m"))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_strip_for_highlighted_and_plain_summaries():
    assert strip_ansi(PYTEST).startswith("tests/test_a.py F.")
    assert strip_ansi("\x1b]8;;http://x\x07link\x1b]8;;\x07") == "link"
    highlighted = str(render_folded(GIT, lambda part, _n: __import__("markupsafe").escape(part)))
    assert "\x1b" not in highlighted and "[33m" not in highlighted


def test_carriage_return_progress_collapses_to_its_last_state():
    progress = "Downloading  10%\rDownloading  55%\rDownloading 100%\ndone\r\nnext"
    assert collapse_progress(progress) == "Downloading 100%\ndone\nnext"
    html = str(render_folded("\x1b[32m 1/3\x1b[0m\r\x1b[32m 3/3\x1b[0m\nok"))
    assert " 1/3" not in html and " 3/3" in html


def test_task_lists_and_footnotes_render_as_such():
    html = str(render_markdown("Plan:\n\n- [x] write the test\n- [ ] make it pass\n\nSee the log[^1].\n\n[^1]: pytest -q output.\n"))
    assert '<span class="task-box">☑</span> write the test' in html
    assert '<span class="task-box">☐</span> make it pass' in html
    assert "[ ]" not in html and "[x]" not in html and "<input" not in html
    assert '<sup class="footnote-ref">' in html and "pytest -q output." in html and "[^1]" not in html
