"""Terminal output as the terminal showed it.

Tools run with colour forced (pytest, npm, cargo, git) write ANSI escape
sequences; progress bars rewrite their line with carriage returns. A page shows
the colours (``ansi_html``: SGR codes become ``<span class="ansi-...">``, every
other escape sequence is dropped) and each progress line in its last state
(``collapse_progress``); ``strip_ansi`` gives plain text for one-line summaries.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_SEQUENCE = re.compile(
    r"\x1b\[([0-9;:?]*)([ -/]*[@-~])"  # CSI: colours (m), cursor moves, erases
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: titles, hyperlinks
    r"|\x1b[()][A-Za-z0-9]|\x1b[@-Z\\-_]"  # charset and other two-byte escapes
)
_COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
_STYLES = {1: "bold", 2: "dim", 3: "italic", 4: "underline"}
_STYLE_OFF = {22: ("bold", "dim"), 23: ("italic",), 24: ("underline",)}


def collapse_progress(text: str) -> str:
    """Each line as it was left on screen: what follows its last carriage return
    (``\\r\\n`` is an ordinary line end)."""
    if "\r" not in text:
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(_last_state(line) for line in lines)


def _last_state(line: str) -> str:
    if "\r" not in line:
        return line
    parts = [p for p in line.split("\r") if p]
    return parts[-1] if parts else ""


def strip_ansi(text: str) -> str:
    """``text`` without escape sequences."""
    return _SEQUENCE.sub("", text) if "\x1b" in text else text


def ansi_html(text: str) -> Markup:
    """``text`` escaped, its SGR colours and styles as spans, other sequences dropped."""
    out: list[str] = []
    style: dict[str, str] = {}
    position = 0
    for match in _SEQUENCE.finditer(text):
        out.append(_span(text[position : match.start()], style))
        position = match.end()
        if match.group(2) == "m":
            _apply_sgr(style, match.group(1))
    out.append(_span(text[position:], style))
    return Markup("".join(out))


def _span(chunk: str, style: dict[str, str]) -> str:
    if not chunk:
        return ""
    if not style:
        return str(escape(chunk))
    classes = " ".join(f"ansi-{v}" for v in sorted(style.values()))
    return f'<span class="{classes}">{escape(chunk)}</span>'


def _apply_sgr(style: dict[str, str], params: str) -> None:
    codes = [int(p) if p.isdigit() else 0 for p in re.split("[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style.clear()
        elif code in _STYLES:
            style[_STYLES[code]] = _STYLES[code]
        elif code in _STYLE_OFF:
            for name in _STYLE_OFF[code]:
                style.pop(name, None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style["fg"] = _COLOURS[code % 10]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style["bg"] = "bg-" + _COLOURS[code % 10]
        elif code == 39:
            style.pop("fg", None)
        elif code == 49:
            style.pop("bg", None)
        elif code in (38, 48) and i + 1 < len(codes):
            # 256-colour (5;n) or true colour (2;r;g;b): no class for it, skip its arguments.
            i += 2 if codes[i + 1] == 5 else 4
        i += 1
