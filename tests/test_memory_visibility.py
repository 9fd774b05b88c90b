"""Every read path of memory and the agent tools goes through ``memory.gate``:
with a viewer who may not see a session, its facts, search hits, recap, errors,
plan, transcript, tool results and recall share are hidden, on the JSON API and
on the pages. The viewer is the team server's own (``--auth``, a user's token):
the hidden session is its owner's private one, every other one is ``org``."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from conftest import SAMPLE_DIRS
from kapacitor.access import accounts
from kapacitor.capture.importer import import_paths
from kapacitor.memory import facts
from kapacitor.server.app import create_app

HIDDEN = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"
SHOWN = "708f24f2-dc3e-4588-a43d-59d69a508ed0"


@pytest.fixture
def client(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    facts.retain(store, "hidden session's fact: unittest", "acme/app", facts.Provenance("agent", "a", HIDDEN))
    facts.retain(store, "visible session's fact: unittest", "acme/app", facts.Provenance("agent", "a", SHOWN))
    facts.retain(store, "a person's fact: unittest", "acme/app", facts.Provenance("person", "p"))
    app = create_app(f"sqlite://{store_path}", auth=True)
    db = app.state.db
    accounts.add_user(db, "owner")
    accounts.add_user(db, "viewer")
    accounts.claim_session(db, HIDDEN, "owner")  # private: the default
    _, token = accounts.create_token(db, "viewer")

    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        deadline = time.monotonic() + 60  # a guard against a hang, not a timing
        while client.get("/healthz").json()["lag"] and time.monotonic() < deadline:
            time.sleep(0.05)
        for (sid,) in db.execute("SELECT session_id FROM repository_sessions WHERE session_id <> ?", (HIDDEN,)).fetchall():
            accounts.claim_session(db, sid, "owner")
            accounts.set_session_visibility(db, sid, "org")  # every other session is the team's
        yield client


def test_hidden_sessions_leak_through_no_read_path(client):
    texts = [f["text"] for f in client.get("/api/memory/facts", params={"repo": "acme/app"}).json()]
    assert sorted(texts) == ["a person's fact: unittest", "visible session's fact: unittest"]
    context = client.get("/api/memory/recall", params={"repo": "acme/app"}).json()["context"]
    assert "visible session's fact" in context and "hidden" not in context
    hits = client.get("/api/search", params={"q": "unittest"}).json()
    assert hits and HIDDEN not in {h["session_id"] for h in hits}
    for path in ("recap", "errors", "plan", "transcript", "tool-results/x"):
        answer = client.get(f"/api/sessions/{HIDDEN}/{path}")
        assert answer.status_code == 404 and answer.json()["detail"] == f"no session {HIDDEN!r}", path
    assert client.get(f"/api/sessions/{SHOWN}/recap").status_code == 200
    page = client.get("/memory/acme/app", headers={"accept": "text/html"}).text
    assert "visible session&#39;s fact" in page and "hidden session" not in page
    assert HIDDEN not in client.get("/search", params={"q": "unittest"}, headers={"accept": "text/html"}).text


def test_a_hidden_fact_cannot_be_changed_either(client):
    hidden = next(f for f in facts.rows(client.app.state.db) if f.session_id == HIDDEN)
    assert client.post(f"/api/memory/facts/{hidden.fact_id}/retire", json={}).status_code == 404
    assert client.post(f"/api/memory/facts/{hidden.fact_id}/supersede", json={"text": "x"}).status_code == 404
