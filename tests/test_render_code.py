"""Highlighting, markdown and the generated stylesheet."""

from __future__ import annotations

from kapacitor.server.render import code
from kapacitor.server.render.code import highlight, lexer_for, stylesheet
from kapacitor.server.render.markdown import render_markdown


def test_lexer_from_language_then_file_name_else_text():
    assert lexer_for(language="python").name == "Python"
    assert lexer_for(language="Python3 extra").name == "Python"
    assert lexer_for(filename="/x/y/main.rs").name == "Rust"
    assert lexer_for(filename="a.rs", language="nosuch").name == "Rust"
    assert lexer_for(filename="README", language="").name == "Text only"


def test_highlight_emits_token_classes_and_numbers_lines():
    html = highlight("def f():\n    return 1\n", filename="f.py", first_line=7)
    assert html.startswith('<pre class="hl"><code>')
    assert '<span class="linenos">7</span><span class="k">def</span>' in html
    assert '<span class="linenos">8</span>' in html and '<span class="linenos">9</span>' not in html
    assert "style=" not in html


def test_line_numbers_are_right_aligned_to_the_widest():
    """Line 9 and line 10 start their code in the same column: each number is
    padded to the width of the widest (a Read excerpt folded in two parts pads
    both to the excerpt's last line)."""
    html = highlight("a = 1\n" * 3, filename="f.py", first_line=8)
    assert '<span class="linenos"> 8</span>' in html and '<span class="linenos">10</span>' in html
    head = highlight("a = 1\n", filename="f.py", first_line=1, last_line=120)
    assert '<span class="linenos">  1</span>' in head
    assert '<span class="linenos">9</span>' in highlight("a = 1", filename="f.py", first_line=9)


def test_huge_code_is_not_lexed():
    html = highlight("x = 1\n" * 50_000, filename="big.py")
    assert '<span class="n">' not in html and "x = 1" in html


def test_markdown_table_strikethrough_and_fenced_code():
    html = render_markdown(
        "| a | b |\n|---|--:|\n| 1 | 2 |\n\n~~old~~\n\n```js\nlet x = 1;\n```\n\n```\nplain\n```"
    )
    assert "<table>" in html and "<td>2</td>" in html
    assert "<s>old</s>" in html
    assert '<pre class="hl"><code><span class="kd">let</span>' in html
    assert "<pre><code>plain\n</code></pre>" in html


def test_chat_css_holds_the_current_stylesheet(tmp_path):
    css = code.CHAT_CSS.read_text()
    assert code.generated_block() in css, "run: python -m kapacitor.server.render.code"
    assert all(line.startswith(".hl") for line in stylesheet().splitlines())
    # regeneration replaces the block in place and appends it to a file without one
    copy = tmp_path / "chat.css"
    copy.write_text(css)
    code.write_into_chat_css(copy)
    assert copy.read_text() == css
    bare = tmp_path / "bare.css"
    bare.write_text(".x { }\n")
    code.write_into_chat_css(bare)
    assert bare.read_text() == ".x { }\n\n" + code.generated_block() + "\n"
