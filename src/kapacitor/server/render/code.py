"""Syntax highlighting with Pygments: the lexer is guessed from a file name or a
language tag, tokens become CSS classes (no inline styles), and the colours live
in one stylesheet (``stylesheet()``, kept inside chat.css between markers).

Run ``python -m kapacitor.server.render.code`` to regenerate that part of
chat.css after changing ``STYLE``; a test checks that it is current.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path, PurePath

from markupsafe import Markup
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

from kapacitor.server.render.sanitize import clean

CSS_CLASS = "hl"
STYLE = "default"
MAX_HIGHLIGHT_CHARS = 100_000
"""Longer text is shown plain: lexing megabytes would stall the page."""
CHAT_CSS = Path(__file__).resolve().parent.parent / "static" / "chat.css"
BEGIN, END = "/* pygments: begin (generated) */", "/* pygments: end */"


_FORMATTER = HtmlFormatter(nowrap=True)
_TEXT = TextLexer()


@functools.lru_cache(maxsize=512)
def lexer_for(filename: str | None = None, language: str | None = None) -> Lexer:
    """The lexer for a language tag (```python) or else a file name, else plain
    text. Cached: the guess scans every lexer's patterns, and lexers are reusable."""
    for guess in (
        lambda: (
            get_lexer_by_name(language.strip().split()[0].lower())
            if language and language.strip()
            else None
        ),
        lambda: get_lexer_for_filename(filename) if filename else None,
    ):
        try:
            lexer = guess()
        except ClassNotFound:
            continue
        if lexer is not None:
            return lexer
    return _TEXT


def highlight(
    code: str,
    filename: str | None = None,
    language: str | None = None,
    first_line: int | None = None,
    last_line: int = 0,
) -> Markup:
    """``code`` as ``<pre class="hl"><code>…</code></pre>`` with token classes;
    with ``first_line``, each line is numbered from there, right-aligned in a
    gutter as wide as the widest number (``last_line``'s, when the excerpt goes
    on in another part, else this part's last): the code column then lines up
    from line 9 to line 10, and in every part of a folded excerpt."""
    lexer = (
        lexer_for(PurePath(filename).name if filename else None, language)
        if len(code) <= MAX_HIGHLIGHT_CHARS
        else _TEXT
    )
    html = pygments_highlight(code, lexer, _FORMATTER)
    if first_line is not None:
        lines = html.rstrip("\n").split("\n")
        width = len(str(max(last_line, first_line + len(lines) - 1)))
        html = "\n".join(
            f'<span class="linenos">{first_line + n:>{width}}</span>{line}'
            for n, line in enumerate(lines)
        )
    return clean(f'<pre class="{CSS_CLASS}"><code>{html}</code></pre>')


def stylesheet() -> str:
    """The CSS for the token classes that ``highlight`` emits (Pygments' global
    ``pre`` and line-number rules left out: they would restyle the whole page)."""
    defs = HtmlFormatter(style=STYLE, cssclass=CSS_CLASS).get_style_defs(f".{CSS_CLASS}")
    return "\n".join(line for line in defs.splitlines() if line.startswith(f".{CSS_CLASS}"))


def generated_block() -> str:
    return f"{BEGIN}\n{stylesheet()}\n{END}"


def write_into_chat_css(path: Path = CHAT_CSS) -> None:
    """Replace the generated block in chat.css (or append it)."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + generated_block() + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + generated_block() + "\n"
    path.write_text(text)


if __name__ == "__main__":
    write_into_chat_css(Path(sys.argv[1]) if len(sys.argv) > 1 else CHAT_CSS)
