"""What people and agents write through Kapacitor itself is masked on every path
(``kapacitor.authored``): memory facts from the CLI, the Memory page's form (a
signed-in browser, with its CSRF token), the JSON API and the MCP ``remember``
tool, on SQLite and PostgreSQL; a fact stored unmasked by an older version is
masked by ``scrub``; and no module appends such events past the one append point."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from capture_helpers import KAPACITOR  # noqa: F401  (the CLI the helpers run)
from kapacitor.events import FactRetained, agent_memory_stream, to_new_event
from kapacitor.store import open_store
from redaction_corpus import AWS_ID, AWS_ID2, AWS_SECRET, GHP, password
from test_access import cli, running
from test_mcp import call_all, text
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

SRC = Path(__file__).resolve().parent.parent / "src" / "kapacitor"
DB_PASSWORD, FORM_PASSWORD = password(), password()
WRITTEN = {
    "cli": f"deploy with AWS_SECRET_ACCESS_KEY={AWS_SECRET} and {GHP}",
    "form": f"staging db password: {FORM_PASSWORD} and key {AWS_ID}",
    "api": f"use DB_PASSWORD={DB_PASSWORD} and {AWS_ID2} for staging",
}
SECRETS = (AWS_SECRET, GHP, FORM_PASSWORD, AWS_ID, DB_PASSWORD, AWS_ID2)
SCOPE = "acme/x"


@pytest.fixture(params=["sqlite", "postgresql"])
def team(request, tmp_path):
    yield from running(tmp_path, request.getfixturevalue("pg_url") if request.param == "postgresql" else None)


def stored_facts(store_url: str) -> list[str]:
    """Every FactRetained's data as stored, as JSON text."""
    store = open_store(store_url)
    try:
        return [json.dumps(e.data) for e in store.read_all() if e.type == "FactRetained"]
    finally:
        store.close()


def url_of(db: Path | str) -> str:
    return db if isinstance(db, str) else f"sqlite://{db}"


def test_facts_are_masked_on_every_path_they_are_written_by(team, tmp_path):
    cli(team.db, "memory", "add", WRITTEN["cli"], "--repo", SCOPE)

    browser = team.cookie_client("alice")  # the Memory page's plain form, with the page's CSRF token
    page = browser.get("/memory", headers={"Accept": "text/html"}).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    added = browser.post("/memory/facts", data={"text": WRITTEN["form"], "scope": SCOPE, "csrf": csrf})
    assert added.status_code == 303, added.text

    alice = team.client("alice")
    answer = alice.post("/api/memory/facts", json={"text": WRITTEN["api"], "repo": SCOPE, "by": "agent"})
    assert answer.status_code == 200, answer.text

    mcp_password = password()  # the agent's path: the MCP tool, which posts to the JSON API
    server_url = team.server.url
    _, [remembered] = call_all(server_url, [("remember", {"fact": f"the redis password is {mcp_password} (staging)",
                                                          "scope": SCOPE})],
                               cwd=str(tmp_path), token=team.tokens["alice"])
    assert "Remembered as fact" in text(remembered), text(remembered)

    kept = stored_facts(url_of(team.db))
    assert len(kept) == 4
    shown = [
        *kept,
        cli(team.db, "memory", "list", "--json"),
        cli(team.db, "memory", "list"),
        browser.get("/memory", headers={"Accept": "text/html"}).text,
        browser.get(f"/memory/{SCOPE}", headers={"Accept": "text/html"}).text,
        alice.post("/api/memory/recall", json={"repo": SCOPE}).text,
        alice.get("/api/memory/facts").text,
    ]
    for secret in (*SECRETS, mcp_password):
        leaked = [i for i, out in enumerate(shown) if secret in out]
        assert not leaked, (secret[:4], leaked)
    recalled = alice.post("/api/memory/recall", json={"repo": SCOPE}).json()["context"]
    for kind in ("aws-secret-access-key", "github-pat", "password", "aws-access-token"):
        assert f"[REDACTED {kind} #" in recalled, (kind, recalled)
    assert "deploy with" in recalled and "for staging" in recalled  # the rest of each fact is kept


def test_scrub_masks_a_fact_an_older_version_stored_in_clear(tmp_path):
    url = f"sqlite://{tmp_path / 'old.db'}"
    store = open_store(url)
    try:  # what an older version wrote: straight to the store, unmasked
        fact = FactRetained(fact=WRITTEN["cli"], retained_at="2026-11-01T00:00:00Z", extensions={"kapacitor": {
            "fact_id": "0123456789ab", "scope": SCOPE, "category": "note", "provenance": {"by": "person", "user": "ana"}}})
        store.append(agent_memory_stream(SCOPE, "ana"), [to_new_event(fact, "fact-0123456789ab")])
    finally:
        store.close()
    assert AWS_SECRET in cli(url, "memory", "list", "--json")
    assert "would rewrite 1" in cli(url, "scrub", "--dry-run")
    cli(url, "scrub")
    listed = cli(url, "memory", "list", "--json")
    assert AWS_SECRET not in listed and GHP not in listed and "[REDACTED github-pat #" in listed
    assert "would rewrite 0 " in cli(url, "scrub", "--dry-run")  # done once and for all


ALLOWED = {
    "authored.py",  # the one append point for written text
    "capture/importer.py", "server/ingest.py",  # transcripts: masked where they come in
    "normalize/scrub.py",  # rewrites what it masked; its log names no value
    "demo/__init__.py",  # the demo's own invented data (checkpoint only)
}


def test_no_module_appends_events_past_the_one_append_point():
    """A call of ``.append``/``.append_many`` on something named ``store`` outside
    the store package and the paths that mask on their own would bypass
    ``kapacitor.authored``."""
    bypasses = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("store/") or relative in ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("append", "append_many")
                    and isinstance(node.func.value, (ast.Name, ast.Attribute))
                    and (getattr(node.func.value, "id", "") or getattr(node.func.value, "attr", "")).endswith("store")):
                bypasses.append(f"{relative}:{node.lineno}")
    assert not bypasses, bypasses


def test_comments_marks_and_reviews_are_masked_as_facts_are(store):
    """The other writes of people's text go through the same append point."""
    from kapacitor.collab import comments, marks
    from kapacitor.eval.record import record_review

    added = comments.add(store, "s-1", "ana", f"rotate {GHP} please", comments.Target())
    edited = comments.edit(store, "s-1", added.comment_id, "ana", f"rotate {GHP} and {AWS_ID}")
    marks.mark(store, "s-1", "ana", f"shows DB_PASSWORD={DB_PASSWORD} in a log")
    record_review(store, "s-1", "ev1", "q1", False, "ana", f"the judge missed the password is {FORM_PASSWORD}")
    assert "[REDACTED github-pat #" in added.text and AWS_ID not in edited.text  # what the pages answer with
    written = json.dumps([e.data for e in store.read_all()])
    assert not [s for s in (GHP, AWS_ID, DB_PASSWORD, FORM_PASSWORD) if s in written]
    assert written.count("[REDACTED ") == 5
