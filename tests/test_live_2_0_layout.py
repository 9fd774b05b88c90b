"""Live capture of the 2.0.x layout (issue 9, kind 1): a subagent's transcript
written as ``agent-<id>.jsonl`` beside the parent's file is found by the real
hook and follower (by its records' ``sessionId``, not its name), shipped to the
real server on loopback, and the session's subagent tokens and chat equal an
import of the same files. Another session's agent file in the same folder is
left alone."""

from __future__ import annotations

import json
import os
import signal

from capture_helpers import Server, imported_events, live_events, run_hook, state_dir, wait_for
from test_fidelity import BLOG_ID, blog_finish, blog_parent, blog_subagent
from test_hook_follower import follower_pid
from transcript_builder import Transcript

FOLLOW = {"KAPACITOR_FOLLOW": "1", "KAPACITOR_FOLLOW_IDLE": "20"}
OTHER = "0ddba11a-0000-4000-8000-000000000008"


def payload(main, event: str, **extra: object) -> dict[str, object]:  # noqa: ANN001
    return {"session_id": BLOG_ID, "transcript_path": str(main), "cwd": "/home/dev/src/blog", "hook_event_name": event, **extra}


def session_json(server: Server) -> dict:
    try:
        return server.get(f"/sessions/{BLOG_ID}.json")  # type: ignore[return-value]
    except OSError:
        return {}


def test_a_2_0_agent_file_beside_the_parent_is_captured_live_as_its_subagent(tmp_path, live_server):
    folder = tmp_path / "projects" / "-home-dev-src-blog"
    main = folder / f"{BLOG_ID}.jsonl"
    parent, sub = blog_parent(), blog_subagent()
    other = Transcript(OTHER, cwd="/home/dev/src/blog", version="2.0.37")  # another session's subagent, same folder
    other.user("count the drafts", "2025-11-17T11:19:00.000Z", chain=False, isSidechain=True, agentId="9e9e9e9e")
    other.write(folder / "agent-9e9e9e9e.jsonl")
    parent.write(main)
    try:
        run_hook("SessionStart", payload(main, "SessionStart", source="startup"), **FOLLOW)
        run_hook("UserPromptSubmit", payload(main, "UserPromptSubmit", prompt="which posts are missing a date?"), **FOLLOW)
        wait_for(lambda: follower_pid(BLOG_ID))
        agent_file = folder / "agent-3f9a1c2e.jsonl"
        lines = sub.lines()
        with agent_file.open("w") as handle:  # the subagent runs: no hook fires, the follower reads
            handle.write(lines[0][:40])  # a first line still being written: not yet known to be ours
            handle.flush()
            handle.write(lines[0][40:] + "\n" + "".join(line + "\n" for line in lines[1:]))
        wait_for(lambda: session_json(live_server).get("subagents") and session_json(live_server)["subagents"][0]["tokens"])
        blog_finish(parent).write(main)
        run_hook("Stop", payload(main, "Stop"), **FOLLOW)
        run_hook("SessionEnd", payload(main, "SessionEnd", reason="other"), **FOLLOW)
        live = session_json(live_server)
        live_chat = live_server.get(f"/sessions/{BLOG_ID}/chat.json")
    finally:
        if pid := follower_pid(BLOG_ID):
            os.kill(pid, signal.SIGKILL)
    live_server.stop()

    state = json.loads((state_dir() / "sessions" / f"{BLOG_ID}.json").read_text())
    assert str(folder / "agent-9e9e9e9e.jsonl") in state["foreign"]
    assert str(agent_file) in state["offsets"]

    # Only this session's files reach the store; its events are the import's.
    ours = {k: v for k, v in imported_events([tmp_path / "projects"], tmp_path / "imported.db").items()
            if v[3]["source"]["session_id"] == BLOG_ID}
    assert live_events(live_server.store_path) == ours
    imported = Server(tmp_path / "imported.db").start().caught_up()
    try:
        want = imported.get(f"/sessions/{BLOG_ID}.json")
        want_chat = imported.get(f"/sessions/{BLOG_ID}/chat.json")
    finally:
        imported.stop()
    assert [(s["agent_id"], s["tokens"]) for s in live["subagents"]] == [(s["agent_id"], s["tokens"]) for s in want["subagents"]]
    assert live["subagents"][0]["agent_id"] == "3f9a1c2e"
    assert (live["tokens"], live["cost_usd"], live["cwd"]) == (want["tokens"], want["cost_usd"], "/home/dev/src/blog")
    assert live_chat == want_chat
    assert "content/a.md" in json.dumps(live_chat)  # the subagent's Glob result, inlined under the Task call
