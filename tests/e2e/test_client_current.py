"""End to end with the current Claude Code client (2.1.3xx, pinned in package.json):
the record types and fields it added since 2.1.197, checked against what the fake
model API billed.

(a) a background subagent: launched, then completed by its task notification, which
    is linked to its Agent call in the chat and the trace and is not a prompt; its
    tokens in the chat, the trace and the row are what the API billed for its own
    requests, and its time is one figure on all three; the
    import warns about nothing; tokens equal what the API billed for the requests the
    transcript records; the client's own cost-state equals what it billed for all of
    them, the /compact summary included; a /model switch is recorded;
(b) a denial in print mode is a denial in the chat and in the session's stats, with
    who denied it;
(c) a subagent the API fails, synchronous and background: running while the API
    holds its request, then failed, with the client's error as the reason, on the
    live server's every tab and in an import's ``sessions --json``.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from test_real_client import SKIP_PERMISSIONS, client, followers_done, session_id_of, setup, tools, transcripts  # noqa: F401

from capture_helpers import KAPACITOR, Server, imported_events, live_events, wait_for
from claude_client import finish, git_repo, start
from fake_model import FakeModel, billed_totals
from test_trace_nesting import outside
from kapacitor.pricing import cost_of

pytestmark = pytest.mark.e2e


def kapacitor(*args: str) -> object:
    done = subprocess.run([KAPACITOR, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_background_agent_cost_state_and_model_switch(tmp_path, client):  # noqa: F811
    server = Server(tmp_path / "live.db").start()
    fake = FakeModel("background", {"CWD": str(tmp_path / "work" / "hello")})
    try:
        setup(server.url)
        repo = git_repo(tmp_path / "work" / "hello")
        session_id = finish(start("write hello.py and get it reviewed", repo, fake.url, SKIP_PERMISSIONS))
        finish(start("/model claude-haiku-4-5", repo, fake.url, SKIP_PERMISSIONS, resume=session_id))
        finish(start("/compact", repo, fake.url, SKIP_PERMISSIONS, resume=session_id))
        wait_for(followers_done)
        server.caught_up()  # the chat's subagent figures are the read model's
        chat = server.get(f"/sessions/{session_id}/chat.json")
        trace = server.get(f"/sessions/{session_id}/trace.json")
    finally:
        fake.close()
        server.stop()
    assert live_events(server.store_path) == imported_events([transcripts(client)], tmp_path / "imported.db")

    store = f"sqlite://{tmp_path / 'cli.db'}"
    imported = kapacitor("--store", store, "import", "--json", str(transcripts(client)))
    assert imported["warnings"] == []  # every record type of this client has a home
    [session] = kapacitor("--store", store, "sessions", "--json")

    # The background agent: completed by its notification, not left "async_launched".
    [agent] = session["subagents"]
    assert agent["status"] == "completed" and agent["background"] is True
    assert "no problems" in agent["result"] and agent["duration_seconds"] > 0
    assert session["prompts"] == 1 and session["title"] == "write hello.py and get it reviewed"
    [call] = [c for c in tools(chat) if c["name"] == "Agent"]
    assert call["background"]["status"] == "completed" and "no problems" in call["background"]["result"]
    [notice] = [i for i in chat if i.get("kind") == "notification"]
    assert notice["detail"]["status"] == "completed" and notice["detail"]["call_id"] == call["call_id"]
    assert call["background"]["notification"] == notice["id"]
    assert _nodes(trace, "notification") and any(n["detail"].get("background") for n in _nodes(trace, "tool"))

    # The agent's time and tokens are one count on the live server's chat and trace and
    # in the import's row: its tokens what the API billed for its own requests (the
    # client's notification says only its last request's size).
    subagent_billed = [bill for bill in fake.billed if bill["conversation"] == "E2E_BACKGROUND_REVIEW" and bill["kind"] == "script"]
    assert len(subagent_billed) == 2
    used = sum(bill["usage"][k] for bill in subagent_billed for k in
               ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
    figures = call["subagent"]["figures"]
    [node] = _nodes(trace, "subagent")
    assert agent["tokens_total"] == figures["tokens_total"] == _total(node["tokens"]) == used
    assert agent["duration_seconds"] == pytest.approx(figures["duration_seconds"]) == pytest.approx(node["duration_ms"] / 1000)
    assert agent["client_reported"]["last_request_tokens"] < used

    # Tokens: ours equal what the API billed for the requests the transcript records;
    # the client's own count equals what it billed for all of them (/compact included).
    assert session["tokens"] == billed_totals(fake.billed)
    # The client counts the /compact summary too, but not the tool-less request with
    # which /model checks the new model: billed, yet in no transcript and no cost-state.
    counted = [bill for bill in fake.billed if bill["kind"] in ("script", "override")]
    assert any(bill["kind"] == "override" for bill in counted)
    everything = billed_totals(counted, ("script", "override"))
    reported = session["client_reported"]
    assert {m: {k: v for k, v in t.items() if k in everything[m]} for m, t in reported["tokens"].items()} == {
        m: {k: v for k, v in t.items() if k != "requests"} for m, t in everything.items()}
    billed_cost = sum(cost_of(bill["model"], _flat(bill["usage"])) for bill in counted)
    assert reported["cost_usd"] == pytest.approx(float(billed_cost), rel=1e-6)
    assert reported["unrecorded_cost_usd"] > 0 and reported["unrecorded_tokens"]

    # The /model switch.
    assert {"to": "claude-haiku-4-5", "source": "/model"}.items() <= session["model_switches"][0].items()
    assert session["commands"] == 2  # /model and /compact
    # Every call says which model was asked for; the fake serves exactly that one.
    requests = session["model_requests"]
    assert requests and all(r["requested"] == r["served"] for r in requests)


def test_b_a_denial_is_a_denial(tmp_path, client):  # noqa: F811
    server = Server(tmp_path / "live.db").start()
    fake = FakeModel("denied", {"CWD": str(tmp_path / "work" / "notes")})
    try:
        setup(server.url)
        repo = git_repo(tmp_path / "work" / "notes")
        session_id = finish(start("write my todo list and archive the old notes", repo, fake.url, "--permission-mode", "default"))
        wait_for(followers_done)
        chat = server.get(f"/sessions/{session_id}/chat.json")
        with urllib.request.urlopen(f"{server.url}/sessions/{session_id}", timeout=5) as response:
            page = response.read().decode()
    finally:
        fake.close()
        server.stop()
    denied = {c["name"]: c["interrupt"] for c in tools(chat) if c.get("interrupt", {}).get("outcome") == "denied"}
    assert set(denied) == {"Write", "Bash"}
    assert "permission denied by config" in page
    store = f"sqlite://{tmp_path / 'cli.db'}"
    kapacitor("--store", store, "import", "--json", str(transcripts(client)))
    [session] = kapacitor("--store", store, "sessions", "--json")
    assert session["denials"] == {"Write": {"count": 1, "by": {"config": 1}}, "Bash": {"count": 1, "by": {"config": 1}}}


@pytest.mark.parametrize(("scenario", "reason"), [
    ("subagent_fails", "Agent terminated early due to an API error: API Error: 400"),  # its Agent call's error
    ("background_fails", 'Agent "Review hello.py" failed: Agent terminated early due to an API error: API Error: 400'),  # its notification
], ids=["synchronous", "background"])
def test_c_a_subagent_the_api_fails_is_failed_not_running(tmp_path, client, scenario, reason):  # noqa: F811
    server = Server(tmp_path / "live.db").start()
    fake = FakeModel(scenario, {"CWD": str(tmp_path / "work" / "hello")})
    try:
        setup(server.url)
        repo = git_repo(tmp_path / "work" / "hello")
        proc = start("write hello.py and get it reviewed", repo, fake.url, SKIP_PERMISSIONS)
        try:
            wait_for(lambda: fake.is_holding("failing"), timeout=90)
            session_id = session_id_of(client)
            # The API holds the subagent's second request: live, no result yet.
            [held] = wait_for(lambda: _subagents(server, session_id), timeout=60)
            assert (held["status"], held["reason"]) == ("running", None)
            fake.release("failing")
            assert finish(proc) == session_id
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        wait_for(followers_done)
        server.caught_up()
        [row] = _subagents(server, session_id)
        stats = server.get(f"/sessions/{session_id}/stats.json")
        chat = server.get(f"/sessions/{session_id}/chat.json")
        trace = server.get(f"/sessions/{session_id}/trace.json")
    finally:
        fake.close()
        server.stop()
    assert [b["conversation"] for b in fake.billed if b["kind"] == "script"].count("E2E_FAILING_REVIEW") == 1  # the second refused

    assert row["status"] == "failed" and row["reason"].startswith(reason)
    want = (row["status"], row["reason"])
    [listed] = [a for a in stats["session"]["subagents"] if a["agent_id"] == row["agent_id"]]
    [call] = [c for c in tools(chat) if c["name"] == "Agent"]
    [node] = _nodes(trace, "subagent")
    assert bool(call.get("is_error")) is (scenario == "subagent_fails")  # a background one's call launched it
    assert (call["subagent"]["status"], call["subagent"]["reason"]) == want
    assert (call.get("background") or {"status": "failed"})["status"] == "failed"
    assert (listed["status"], listed["reason"]) == want == (node["detail"]["status"], node["detail"]["reason"])
    assert outside(trace) == []  # the live trace's bars nest

    # The import of the same transcripts says the same.
    assert live_events(server.store_path) == imported_events([transcripts(client)], tmp_path / "imported.db")
    store = f"sqlite://{tmp_path / 'cli.db'}"
    kapacitor("--store", store, "import", "--json", str(transcripts(client)))
    [session] = kapacitor("--store", store, "sessions", "--json")
    [imported] = session["subagents"]
    assert (imported["agent_id"], imported["status"], imported["reason"]) == (row["agent_id"], *want)


def _subagents(server: Server, session_id: str) -> list[dict]:
    try:
        return server.get(f"/sessions/{session_id}.json")["subagents"]  # type: ignore[index]
    except OSError:
        return []


def _nodes(node: dict, kind: str) -> list[dict]:
    found = [node] if node["kind"] == kind else []
    for child in node["children"]:
        found += _nodes(child, kind)
    return found


def _flat(usage: dict) -> dict:
    return usage | usage["cache_creation"]


def _total(tokens: dict) -> int:
    return sum(tokens[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
