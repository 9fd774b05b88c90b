"""Prompt search (issue 9, kind 5): ``kapacitor search --prompts``, ``/search?in=prompts``
and its JSON twin find the user's own words (typed and queued prompts, bash-mode
and slash commands) and never context the client or IDE injected, on SQLite and
PostgreSQL, through the viewer. Replayed history is found once, in its owner."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from click.testing import CliRunner
from transcript_builder import Transcript, new_uuid, replayed

from kapacitor.access.viewer import Viewer
from kapacitor.capture.importer import import_paths
from kapacitor.cli import cli
from kapacitor.memory import search
from kapacitor.server.app import create_app
from kapacitor.store import open_store
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

SID = "5ea7c400-0000-4000-8000-000000000001"
FORK = "5ea7c400-0000-4000-8000-000000000002"
LEDGER = "-home-dev-src-ledger"


def queued(t: Transcript, text: str, ts: str, mode: str = "prompt") -> None:
    t.add({"type": "attachment", "uuid": new_uuid(f"{t.session_id}/{ts}"), "timestamp": ts,
           "attachment": {"type": "queued_command", "prompt": text, "commandMode": mode, "origin": {"kind": "human"}}})


def every_kind_of_input() -> Transcript:
    t = Transcript(SID)
    t.user("deploy the widget to staging", "2026-09-01T10:00:00.000Z")
    t.text("Deployed; the quokka check passed.", "2026-09-01T10:00:01.000Z", "msg_ps1", (3, 20, 900, 50))
    opened = "<ide_opened_file>The user opened the file /home/dev/src/ledger/zebrafile.py in the IDE.</ide_opened_file>"
    t.user([{"type": "text", "text": opened}, {"type": "text", "text": "why is the build slow"}], "2026-09-01T10:00:02.000Z")
    t.user("<system-reminder>remember the quokka protocol</system-reminder>\nand check the logs", "2026-09-01T10:00:03.000Z")
    t.user("<user-prompt-submit-hook>the hook says narwhal</user-prompt-submit-hook>", "2026-09-01T10:00:04.000Z")
    t.tool("toolu_ps_b", "Bash", {"command": "make build"}, "2026-09-01T10:00:05.000Z", "msg_ps2", (3, 20, 1000, 50))
    queued(t, "also bump the axolotl version", "2026-09-01T10:00:06.000Z")
    queued(t, "ls capybara", "2026-09-01T10:00:06.500Z", mode="bash")
    t.result("toolu_ps_b", "built in 40 s", "2026-09-01T10:00:07.000Z")
    t.user("<bash-input>git log pangolin</bash-input>", "2026-09-01T10:00:08.000Z")
    t.user("<command-name>/review</command-name>\n<command-message>review</command-message>\n<command-args>the wombat branch</command-args>",
           "2026-09-01T10:00:09.000Z")
    return t


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'events.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def app(store_url, tmp_path):  # type: ignore[no-untyped-def]
    t = every_kind_of_input()
    t.write(tmp_path / "p" / LEDGER / f"{SID}.jsonl")
    fork = replayed(t, FORK)
    fork.user("now ship it", "2026-09-02T09:00:00.000Z")
    fork.write(tmp_path / "p" / LEDGER / f"{FORK}.jsonl")
    store = open_store(store_url)
    import_paths(store, [tmp_path / "p"])
    store.close()
    app = create_app(store_url, run_projections=False)
    app.state.runner.catch_up()
    yield app
    app.state.close()


def fetch(app, url: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.get(url)

    return asyncio.run(go())


def prompt_hits(app, words: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = fetch(app, f"/api/search?q={words}&in=prompts")
    assert response.status_code == 200, response.text
    return response.json()


def test_prompt_search_finds_the_user_s_words_and_no_injected_context(app):
    found = {words: [(h["session_id"], h["kind"], h["snippet"]) for h in prompt_hits(app, words)] for words in (
        "axolotl", "capybara", "pangolin", "wombat", "build slow", "check the logs", "deploy")}
    assert found == {
        "axolotl": [(SID, "prompt", "also bump the axolotl version")],  # queued while a tool ran
        "capybara": [(SID, "prompt", "ls capybara")],  # queued in bash mode
        "pangolin": [(SID, "prompt", "git log pangolin")],  # bash mode, without its tag
        "wombat": [(SID, "prompt", "/review the wombat branch")],  # a slash command
        "build slow": [(SID, "prompt", "why is the build slow")],  # the words beside IDE context
        "check the logs": [(SID, "prompt", "and check the logs")],  # the words after a system reminder
        "deploy": [(SID, "prompt", "deploy the widget to staging")],  # once: the fork's replay is the original's
    }
    for context in ("zebrafile", "ide_opened_file", "quokka", "reminder", "narwhal", "hook"):
        assert prompt_hits(app, context) == [], context  # IDE context, a system reminder, hook output
    everywhere = fetch(app, "/api/search?q=quokka").json()
    assert [(h["kind"], h["session_id"]) for h in everywhere] == [("text", SID)]  # the answer says it, not a prompt
    assert [h["session_id"] for h in prompt_hits(app, "ship")] == [FORK]  # the fork's own prompt


def test_the_page_filters_to_prompts_and_a_wrong_scope_is_one_line(app):
    page = fetch(app, "/search?q=quokka&in=prompts").text
    assert "0 hits" in page and '<option value="prompts" selected>' in page
    page = fetch(app, "/search?q=axolotl&in=prompts").text
    assert "1 hit in 1 session<" in page and "<mark>axolotl</mark>" in page
    assert "search in all or prompts" in fetch(app, "/search?q=x&in=bogus").text
    assert fetch(app, "/api/search?q=x&in=bogus").status_code == 422


def test_prompt_search_goes_through_the_viewer(app):
    db = app.state.runner.conn
    assert search.search(db, None, "axolotl", scope="prompts")
    assert search.search(db, Viewer("nobody"), "axolotl", scope="prompts") == []


def test_the_cli_searches_prompts(app, store_url):
    def run(*args: str) -> list[dict]:
        result = CliRunner().invoke(cli, ["--store", store_url, "search", *args, "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert [h["kind"] for h in run("quokka")] == ["text"]
    assert run("quokka", "--prompts") == []
    assert [h["snippet"] for h in run("pangolin", "--prompts")] == ["git log pangolin"]
