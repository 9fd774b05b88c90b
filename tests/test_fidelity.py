"""Faithful accounting of real histories (issue 9): the field cases' expected
values on the project's own copies of such inputs, plus one more input per kind.

Each test writes its transcripts (``transcript_builder``), imports them into a
real SQLite store, runs every read model and checks the ``sessions`` rows (what
``kapacitor sessions --json`` and the pages show) and the pure fold, which must
agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transcript_builder import SONNET, Transcript, new_uuid, replayed

from kapacitor.capture.importer import import_paths
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.projections.session_summary import SessionSummaries
from kapacitor.server.chat import chat_items

LEDGER = "-home-dev-src-ledger"


def imported(store, store_path, root: Path) -> tuple[dict[str, dict], object]:
    """Import ``root``; the ``sessions`` rows by session id (read models), checked
    equal to the pure fold's."""
    summary = import_paths(store, [root])
    runner = ProjectionRunner(store, store_path, PROJECTIONS)
    runner.catch_up()
    assert not runner.failures
    rows = {sid: json.loads(row) for sid, row in runner.conn.execute("SELECT session_id, row FROM sessions")}
    runner.close()
    fold = SessionSummaries()
    for event in store.read_all():
        fold.apply(event)
    folded = {sid: s.as_json() for sid, s in fold.sessions.items()}
    assert folded == rows
    return rows, summary


def repositories(store_path: Path) -> dict[str, dict]:
    import sqlite3

    conn = sqlite3.connect(store_path)
    try:
        rows = conn.execute("SELECT key, sessions, tokens, tool_calls, files_changed FROM repositories").fetchall()
    finally:
        conn.close()
    return {key: {"sessions": n, "tokens": t, "tool_calls": c, "files_changed": f} for key, n, t, c, f in rows}


def tokens(inp: int, out: int, read: int, write: int, requests: int) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "ephemeral_5m_input_tokens": write,
        "ephemeral_1h_input_tokens": 0,
        "requests": requests,
    }


def flat(items) -> list:
    """Chat items with the subagent items nested under tool calls, depth first."""
    out = []
    for item in items:
        out.append(item)
        if item.tool is not None and item.tool.subagent is not None:
            out.extend(flat(item.tool.subagent.items))
    return out


# --- 2: count once across the store (field case 02) ---------------------------

A_ID = "3c7b936d-5efd-5ae8-a340-0ba0c71987e7"
B_ID = "981362f2-4da0-51d3-a566-e7df55f20faf"


def csv_session(session_id: str) -> Transcript:
    a = Transcript(session_id)
    a.user("add a CSV export to the report page", "2026-07-20T09:00:01.000Z", uid="e8336c8c-dfa6-5800-b17f-7e0f46ed959f")
    a.tool("toolu_c02_w", "Write", {"file_path": "/home/dev/src/ledger/export_csv.py", "content": "def export(rows):\n    ...\n"},
           "2026-07-20T09:00:02.000Z", "msg_02ForkA1", (4, 310, 18000, 4200))
    a.result("toolu_c02_w", "File created successfully at: /home/dev/src/ledger/export_csv.py", "2026-07-20T09:00:03.000Z",
             {"type": "create", "filePath": "/home/dev/src/ledger/export_csv.py", "content": "def export(rows):\n    ...\n", "structuredPatch": []})
    a.text("Added export_csv.py with an `export(rows)` function.", "2026-07-20T09:00:04.000Z", "msg_02ForkA2", (4, 120, 22200, 400))
    return a


def forked(a: Transcript, b_id: str, *, fresh_uuids: bool = False) -> Transcript:
    b = replayed(a, b_id, fresh_uuids=fresh_uuids)
    b.user("now add a JSON export next to it", "2026-07-20T11:30:01.000Z")
    b.text("Added export_json.py mirroring the CSV exporter.", "2026-07-20T11:30:02.000Z", "msg_02ForkB1", (4, 150, 22600, 900))
    return b


def check_fork(rows: dict, a_id: str, b_id: str, store_path: Path) -> None:
    a, b = rows[a_id], rows[b_id]
    assert a["prompts"] == 1
    assert a["tokens"] == {SONNET: tokens(8, 430, 40200, 4600, 2)}
    assert a["cost_usd"] == pytest.approx(0.035784)
    assert b["prompts"] == 1
    assert b["tokens"] == {SONNET: tokens(4, 150, 22600, 900, 1)}
    assert b["cost_usd"] == pytest.approx(0.012417)
    assert (b["tool_calls"], b["files_changed"]) == (0, [])
    assert (b["started"], b["duration_seconds"], b["title"]) == ("2026-07-20T11:30:01.000Z", 1.0, "now add a JSON export next to it")
    assert a["cost_usd"] + b["cost_usd"] == pytest.approx(0.048201)
    assert (b["continued_from"], a["continued_in"]) == ([a_id], [b_id])
    assert b["inherited_events"] > 0 and a["inherited_events"] == 0
    repo = repositories(store_path)["/home/dev/src/ledger"]
    assert (repo["tokens"], repo["tool_calls"], repo["files_changed"]) == (68892, 1, 1)


def test_a_forked_session_counts_only_its_own_work(store, store_path, tmp_path):
    a = csv_session(A_ID)
    a.write(tmp_path / "p" / LEDGER / f"{A_ID}.jsonl")
    forked(a, B_ID).write(tmp_path / "p" / LEDGER / f"{B_ID}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    check_fork(rows, A_ID, B_ID, store_path)


def test_the_older_session_owns_its_records_whatever_the_file_names_and_with_fresh_uuids(store, store_path, tmp_path):
    # The continuation's file sorts first and replays under new uuids: the API
    # calls (message id + request id) still say what it is, and the prompt and
    # tool result between them are replays by their words (call), time and place.
    a_id, b_id = "ffff0000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    a = csv_session(a_id)
    a.write(tmp_path / "p" / LEDGER / f"{a_id}.jsonl")
    forked(a, b_id, fresh_uuids=True).write(tmp_path / "p" / LEDGER / f"{b_id}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    check_fork(rows, a_id, b_id, store_path)


def test_the_continuation_shows_inherited_history_marked_and_its_own_work_plain(store, store_path, tmp_path):
    a = csv_session(A_ID)
    a.write(tmp_path / "p" / LEDGER / f"{A_ID}.jsonl")
    forked(a, B_ID).write(tmp_path / "p" / LEDGER / f"{B_ID}.jsonl")
    imported(store, store_path, tmp_path / "p")
    items = chat_items(store, B_ID, inherited=_inherited(store_path, B_ID))
    marked = [(i.kind, i.text, i.detail.get("inherited_from")) for i in items]
    assert marked[0] == ("prompt", "add a CSV export to the report page", A_ID)
    assert marked[-2:] == [("prompt", "now add a JSON export next to it", None), ("text", "Added export_json.py mirroring the CSV exporter.", None)]
    assert all(i.detail.get("inherited_from") == A_ID for i in items[:-2])
    own = chat_items(store, A_ID, inherited=_inherited(store_path, A_ID))
    assert not any(i.detail.get("inherited_from") for i in own)


def continued_session(a_id: str) -> Transcript:
    """A session with every form of the user's input: a typed prompt, one queued
    while a tool ran, a bash-mode command, a prompt inside IDE context."""
    a = queued_session(a_id)
    a.user("<bash-input>git status</bash-input>", "2026-04-27T10:00:08.000Z")
    a.user("<bash-stdout>nothing to commit</bash-stdout><bash-stderr></bash-stderr>", "2026-04-27T10:00:08.100Z")
    opened = "<ide_opened_file>The user opened the file /home/dev/src/ledger/CHANGELOG.md in the IDE.</ide_opened_file>"
    a.user([{"type": "text", "text": opened}, {"type": "text", "text": "run the tests"}], "2026-04-27T10:00:09.000Z")
    a.text("All 212 tests pass.", "2026-04-27T10:00:10.000Z", "msg_C9A", (3, 20, 16500, 100))
    return a


def test_prompts_replayed_under_new_uuids_belong_to_the_session_that_made_them(store, store_path, tmp_path):
    """A ``--continue`` file replaying every form of input under new uuids counts
    none of it; the same words typed again afterwards are the new session's own."""
    a_id, b_id = "c0a1c0a1-0000-4000-8000-00000000000a", "c0a1c0a1-0000-4000-8000-00000000000b"
    a = continued_session(a_id)
    a.write(tmp_path / "p" / LEDGER / f"{a_id}.jsonl")
    b = replayed(a, b_id, fresh_uuids=True)
    b.user("run the tests", "2026-04-27T16:00:00.000Z")  # the same words, typed again
    b.text("Still green.", "2026-04-27T16:00:01.000Z", "msg_C9B", (3, 10, 16600, 50))
    b.write(tmp_path / "p" / LEDGER / f"{b_id}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    a_row, b_row = rows[a_id], rows[b_id]
    assert (a_row["prompts"], a_row["title"], a_row["tool_calls"]) == (4, "bump the version to 2.3.0", 2)
    assert (b_row["prompts"], b_row["title"], b_row["tool_calls"], b_row["files_changed"]) == (1, "run the tests", 0, [])
    assert (b_row["started"], b_row["duration_seconds"]) == ("2026-04-27T16:00:00.000Z", 1.0)
    assert (b_row["continued_from"], a_row["continued_in"]) == ([a_id], [b_id])
    items = chat_items(store, b_id, inherited=_inherited(store_path, b_id))
    assert [i.detail.get("inherited_from") for i in items] == [a_id] * (len(items) - 2) + [None, None]
    assert [i.text for i in items[-2:]] == ["run the tests", "Still green."]


def test_the_same_words_at_the_same_time_elsewhere_in_the_chain_are_not_a_replay(store, store_path, tmp_path):
    """A replay key counts only where the owner's record stood: a copy under fresh
    ids whose prompt follows a record of its own is another session's input."""
    a_id, c_id = "c0a1c0a1-0000-4000-8000-00000000001a", "c0a1c0a1-0000-4000-8000-00000000001c"
    a = continued_session(a_id)
    a.write(tmp_path / "p" / LEDGER / f"{a_id}.jsonl")
    c = Transcript(c_id)
    c.user("check the changelog", "2026-04-27T09:59:00.000Z")
    c.text("It has an Unreleased section.", "2026-04-27T09:59:30.000Z", "msg_C9C", (3, 10, 900, 50))
    said = next(r for r in a.records if r["timestamp"] == "2026-04-27T10:00:09.000Z")
    c.user(said["message"]["content"], said["timestamp"])
    c.write(tmp_path / "p" / LEDGER / f"{c_id}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    assert (rows[a_id]["prompts"], rows[c_id]["prompts"]) == (4, 2)
    assert rows[c_id]["continued_from"] == [] and rows[a_id]["continued_in"] == []


def _inherited(store_path: Path, session_id: str) -> dict[int, str]:
    from kapacitor.projections.ownership import inherited_positions
    from kapacitor.projections.runner import open_read_models

    conn = open_read_models(store_path)
    try:
        return inherited_positions(conn, session_id)
    finally:
        conn.close()


# --- 4: synthetic messages; cost per model and partial (field case 07) --------


def test_a_synthetic_message_is_no_request_and_leaves_the_cost_known(store, store_path, tmp_path):
    sid = "4c29d937-a84a-5f76-a3ec-5075187b9745"
    t = Transcript(sid)
    t.user("rename the ledger module to accounts", "2026-08-04T14:00:01.000Z")
    t.text("Renamed ledger/ to accounts/ and fixed the imports.", "2026-08-04T14:00:02.000Z", "msg_07A", (6, 220, 30000, 2500))
    t.user("[Request interrupted by user]", "2026-08-04T14:00:03.000Z")
    synthetic = t.text("No response requested.", "2026-08-04T14:00:04.000Z", "89a3c939-c1d1-5545-a199-feadf535ea8b",
                       (0, 0, 0, 0), model="<synthetic>")
    del synthetic["requestId"]
    t.write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    row = rows[sid]
    assert row["tokens"] == {SONNET: tokens(6, 220, 30000, 2500, 1)}
    assert row["cost_usd"] == pytest.approx(0.021693)
    assert row["unpriced_tokens"] == {}
    notice = [i for i in chat_items(store, sid) if i.text == "No response requested."]
    assert notice and notice[0].detail.get("synthetic") is True


def test_an_unpriced_model_leaves_the_priced_part_and_counts_its_tokens(store, store_path, tmp_path):
    sid = "7e57c0de-0000-4000-8000-000000000007"
    t = Transcript(sid)
    t.user("summarise the ledger", "2026-08-04T15:00:01.000Z")
    t.text("Summary one.", "2026-08-04T15:00:02.000Z", "msg_07P", (6, 220, 30000, 2500))
    t.text("Summary two.", "2026-08-04T15:00:03.000Z", "msg_07U", (10, 20, 30, 40), model="acme-unreleased-model-9")
    t.write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    row = rows[sid]
    assert row["cost_usd"] == pytest.approx(0.021693)
    assert row["unpriced_tokens"] == {"acme-unreleased-model-9": 100}
    assert row["tokens"]["acme-unreleased-model-9"]["requests"] == 1


def test_cost_usd_is_the_priced_part_zero_without_calls_and_null_only_when_nothing_is_priced(store, store_path, tmp_path):
    """The one rule README, docstring and JSON share: ``cost_usd`` is the priced
    part; 0 without API calls; null when there are calls and none is priced."""
    ids = {name: f"7e57c0de-0000-4000-8000-00000000000{n}" for n, name in enumerate(("none", "mixed", "unpriced"), 1)}
    for name, sid in ids.items():
        t = Transcript(sid)
        t.user(f"cost case {name}", "2026-08-05T10:00:01.000Z")
        if name == "mixed":
            t.text("Priced.", "2026-08-05T10:00:02.000Z", "msg_cp1", (6, 220, 30000, 2500))
        if name in ("mixed", "unpriced"):
            t.text("Unpriced.", "2026-08-05T10:00:03.000Z", f"msg_cu_{name}", (10, 20, 30, 40), model="acme-unreleased-model-9")
        t.write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    none, mixed, unpriced = (rows[ids[n]] for n in ("none", "mixed", "unpriced"))
    assert (none["cost_usd"], none["unpriced_tokens"]) == (0.0, {})
    assert mixed["cost_usd"] == pytest.approx(0.021693)
    assert mixed["unpriced_tokens"] == {"acme-unreleased-model-9": 100}
    assert unpriced["cost_usd"] is None
    assert unpriced["unpriced_tokens"] == {"acme-unreleased-model-9": 100}


# --- 1: identity from the records (field case 08) -----------------------------

BLOG_ID = "66095f07-3ff6-5baa-9dbd-8a52bc584e35"


def blog_parent(session_id: str = BLOG_ID, version: str = "2.0.37") -> Transcript:
    p = Transcript(session_id, cwd="/home/dev/src/blog", version=version)
    p.user("which posts are missing a date?", "2025-11-17T11:20:01.000Z")
    prompt = "List the markdown posts under content/ and report which ones lack a date field."
    p.tool("toolu_c08_task", "Task", {"description": "Find undated posts", "subagent_type": "Explore", "prompt": prompt},
           "2025-11-17T11:20:02.000Z", "msg_08M1", (10, 140, 12000, 4000))
    return p


def blog_subagent(parent_id: str = BLOG_ID, agent_id: str | None = "3f9a1c2e", version: str = "2.0.37") -> Transcript:
    s = Transcript(parent_id, cwd="/home/dev/src/blog", version=version)
    tag = {"agentId": agent_id} if agent_id else {}
    prompt = "List the markdown posts under content/ and report which ones lack a date field."
    s.user(prompt, "2025-11-17T11:20:03.000Z", chain=False, isSidechain=True, **tag)
    s.tool("toolu_c08_glob", "Glob", {"pattern": "content/**/*.md"}, "2025-11-17T11:20:04.000Z", "msg_08S1", (4, 60, 0, 6100),
           isSidechain=True, **tag)
    s.result("toolu_c08_glob", "content/a.md\ncontent/b.md\ncontent/c.md", "2025-11-17T11:20:05.000Z",
             {"filenames": ["content/a.md", "content/b.md", "content/c.md"], "numFiles": 3}, isSidechain=True, **tag)
    s.text("content/b.md has no date field.", "2025-11-17T11:20:06.000Z", "msg_08S2", (4, 45, 6100, 300), isSidechain=True, **tag)
    return s


def blog_finish(p: Transcript, agent_id: str | None = "3f9a1c2e") -> Transcript:
    structured = {"status": "completed", "content": [{"type": "text", "text": "content/b.md has no date field."}], "totalDurationMs": 4100}
    if agent_id:
        structured["agentId"] = agent_id
    p.result("toolu_c08_task", [{"type": "text", "text": "content/b.md has no date field."}], "2025-11-17T11:20:07.000Z", structured)
    p.text("Only content/b.md is missing a date.", "2025-11-17T11:20:08.000Z", "msg_08M2", (10, 30, 16000, 300))
    return p


def check_blog(rows: dict, agent_id: str | None, store) -> None:
    assert list(rows) == [BLOG_ID]
    row = rows[BLOG_ID]
    assert row["tokens"] == {SONNET: tokens(28, 275, 34100, 10700, 4)}
    assert row["tokens_main"] == {SONNET: tokens(20, 170, 28000, 4300, 2)}
    [sub] = row["subagents"]
    assert sub["tokens"] == {SONNET: tokens(8, 105, 6100, 6400, 2)}
    if agent_id:
        assert sub["agent_id"] == agent_id
    assert row["cost_usd"] == pytest.approx(0.054564)
    assert (row["cwd"], row["title"], row["prompts"]) == ("/home/dev/src/blog", "which posts are missing a date?", 1)
    [task] = [i for i in chat_items(store, BLOG_ID) if i.tool and i.tool.name == "Task"]
    run = task.tool.subagent
    assert run is not None
    inner = [(i.kind, i.tool.name if i.tool else i.text) for i in run.items]
    assert ("tool", "Glob") in inner and ("text", "content/b.md has no date field.") in inner
    glob = next(i for i in run.items if i.tool and i.tool.name == "Glob")
    assert glob.tool.result == "content/a.md\ncontent/b.md\ncontent/c.md"


def test_a_2_0_agent_file_beside_the_parent_is_its_subagent_not_a_session(store, store_path, tmp_path):
    folder = tmp_path / "p" / "-home-dev-src-blog"
    blog_finish(blog_parent()).write(folder / f"{BLOG_ID}.jsonl")
    blog_subagent().write(folder / "agent-3f9a1c2e.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    check_blog(rows, "3f9a1c2e", store)
    assert list(repositories(store_path)) == ["/home/dev/src/blog"]


def test_inline_sidechain_records_before_2_0_are_the_subagent_s(store, store_path, tmp_path):
    parent = blog_parent(version="1.0.61")
    side = blog_subagent(agent_id=None, version="1.0.61")
    parent.records.extend(side.records)
    parent.last_uuid = parent.records[1]["uuid"]
    blog_finish(parent, agent_id=None).write(tmp_path / "p" / "-home-dev-src-blog" / f"{BLOG_ID}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    check_blog(rows, None, store)


def test_a_renamed_copy_is_the_session_its_records_name(store, store_path, tmp_path):
    folder = tmp_path / "p" / "-home-dev-src-blog"
    parent = blog_finish(blog_parent())
    parent.write(folder / "backup of yesterday.jsonl")
    parent.write(tmp_path / "p" / "elsewhere" / f"{BLOG_ID}.jsonl")  # and a plain copy
    blog_subagent().write(folder / "agent-3f9a1c2e.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    check_blog(rows, "3f9a1c2e", store)


# --- 5: the user's words (field cases 11 and 13) -------------------------------


def queued_session(sid: str, origin: str = "human", mode: str = "prompt") -> Transcript:
    t = Transcript(sid)
    t.user("bump the version to 2.3.0", "2026-04-27T10:00:01.000Z")
    t.tool("toolu_c11_e1", "Edit", {"file_path": "/home/dev/src/ledger/pyproject.toml", "old_string": "2.2.9", "new_string": "2.3.0"},
           "2026-04-27T10:00:02.000Z", "msg_11A", (3, 90, 15000, 900))
    t.add({"type": "queue-operation", "operation": "enqueue", "timestamp": "2026-04-27T10:00:02.500Z", "content": "also add an entry to CHANGELOG.md"}, chain=False)
    t.result("toolu_c11_e1", "The file /home/dev/src/ledger/pyproject.toml has been updated.", "2026-04-27T10:00:03.500Z",
             {"filePath": "/home/dev/src/ledger/pyproject.toml", "structuredPatch": []})
    t.add({"type": "queue-operation", "operation": "remove", "timestamp": "2026-04-27T10:00:04.000Z"}, chain=False)
    t.add({"type": "attachment", "uuid": new_uuid(f"{sid}/queued"), "timestamp": "2026-04-27T10:00:04.200Z",
           "attachment": {"type": "queued_command", "prompt": "also add an entry to CHANGELOG.md", "commandMode": mode, "origin": {"kind": origin}}})
    t.tool("toolu_c11_e2", "Edit", {"file_path": "/home/dev/src/ledger/CHANGELOG.md", "old_string": "## Unreleased", "new_string": "## 2.3.0"},
           "2026-04-27T10:00:05.000Z", "msg_11B", (3, 70, 15900, 400))
    t.result("toolu_c11_e2", "The file /home/dev/src/ledger/CHANGELOG.md has been updated.", "2026-04-27T10:00:06.200Z",
             {"filePath": "/home/dev/src/ledger/CHANGELOG.md", "structuredPatch": []})
    t.text("Version bumped to 2.3.0 and CHANGELOG.md updated.", "2026-04-27T10:00:07.000Z", "msg_11C", (3, 25, 16300, 200))
    return t


def test_a_prompt_queued_while_a_tool_ran_is_the_user_s(store, store_path, tmp_path):
    sid = "8cfd6e50-857c-5080-9a7c-5e030246cdd3"
    queued_session(sid).write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    assert rows[sid]["prompts"] == 2
    shown = [(i.kind, i.tool.name if i.tool else i.text) for i in chat_items(store, sid)]
    assert shown == [
        ("prompt", "bump the version to 2.3.0"),
        ("tool", "Edit"),
        ("prompt", "also add an entry to CHANGELOG.md"),
        ("tool", "Edit"),
        ("text", "Version bumped to 2.3.0 and CHANGELOG.md updated."),
    ]
    from kapacitor.server.trace import trace_tree

    prompts = [n for n in trace_tree(store, sid).children if n.kind == "prompt"]
    assert [p.label for p in prompts] == ["bump the version to 2.3.0", "also add an entry to CHANGELOG.md"]
    calls = [c for turn in prompts[1].children for c in turn.children if c.kind == "tool"]
    assert [c.call.name for c in calls] == ["Edit"] and calls[0].call.arguments["file_path"].endswith("CHANGELOG.md")


def test_a_queued_task_notification_is_not_a_prompt(store, store_path, tmp_path):
    sid = "8cfd6e50-0000-4000-8000-000000000011"
    queued_session(sid, origin="task-notification").write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    assert rows[sid]["prompts"] == 1


SHOP_ID = "ff058215-8d3b-5385-83c1-f08a2de2da96"


def test_ide_context_is_not_the_user_s_words(store, store_path, tmp_path):
    t = Transcript(SHOP_ID, cwd="/home/dev/src/shop", entrypoint="claude-vscode")
    opened = "<ide_opened_file>The user opened the file /home/dev/src/shop/cart.py in the IDE. This may or may not be related to the current task.</ide_opened_file>"
    t.user([{"type": "text", "text": opened}, {"type": "text", "text": "why does the cart total ignore discounts?"}], "2026-07-23T09:00:01.000Z")
    t.text("`cart_total` sums raw prices and never applies `item.discount`.", "2026-07-23T09:00:01.500Z", "msg_13A", (3, 70, 9000, 1100))
    selected = ("<ide_selection>The user selected the lines 10 to 12 from /home/dev/src/shop/cart.py:\n    total = sum(i.price for i in items)\n"
                "    return total\n\nThis may or may not be related to the current task.</ide_selection>")
    t.user([{"type": "text", "text": selected}, {"type": "text", "text": "move this into a Cart.total() method"}], "2026-07-23T09:00:02.000Z")
    t.text("Moved the sum into `Cart.total()` and applied discounts there.", "2026-07-23T09:00:03.000Z", "msg_13B", (3, 60, 10100, 300))
    # One more input: context inline in a plain string, and a message that is only context.
    t.user("<system-reminder>The user changed mode.</system-reminder>\nand add a test for it", "2026-07-23T09:00:04.000Z")
    t.user([{"type": "text", "text": opened}], "2026-07-23T09:00:05.000Z")
    t.write(tmp_path / "p" / "-home-dev-src-shop" / f"{SHOP_ID}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    row = rows[SHOP_ID]
    assert row["title"] == "why does the cart total ignore discounts?"
    assert row["prompts"] == 3
    items = chat_items(store, SHOP_ID)
    prompts = [i.text for i in items if i.kind == "prompt"]
    assert prompts == ["why does the cart total ignore discounts?", "move this into a Cart.total() method", "and add a test for it"]
    first = next(i for i in items if i.kind == "prompt")
    assert first.detail["injected"][0]["kind"] == "ide_opened_file" and "cart.py" in first.detail["injected"][0]["text"]


# --- 6: damaged lines give up their records (field case 12) --------------------


def spliced_session(sid: str) -> tuple[Transcript, list[str]]:
    t = Transcript(sid)
    t.user("list the open TODOs in src/", "2026-07-19T16:00:01.000Z")
    t.add({"type": "attachment", "uuid": new_uuid("att"), "timestamp": "2026-07-19T16:00:01.500Z",
           "attachment": {"type": "file", "filename": "src/todo.py", "content": "x" * 40}})
    t.last_uuid = t.records[0]["uuid"]
    t.text("There are 3 TODOs: src/a.py:10, src/b.py:4, src/c.py:22.", "2026-07-19T16:00:02.000Z", "msg_12A", (3, 60, 10000, 800))
    t.user("fix the first one", "2026-07-19T16:00:04.000Z")
    t.tool("toolu_c12_e", "Edit", {"file_path": "/home/dev/src/ledger/src/a.py", "old_string": "# TODO: clamp", "new_string": "value = max(0, value)"},
           "2026-07-19T16:00:05.000Z", "msg_12B", (3, 70, 10800, 300))
    t.result("toolu_c12_e", "The file /home/dev/src/ledger/src/a.py has been updated.", "2026-07-19T16:00:06.000Z",
             {"filePath": "/home/dev/src/ledger/src/a.py", "structuredPatch": []})
    t.text("Clamped the value in src/a.py.", "2026-07-19T16:00:07.000Z", "msg_12C", (3, 20, 11100, 150))
    lines = t.lines()
    # line 2: the attachment cut off, the assistant record right after it;
    # line 4: the Edit call and its result spliced '}{'; line 5: NUL padding.
    damaged = [lines[0], lines[1][:120] + lines[2], lines[3], lines[4] + lines[5], "\x00" * 64 + lines[6]]
    return t, damaged


def test_damaged_lines_give_up_their_records(store, store_path, tmp_path):
    sid = "94679c5f-ec0e-5ee6-ac4f-1a4c703d4462"
    _, damaged = spliced_session(sid)
    path = tmp_path / "p" / LEDGER / f"{sid}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(line + "\n" for line in damaged))
    rows, summary = imported(store, store_path, tmp_path / "p")
    row = rows[sid]
    assert row["prompts"] == 2
    assert row["tokens"] == {SONNET: tokens(9, 150, 31900, 1250, 3)}
    assert row["cost_usd"] == pytest.approx(0.0165345)
    assert (row["tool_calls_by_tool"], row["files_changed"]) == ({"Edit": 1}, ["/home/dev/src/ledger/src/a.py"])
    warnings = [str(w) for w in summary.warnings]
    assert [w.split(": ", 1)[0] for w in warnings] == [f"{path}:2", f"{path}:2", f"{path}:4", f"{path}:5"]
    assert "cut-off fragment" in warnings[0] and "unknown record" in warnings[0]
    assert "'}{'" in warnings[2] and "64 NUL" in warnings[3]
    unknown = [e for e in store.read_all() if e.type == "UnknownRecordReceived"]
    assert len(unknown) == 1 and unknown[0].metadata["raw"] == damaged[1][:120]


def test_three_records_spliced_with_padding_between_are_all_recovered(store, store_path, tmp_path):
    sid = "94679c5f-0000-4000-8000-000000000012"
    t, _ = spliced_session(sid)
    lines = t.lines()
    path = tmp_path / "p" / LEDGER / f"{sid}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(lines[0] + "\n" + lines[1] + lines[2] + "\x00\x00" + lines[3] + "\n" + "\n".join(lines[4:]) + "\n")
    rows, summary = imported(store, store_path, tmp_path / "p")
    assert rows[sid]["prompts"] == 2 and rows[sid]["tokens"][SONNET]["requests"] == 3
    assert len(summary.warnings) == 2 and not any(e.type == "UnknownRecordReceived" for e in store.read_all())


# --- 3: titles belong to what they describe ------------------------------------


def test_a_summary_titles_the_session_its_leaf_is_in(store, store_path, tmp_path):
    a_id, b_id, c_id = (f"5e55104{n}-0000-4000-8000-000000000003" for n in "abc")
    a = Transcript(a_id)
    a.user("tidy the importer", "2026-07-01T09:00:00.000Z")
    leaf = a.text("Tidied.", "2026-07-01T09:00:01.000Z", "msg_3A", (1, 1, 1, 1))
    a.write(tmp_path / "p" / LEDGER / f"{a_id}.jsonl")
    c = Transcript(c_id)
    c.add({"type": "ai-title", "aiTitle": "Importer cleanup, own title", "timestamp": "2026-07-01T08:00:00.000Z"}, chain=False)
    c.user("clean the importer", "2026-07-01T08:00:01.000Z")
    c_leaf = c.text("Cleaned.", "2026-07-01T08:00:02.000Z", "msg_3C", (1, 1, 1, 1))
    c.write(tmp_path / "p" / LEDGER / f"{c_id}.jsonl")
    b = Transcript(b_id)
    b.records.append({"type": "summary", "summary": "Importer tidy-up", "leafUuid": leaf["uuid"]})
    b.records.append({"type": "summary", "summary": "Not C's title", "leafUuid": c_leaf["uuid"]})
    b.user("now the exporter", "2026-07-02T09:00:00.000Z")
    b.write(tmp_path / "p" / LEDGER / f"{b_id}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    assert rows[a_id]["title"] == "Importer tidy-up"
    assert rows[b_id]["title"] == "now the exporter"
    assert rows[c_id]["title"] == "Importer cleanup, own title"
    import sqlite3

    conn = sqlite3.connect(store_path)
    try:  # the timeline's table follows (it lists the title)
        listed = dict(conn.execute("SELECT session_id, title FROM repository_sessions"))
    finally:
        conn.close()
    assert (listed[a_id], listed[b_id]) == ("Importer tidy-up", "now the exporter")


# --- 7: images and documents are shown ------------------------------------------

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_images_show_as_sanitised_lazy_img_and_documents_as_type_and_size(store, store_path, tmp_path):
    from kapacitor.server.chat import render_chat

    sid = "1a6e0000-0000-4000-8000-000000000007"
    t = Transcript(sid)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}}
    svg = {"type": "image", "source": {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zz48c2NyaXB0Pg=="}}
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x" * 300}}
    t.user([{"type": "text", "text": "what is in this screenshot?"}, image, pdf], "2026-08-01T10:00:00.000Z")
    t.tool("toolu_img", "Read", {"file_path": "/home/dev/src/ledger/logo.png"}, "2026-08-01T10:00:01.000Z", "msg_7I", (1, 1, 1, 1))
    t.result("toolu_img", [image, svg], "2026-08-01T10:00:02.000Z")
    t.write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    imported(store, store_path, tmp_path / "p")
    items = chat_items(store, sid)
    html = str(render_chat(sid, items))
    assert html.count(f'loading="lazy" decoding="async" src="data:image/png;base64,{PNG_1PX}"') == 2
    assert "document application/pdf, 1.8 KB" in html
    assert "image image/svg+xml" in html and "data:image/svg" not in html
    assert "[image block]" not in html and "PHN2Zz48c2NyaXB0Pg" not in html
    read = next(i for i in items if i.tool and i.tool.name == "Read")
    assert read.tool.result == "[image image/png, 0.1 KB]\n[image image/svg+xml, 0.0 KB]"
    # The JSON twin describes the media; it carries no base64.
    assert PNG_1PX not in json.dumps([i.as_json() for i in items])


def test_an_image_over_the_cap_is_described_not_shown(store, store_path, tmp_path, monkeypatch):
    from kapacitor.server.chat import render_chat
    from kapacitor.server.render import media

    monkeypatch.setattr(media, "IMAGE_CAP", 10)
    sid = "1a6e0000-0000-4000-8000-000000000008"
    t = Transcript(sid)
    t.user([{"type": "text", "text": "look"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX}}],
           "2026-08-01T10:00:00.000Z")
    t.write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    imported(store, store_path, tmp_path / "p")
    html = str(render_chat(sid, chat_items(store, sid)))
    assert "<img" not in html and "image image/png, 0.1 KB" in html


def test_every_form_of_human_input_counts_and_injected_context_does_not(store, store_path, tmp_path):
    sid = "b0a5e000-0000-4000-8000-000000000005"
    t = Transcript(sid)
    t.user("<bash-input>git status</bash-input>", "2026-08-02T10:00:00.000Z")
    t.user("<bash-stdout>clean</bash-stdout><bash-stderr></bash-stderr>", "2026-08-02T10:00:01.000Z")
    t.user("<command-name>/review</command-name>\n<command-message>review</command-message>\n<command-args>pr 12</command-args>",
           "2026-08-02T10:00:02.000Z")
    t.user("<local-command-caveat>Caveat: the messages below were generated by the user while running local commands.</local-command-caveat>",
           "2026-08-02T10:00:03.000Z", isMeta=True)
    t.user("<user-prompt-submit-hook>lint passed</user-prompt-submit-hook>", "2026-08-02T10:00:04.000Z")
    t.user("ship it", "2026-08-02T10:00:05.000Z")
    t.add({"type": "attachment", "uuid": new_uuid(f"{sid}/q"), "timestamp": "2026-08-02T10:00:06.000Z",
           "attachment": {"type": "queued_command", "prompt": "npm test", "commandMode": "bash", "origin": {"kind": "human"}}})
    t.write(tmp_path / "p" / LEDGER / f"{sid}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")
    row = rows[sid]
    assert (row["prompts"], row["commands"], row["title"]) == (3, 1, "ship it")
    kinds = [i.kind for i in chat_items(store, sid)]
    assert kinds == ["bash_input", "bash_output", "command", "meta", "hook_output", "prompt", "bash_input"]


def test_the_session_page_and_json_name_the_chain(store, store_path, tmp_path):
    import asyncio

    import httpx

    from kapacitor.server.app import create_app

    a = csv_session(A_ID)
    a.write(tmp_path / "p" / LEDGER / f"{A_ID}.jsonl")
    forked(a, B_ID).write(tmp_path / "p" / LEDGER / f"{B_ID}.jsonl")
    import_paths(store, [tmp_path / "p"])
    app = create_app(f"sqlite://{store_path}", run_projections=False)
    app.state.runner.catch_up()

    async def fetch(url: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            return await client.get(url)

    try:
        b = asyncio.run(fetch(f"/sessions/{B_ID}.json")).json()
        assert (b["continued_from"], b["prompts"], b["tokens"][SONNET]["requests"]) == ([A_ID], 1, 1)
        assert asyncio.run(fetch(f"/sessions/{A_ID}.json")).json()["continued_in"] == [B_ID]
        page = asyncio.run(fetch(f"/sessions/{B_ID}")).text
        assert f'continued from <a href="/sessions/{A_ID}">{A_ID[:8]}</a>' in page
        assert f'<details class="inherited"><summary>3 items of history from session <a href="/sessions/{A_ID}">' in page
        assert f'continued in <a href="/sessions/{B_ID}">' in asyncio.run(fetch(f"/sessions/{A_ID}")).text
        chat = asyncio.run(fetch(f"/sessions/{B_ID}/chat.json")).json()
        assert [c.get("detail", {}).get("inherited_from") for c in chat][-2:] == [None, None]
        trace = asyncio.run(fetch(f"/sessions/{B_ID}/trace.json")).json()
        assert [p["label"] for p in trace["children"]] == ["now add a JSON export next to it"]
    finally:
        app.state.close()


def test_a_later_summary_retitles_the_earlier_session_in_the_timeline_too(store, store_path, tmp_path):
    import sqlite3

    a_id, b_id = "5e55104d-0000-4000-8000-000000000003", "5e55104e-0000-4000-8000-000000000003"
    a = Transcript(a_id)
    a.user("tidy the importer", "2026-07-01T09:00:00.000Z")
    leaf = a.text("Tidied.", "2026-07-01T09:00:01.000Z", "msg_3D", (1, 1, 1, 1))
    a.write(tmp_path / "p" / LEDGER / f"{a_id}.jsonl")
    assert imported(store, store_path, tmp_path / "p")[0][a_id]["title"] == "tidy the importer"
    b = Transcript(b_id)
    b.records.append({"type": "summary", "summary": "Importer tidy-up", "leafUuid": leaf["uuid"]})
    b.user("now the exporter", "2026-07-02T09:00:00.000Z")
    b.write(tmp_path / "p" / LEDGER / f"{b_id}.jsonl")
    rows, _ = imported(store, store_path, tmp_path / "p")  # a later import, a later batch
    assert (rows[a_id]["title"], rows[b_id]["title"]) == ("Importer tidy-up", "now the exporter")
    conn = sqlite3.connect(store_path)
    try:
        listed = dict(conn.execute("SELECT session_id, title FROM repository_sessions"))
    finally:
        conn.close()
    assert listed[a_id] == "Importer tidy-up"
