"""Comments and marks on the real server over loopback, on SQLite and PostgreSQL:
they are events on their own streams (the session's end time and status do not
move), folded by checkpointed read models, rendered as sanitised markdown,
retracted by an event, listed per repository and for the org; on a team server
(--auth) only whoever may see a session may read or write them."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from capture_helpers import WIDGETS, Server, wait_for
from conftest import SAMPLE_DIRS
from kapacitor.capture.gitinfo import resolve_context
from kapacitor.capture.importer import import_paths
from kapacitor.store import open_store
from test_access import BOB_SESSION, running
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)

ACTIVITY = ("started", "ended", "duration_seconds", "status", "tool_calls", "tokens")
"""What a comment or a mark must not change about a session."""


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request, tmp_path):
    """The samples imported into a store (SQLite, PostgreSQL), the real server over it
    (no --auth: the local viewer), and an HTTP client, once the read models caught up."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else f"sqlite://{tmp_path / 'c.db'}"
    store = open_store(url)
    import_paths(store, SAMPLE_DIRS)
    store.close()
    server = Server(url).start()
    client = httpx.Client(base_url=server.url, timeout=15)
    wait_for(lambda: client.get("/healthz").json()["lag"] == 0, timeout=60)
    yield client, url
    client.close()
    server.stop()


def test_comments_are_events_shown_as_safe_markdown_and_retracted_by_an_event(served):
    client, url = served
    sid = WIDGETS
    before = {k: client.get(f"/sessions/{sid}.json").json()[k] for k in ACTIVITY}
    chat_item = next(i for i in client.get(f"/sessions/{sid}/chat.json").json() if i["kind"] == "tool")["id"]
    node = client.get(f"/sessions/{sid}/trace.json").json()["children"][0]["id"]
    api = f"/api/sessions/{sid}/comments"
    on_session = client.post(api, json={"text": "**Good** run <script>alert(1)</script>", "author": "ana@example.com"})
    assert on_session.status_code == 201, on_session.text
    assert on_session.json()["author"] == "ana@example.com" and on_session.json()["target"] == {"kind": "session", "anchor": ""}
    on_item = client.post(api, json={"text": "this call was the turning point", "target": {"kind": "chat", "anchor": chat_item}})
    assert on_item.status_code == 201
    assert on_item.json()["author"] == resolve_context(os.environ["HOME"])["user"]  # no claim: this machine's identity
    assert client.post(api, json={"text": "slow here", "target": {"kind": "trace", "anchor": node}}).status_code == 201

    for bad, why in [({"text": "  "}, "needs some text"), ({"text": "x" * 20_001}, "at most 20,000"),
                     ({"text": "x", "target": {"kind": "chat", "anchor": "no-such-item"}}, "no chat item"),
                     ({"text": "x", "target": {"kind": "email"}}, "not 'email'")]:
        answer = client.post(api, json=bad)
        assert answer.status_code == 422 and why in answer.text, (bad, answer.text)
    assert client.post("/api/sessions/no-such-session/comments", json={"text": "x"}).status_code == 404

    listed = client.get(api, params={"tz": "Europe/Oslo"}).json()
    assert [c["text"][:8] for c in listed["comments"]] == ["**Good**", "this cal", "slow her"]
    assert listed["counts"] == {"session:": 1, f"chat:{chat_item}": 1, f"trace:{node}": 1}
    assert listed["comments"][0]["created_at"].endswith("+01:00")
    panel = client.get(f"/sessions/{sid}/comments").text
    assert "<strong>Good</strong>" in panel and "<script>" not in panel and "&lt;script&gt;" in panel
    assert f"#e-{chat_item}" in panel and f"/trace#node={node}" in panel and "tool call: " in panel

    first = listed["comments"][0]["comment_id"]
    assert client.patch(f"{api}/{first}", json={"text": "**Better** run"}).status_code == 403  # not ana's words
    edited = client.patch(f"{api}/{first}", json={"text": "**Better** run", "author": "ana@example.com"}).json()
    assert edited["text"] == "**Better** run" and edited["edited_at"]
    assert client.patch(f"{api}/{first}", json={"text": " ", "author": "ana@example.com"}).status_code == 422
    assert "<strong>Better</strong>" in client.get(f"/sessions/{sid}/comments").text
    again = client.get(api).json()["comments"][0]
    assert again["edited_at"]
    assert (edited["created_at"], edited["edited_at"]) == (again["created_at"], again["edited_at"])  # one ISO 8601 form
    assert again["created_at"].endswith("+00:00") and not edited["edited_at"].endswith("Z")

    gone = listed["comments"][1]["comment_id"]
    assert client.delete(f"{api}/{gone}").json() == {"session_id": sid, "comment_id": gone, "retracted": True}
    assert client.delete(f"{api}/{gone}").status_code == 404
    assert [c["comment_id"] for c in client.get(api).json()["comments"]] == [
        listed["comments"][0]["comment_id"], listed["comments"][2]["comment_id"]]
    store = open_store(url)
    try:
        log = [(e.type, e.data["comment_id"]) for e in store.read_stream(f"SessionComments-{sid}")]
    finally:
        store.close()
    assert [t for t, _ in log] == ["CommentAdded"] * 3 + ["CommentEdited", "CommentRetracted"] and log[-1][1] == gone
    store = open_store(url)
    try:
        first_text = next(e.data["text"] for e in store.read_stream(f"SessionComments-{sid}") if e.id == first)
    finally:
        store.close()
    assert first_text.startswith("**Good**")  # nothing mutated: the first text stays in the log
    assert {k: client.get(f"/sessions/{sid}.json").json()[k] for k in ACTIVITY} == before


def test_the_page_form_comments_and_refuses_what_is_not_a_form(served):
    client, _ = served
    answer = client.post(f"/sessions/{WIDGETS}/comments", data={"text": "from the *form*", "kind": "session", "anchor": ""})
    assert answer.status_code == 200 and "<em>form</em>" in answer.text and 'data-total="1"' in answer.text
    assert client.post(f"/sessions/{WIDGETS}/comments", json={"text": "x"}).status_code == 415
    page = client.get(f"/sessions/{WIDGETS}", headers={"Accept": "text/html"}).text
    assert 'id="comment-form"' in page and f'data-live-comments="{WIDGETS}"' in page


def test_marks_list_a_session_per_repository_and_for_the_org_and_filter_the_timeline(served):
    client, _ = served
    sid = WIDGETS
    before = {k: client.get(f"/sessions/{sid}.json").json()[k] for k in ACTIVITY}
    repo = client.get(f"/sessions/{sid}.json").json()["repo"]
    assert client.get("/marked.json").json()["sessions"] == []
    assert client.put(f"/api/sessions/{sid}/mark", json={"reason": "first try", "author": "ana"}).status_code == 200
    marks = client.put(f"/api/sessions/{sid}/mark", json={"reason": "a clean TDD loop", "author": "ana"}).json()["marks"]
    assert [(m["author"], m["reason"]) for m in marks] == [("ana", "a clean TDD loop")]  # marking again: a new reason
    client.put(f"/api/sessions/{sid}/mark", json={"author": "ben"})

    [listed] = client.get("/marked.json").json()["sessions"]
    assert listed["session_id"] == sid and [m["author"] for m in listed["marks"]] == ["ben", "ana"]
    assert [s["session_id"] for s in client.get("/marked.json", params={"repo": repo}).json()["sessions"]] == [sid]
    assert client.get("/marked.json", params={"repo": "acme/elsewhere"}).json()["sessions"] == []
    timeline = client.get("/sessions.json", params={"marked": "true"}).json()
    assert timeline["total"] == 1 and timeline["sessions"][0]["marks"] == 2
    assert all(s["marks"] == 0 for s in client.get("/sessions.json").json()["sessions"] if s["session_id"] != sid)
    page = client.get("/marked", params={"repo": repo}, headers={"Accept": "text/html"}).text
    assert "a clean TDD loop" in page and f'data-session="{sid}"' in page
    assert "★" in client.get("/", params={"marked": "true"}, headers={"Accept": "text/html"}).text

    assert client.delete(f"/api/sessions/{sid}/mark", params={"author": "ana"}).json()["marks"][0]["author"] == "ben"
    assert client.delete(f"/api/sessions/{sid}/mark", params={"author": "ana"}).status_code == 404  # hers is gone
    client.delete(f"/api/sessions/{sid}/mark", params={"author": "ana", "marked_by": "ben"})  # the local viewer is an admin
    assert client.get("/marked.json").json()["sessions"] == [] and client.get("/sessions.json?marked=true").json()["total"] == 0
    assert {k: client.get(f"/sessions/{sid}.json").json()[k] for k in ACTIVITY} == before


@pytest.fixture
def team(tmp_path):
    yield from running(tmp_path)


def test_on_a_team_server_whoever_may_see_a_session_comments_and_only_authors_or_admins_retract(team):
    alice, bob, root, anonymous = team.client("alice"), team.client("bob"), team.client("root"), team.client()
    org = f"/api/sessions/{BOB_SESSION}/comments"  # bob's session, open to the org
    by_bob = bob.post(org, json={"text": "mine", "author": "someone else"}).json()
    assert by_bob["author"] == "bob"  # a signed-in user cannot claim another name
    by_alice = alice.post(org, json={"text": "a colleague's view"}).json()
    assert by_alice["author"] == "alice"
    assert alice.delete(f"{org}/{by_bob['comment_id']}").status_code == 403
    assert alice.patch(f"{org}/{by_bob['comment_id']}", json={"text": "hijacked"}).status_code == 403
    assert root.patch(f"{org}/{by_alice['comment_id']}", json={"text": "moderated"}).status_code == 403  # admins retract, never reword
    assert bob.patch(f"{org}/{by_bob['comment_id']}", json={"text": "mine, clearer"}).json()["text"] == "mine, clearer"
    assert bob.delete(f"{org}/{by_bob['comment_id']}").status_code == 200
    assert root.delete(f"{org}/{by_alice['comment_id']}").status_code == 200
    assert bob.get(org).json()["comments"] == []

    private = f"/api/sessions/{WIDGETS}/comments"  # alice's, private
    assert bob.post(private, json={"text": "x"}).status_code == 404 and bob.get(private).status_code == 404
    assert anonymous.get(private).status_code == 404 and anonymous.post(private, json={"text": "x"}).status_code == 401
    assert alice.put(f"/api/sessions/{WIDGETS}/mark", json={"reason": "private lesson"}).status_code == 200
    assert bob.put(f"/api/sessions/{BOB_SESSION}/mark", json={}).status_code == 200
    assert alice.delete(f"/api/sessions/{BOB_SESSION}/mark", params={"marked_by": "bob"}).status_code == 403
    assert [s["session_id"] for s in bob.get("/marked.json").json()["sessions"]] == [BOB_SESSION]
    assert {s["session_id"] for s in alice.get("/marked.json").json()["sessions"]} == {WIDGETS, BOB_SESSION}
    assert alice.put(f"/api/sessions/{WIDGETS}/visibility", json={"visibility": "public"}).status_code == 200
    assert anonymous.get(private).status_code == 200 and anonymous.post(private, json={"text": "x"}).status_code == 401
    assert [m["reason"] for m in anonymous.get(f"/api/sessions/{WIDGETS}/marks").json()["marks"]] == ["private lesson"]

    browser = team.cookie_client("bob")  # a signed-in browser's form needs the page's CSRF token
    form = {"text": "from the browser", "kind": "session", "anchor": ""}
    assert browser.post(f"/sessions/{BOB_SESSION}/comments", data=form).status_code == 403
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/").text).group(1)  # type: ignore[union-attr]
    answer = browser.post(f"/sessions/{BOB_SESSION}/comments", data=form, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200 and "from the browser" in answer.text


def test_a_fact_and_a_comment_made_the_same_way_get_the_same_author(served):
    """One identity rule (``acting_person``) for every person-made event on a server
    without --auth: the identity a client claims, else this machine's (git email)."""
    client, _ = served
    machine = resolve_context(os.environ["HOME"])["user"]
    for claim, expected in (("", machine), ("ana@example.com", "ana@example.com")):
        comment = client.post(f"/api/sessions/{WIDGETS}/comments", json={"text": f"note {claim}", "author": claim})
        assert comment.status_code == 201, comment.text
        fact = client.post("/api/memory/facts", json={"text": f"fact {claim or 'unclaimed'}", "repo": "acme/app", "by": "person", "user": claim})
        assert fact.status_code == 200, fact.text
        [kept] = [f for f in client.get("/api/memory/facts", params={"repo": "acme/app"}).json() if f["fact_id"] == fact.json()["fact_id"]]
        assert comment.json()["author"] == kept["user"] == expected, kept  # before: the fact said "local"
