"""Newer client records in small made-up transcripts: what no recording has yet
(a record type we do not know, a refused slash command, two client processes)."""

from __future__ import annotations

import json

from kapacitor.capture.importer import import_paths
from kapacitor.projections.session_summary import SessionSummaries
from kapacitor.server.chat import chat_items

SID = "11111111-2222-4333-8444-555555555555"


def write(tmp_path, records: list[dict]):
    folder = tmp_path / "projects" / "-home-dev-x"
    folder.mkdir(parents=True)
    base = {"sessionId": SID, "cwd": "/home/dev/x", "version": "2.1.400", "timestamp": "2026-11-29T10:00:00Z"}
    lines = [json.dumps(base | {"uuid": f"u{i}"} | r) for i, r in enumerate(records)]
    (folder / f"{SID}.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "projects"


def summary_of(store):
    sessions = SessionSummaries()
    for event in store.read_all():
        sessions.apply(event)
    return sessions.sessions[SID]


PROMPT = {"type": "user", "message": {"role": "user", "content": "hello"}}


def test_an_unknown_record_type_warns_once_per_import_with_a_count(tmp_path, store):
    records = [PROMPT, *({"type": "brand-new-state", "n": i} for i in range(3)), {"type": "other-new", "message": {"content": "hi"}}]
    summary = import_paths(store, [write(tmp_path, records)])
    messages = sorted(w.message for w in summary.warnings)
    assert messages == ["kept as unknown record: unknown record type 'brand-new-state' (3 such records)",
                        "kept as unknown record: unknown record type 'other-new' (1 such record)"]
    assert [w.line for w in summary.warnings if "brand-new" in w.message] == [2]  # where the first one is
    assert sum(e.type == "UnknownRecordReceived" for e in store.read_all()) == 4  # all kept
    notices = [i for i in chat_items(store, SID) if i.kind == "notice"]
    assert [n.text for n in notices] == ["unknown record type 'other-new'"]  # the one with content


def test_a_refused_slash_command_counts_as_a_command(tmp_path, store):
    records = [PROMPT,
               {"type": "system", "subtype": "local_command", "content": "/login", "level": "info"},
               {"type": "system", "subtype": "local_command", "level": "info",
                "content": "<local-command-stdout>/login isn't available in this environment.</local-command-stdout>",
                "commandOutcome": {"kind": "unavailable_headless"}}]
    import_paths(store, [write(tmp_path, records)])
    summary = summary_of(store)
    assert (summary.commands, summary.commands_not_run, summary.prompts) == (1, 1, 1)
    [command] = [i for i in chat_items(store, SID) if i.kind == "command"]
    assert command.detail == {"command": "/login", "not_run": True}


def test_the_client_cost_of_each_process_is_summed(tmp_path, store):
    def cost(start: int, total: float, out: int) -> dict:
        usage = {"inputTokens": 1, "outputTokens": out, "cacheReadInputTokens": 0, "cacheCreationInputTokens": 0, "costUSD": total}
        return {"type": "cost-state", "startTime": start, "totalCostUSD": total, "modelUsage": {"claude-sonnet-4-5": usage}}

    # Totals grow within a process; a new process (another start time) starts afresh.
    import_paths(store, [write(tmp_path, [PROMPT, cost(1, 0.1, 10), cost(1, 0.2, 20), cost(2, 0.05, 5)])])
    reported = summary_of(store).client_reported()
    assert reported["cost_usd"] == 0.25
    assert reported["tokens"]["claude-sonnet-4-5"]["output_tokens"] == 25


def test_every_client_record_type_has_a_home_even_with_odd_fields(tmp_path, store):
    records = [PROMPT, {"type": "file-history-delta", "messageId": "m1", "delta": {"a.py": {"version": 2}}},
               {"type": "tools-used", "tools": ["Bash"]}, {"type": "atis-latch", "atis": ""},
               {"type": "api-request", "id": "r1", "params": "not an object"}, {"type": "api-request-shape", "shape": None},
               {"type": "api-request-blob", "hash": "h", "message": {"content": "x" * 5000}}, {"type": "cost-state"}]
    summary = import_paths(store, [write(tmp_path, records)])
    assert summary.warnings == []
    kinds = [e.data["kind"] for e in store.read_all() if e.type == "ClientStateRecorded"]
    assert kinds == ["file-history-delta", "tools-used", "atis-latch", "api-request", "api-request-shape", "api-request-blob", "cost-state"]
    assert not [i for i in chat_items(store, SID) if i.kind == "notice"]
    assert summary_of(store).client_reported()["cost_usd"] == 0
