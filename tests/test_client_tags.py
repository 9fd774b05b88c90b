"""Tags Claude Code wraps a tool result in for the model do not reach the reader:
the demo's refactor session (its Explore subagent's answer opens with
``<tools-used-before-summary>Bash, Read</tools-used-before-summary>``) and a
refused Write (``<tool_use_error>…</tool_use_error>``), imported and served by
the real server; the raw lines keep the tags."""

from __future__ import annotations

import json
import urllib.request

from capture_helpers import Server, wait_for
from kapacitor.capture.importer import import_paths
from kapacitor.demo import extracted
from kapacitor.normalize.client_records import result_text
from kapacitor.store import open_store

REFACTOR = "79384b8e-9eee-5143-be6f-7a4dd23ad8ac"  # the demo's refactor with an Explore subagent
FAQ = "186fc944-0d66-53ed-b94d-e436efdc6659"  # the demo's FAQ session: a Write refused before a Read
TAGS = ("tools-used-before-summary", "tool_use_error")


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def without(value: object, key: str) -> object:
    """``value`` with every ``key`` left out of its dicts, at any depth."""
    if isinstance(value, dict):
        return {k: without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [without(v, key) for v in value]
    return value


def test_result_text_drops_the_note_and_unwraps_the_error():
    assert result_text("<tools-used-before-summary>Bash, Read</tools-used-before-summary>\n## Readers\n|a|") == "## Readers\n|a|"
    assert result_text("<tool_use_error>File has not been read yet.</tool_use_error>") == "File has not been read yet."
    quoted = "the docs say <tool_use_error>x</tool_use_error> wraps errors"
    assert result_text(quoted) == quoted  # only a result that is wholly wrapped is unwrapped
    assert result_text("plain") == "plain"


def test_the_client_tags_stay_in_the_raw_lines_only(tmp_path):
    store = open_store(f"sqlite://{tmp_path / 'demo.db'}")
    with extracted() as (projects, resolve):
        import_paths(store, [projects], resolve_context=resolve)
    raw = [e.metadata.get("raw", "") for sid in (REFACTOR, FAQ) for e in store.read_all(0, limit=10_000)
           if e.stream.endswith(sid) or sid in e.stream]
    assert all(any(tag in r for r in raw) for tag in TAGS)  # kept where they came from
    store.close()
    server = Server(tmp_path / "demo.db").start()
    try:
        wait_for(lambda: json.loads(fetch(f"{server.url}/healthz"))["lag"] == 0, timeout=120)
        session = json.loads(fetch(f"{server.url}/sessions/{REFACTOR}.json"))
        [explore] = session["subagents"]
        assert explore["result"].startswith("## Readers of `api/config.py` globals"), explore["result"][:80]
        pages = [fetch(f"{server.url}/sessions/{sid}{tab}") for sid in (REFACTOR, FAQ) for tab in ("", "/stats", "/trace", ".json")]
        # chat.json's ``structured`` is the client's toolUseResult verbatim (its data, as the raw line is)
        pages += [json.dumps(without(json.loads(fetch(f"{server.url}/sessions/{sid}/chat.json")), "structured"))
                  for sid in (REFACTOR, FAQ)]
        for text in pages:
            assert not any(tag in text for tag in TAGS)
        assert "File has not been read yet. Read it first before writing to it." in pages[4]  # the FAQ's chat
    finally:
        server.stop()
