"""Hostile transcript text through every renderer: it must come out as text.

A session full of attack strings (in the prompt, assistant markdown, thinking,
tool inputs and outputs, file names, code blocks, errors, notices) is written as
a real transcript, imported, and rendered as chat and trace. The HTML is parsed:
no script element, no event-handler attribute, no javascript:/data: URL may
survive, while the attack strings themselves must still be visible as text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from render_fixtures import Transcript, imported_store

from kapacitor.server.chat import chat_items, render_chat
from kapacitor.server.render.code import highlight
from kapacitor.server.render.diff import render_diff
from kapacitor.server.render.markdown import render_markdown
from kapacitor.server.render.output import render_folded
from kapacitor.server.render.sanitize import clean
from kapacitor.server.trace import render_trace, trace_tree

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
HOSTILE = [
    SCRIPT,
    IMG,
    "</pre><script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    '<a href="javascript:alert(4)">x</a>',
    "<iframe src=javascript:alert(5)></iframe>",
    "'><body onpageshow=alert(6)>",
    "</template><script>alert(7)</script>",
    "</textarea></title><style>*{}</style><script>alert(8)</script>",
]
EVIL = "\n".join(HOSTILE)
MARKDOWN = f"""Here is {SCRIPT} and {IMG}

[click](javascript:alert(9)) [data](data:text/html;base64,PHNjcmlwdD4=) <javascript:alert(10)>
![pixel](javascript:alert(11)) [ref][r]

[r]: javascript:alert(12)

<div onclick="alert(13)">raw html block</div>

```html
</pre><script>alert(14)</script>
```

```{SCRIPT}
code with a hostile language tag
```
"""
SESSION = "5c1ee7e0-0000-4000-8000-00000000beef"


class Audit(HTMLParser):
    """Collects what a browser would execute or load."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in (
            "script",
            "iframe",
            "object",
            "embed",
            "svg",
            "img",
            "style",
            "body",
            "textarea",
        ):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}=")
            if name in ("href", "src", "action", "formaction", "xlink:href") and re.match(
                r"\s*(javascript|data|vbscript):", value or "", re.I
            ):
                self.problems.append(f"{tag} {name}={value}")


def audit(html: str) -> list[str]:
    assert "<script" not in html.lower()
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser.problems


def hostile_transcript() -> Transcript:
    """A session with an attack string in every place a transcript has text."""
    t = Transcript(SESSION, cwd="/home/dev/<script>alert(0)</script>")
    t.user(EVIL)
    t.assistant(
        {"type": "thinking", "thinking": MARKDOWN, "signature": "sig"},
        {"type": "text", "text": MARKDOWN},
    )
    t.tool("Bash", {"command": EVIL, "description": SCRIPT}, EVIL, is_error=True)
    t.tool(
        "Read", {"file_path": f"/src/{SCRIPT}.py"}, "1\t</pre><script>alert(15)</script>\n2\t" + IMG
    )
    t.tool("Edit", {"file_path": f"/src/{IMG}.py", "old_string": SCRIPT, "new_string": IMG}, "ok")
    t.tool("Write", {"file_path": f"/src/{SCRIPT}", "content": EVIL}, "ok")
    t.tool(
        "MultiEdit",
        {"file_path": SCRIPT, "edits": [{"old_string": IMG, "new_string": SCRIPT}]},
        "ok",
    )
    t.tool("TodoWrite", {"todos": [{"content": SCRIPT, "status": IMG}]}, "ok")
    t.tool("TaskCreate", {"subject": SCRIPT, "description": IMG}, "ok")
    t.tool("TaskUpdate", {"taskId": SCRIPT, "status": IMG, "owner": SCRIPT}, "ok")
    t.tool("Agent", {"description": SCRIPT, "subagent_type": IMG, "prompt": MARKDOWN}, MARKDOWN)
    t.tool(f"mcp__{SCRIPT}", {SCRIPT: IMG, "nested": [EVIL]}, [{"type": "text", "text": EVIL}])
    t.user(f"<command-name>/{SCRIPT}</command-name><command-args>{IMG}</command-args>")
    t.user(f"<local-command-stdout>{EVIL}</local-command-stdout>")
    t.user(f"<bash-input>{SCRIPT}</bash-input>")
    t.user([{"type": "text", "text": f"[Request interrupted by user] {SCRIPT}"}])
    t.system("api_error", error={"message": EVIL}, retryAttempt=1)
    t.system("informational", content=EVIL, level="warning")
    t.system("compact_boundary", compactMetadata={"trigger": SCRIPT, "preTokens": 5})
    t.user(EVIL, isCompactSummary=True)
    t.user(EVIL, isMeta=True)
    t.records.append(
        {"type": IMG, "uuid": "x", "timestamp": "2026-01-02T03:04:09Z", "sessionId": SESSION}
    )
    return t


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory):
    t = hostile_transcript()
    store = imported_store(tmp_path_factory, [t.write(tmp_path_factory.mktemp("transcripts"))])
    yield store
    store.close()


def test_hostile_session_renders_as_text_in_the_chat(hostile_store):
    items = chat_items(hostile_store, SESSION)
    kinds = {item.kind for item in items}
    assert {"prompt", "thinking", "text", "tool", "command", "command_output", "bash_input", "interrupt",
            "api_error", "notice", "compaction", "compact_summary", "meta"} <= kinds  # fmt: skip
    html = render_chat(SESSION, items)
    assert audit(html) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_hostile_session_renders_as_text_in_the_trace(hostile_store):
    html = render_trace(trace_tree(hostile_store, SESSION))
    assert audit(html) == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("text", HOSTILE + [MARKDOWN, EVIL])
def test_each_renderer_escapes(text):
    for html in (
        render_markdown(text),
        highlight(text, filename=text),
        highlight(text, language=text),
        highlight(text, filename="x.html", first_line=1),
        render_folded(text),
        render_diff(
            "Edit", {"file_path": text, "old_string": text, "new_string": text + "!"}, None
        ),
        render_diff(
            "Edit", {}, {"filePath": text, "structuredPatch": [{"lines": [f"-{text}", f"+{text}"]}]}
        ),
        clean(text),
    ):
        assert audit(str(html)) == [], (text, html)


def test_markdown_links_keep_only_safe_schemes():
    html = render_markdown(MARKDOWN + "\n[ok](https://example.org/a?b=1) <mailto:dev@example.org>")
    assert 'href="https://example.org/a?b=1"' in html and 'href="mailto:dev@example.org"' in html
    assert re.findall(r'href="([^"]*)"', html) == [
        "https://example.org/a?b=1",
        "mailto:dev@example.org",
    ]
    assert 'rel="noopener noreferrer nofollow"' in html
