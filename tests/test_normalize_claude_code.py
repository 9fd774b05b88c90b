"""Record shapes the recorded samples lack: older client versions, images, MCP,
API errors. Handled by their shape; anything unknown is kept."""

from __future__ import annotations

import json
import subprocess

import pytest

from kapacitor.capture.importer import import_paths
from kapacitor.normalize.claude_code import Normalizer, Source
from kapacitor.projections.session_summary import SessionSummaries

SID = "11111111-2222-3333-4444-555555555555"


def rec(**fields):
    base = {
        "sessionId": SID,
        "timestamp": "2025-06-01T10:00:00Z",
        "version": "1.0.30",
        "cwd": "/w",
        "gitBranch": "dev",
    }
    return {**base, **fields}


def feed(*records):
    normalizer = Normalizer(Source(SID))
    out, offset = [], 0
    for n, record in enumerate(records):
        line = json.dumps(record).encode()
        out.extend(normalizer.feed(line, offset, n))
        offset += len(line) + 1
    return out


def types(routed):
    return [event.type for _, event in routed]


def test_old_summary_record_titles_the_session():
    routed = feed({"type": "summary", "summary": "Fix the flaky test", "leafUuid": "l1"})
    [(_, event)] = routed
    assert (event.type, event.data["title"], event.data["source"]) == (
        "SessionTitled",
        "Fix the flaky test",
        "summary",
    )


def test_api_errors_in_both_old_shapes():
    routed = feed(
        rec(
            type="system",
            subtype="api_error",
            uuid="s1",
            level="error",
            error={"status": 529, "message": "Overloaded"},
            retryAttempt=2,
            retryInMs=4000,
        ),
        rec(
            type="assistant",
            uuid="a1",
            isApiErrorMessage=True,
            message={
                "id": "m0",
                "model": "<synthetic>",
                "role": "assistant",
                "content": [{"type": "text", "text": "API Error: 500"}],
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        ),
    )
    errors = [e for _, e in routed if e.type == "ApiErrorOccurred"]
    assert [e.data["retry_attempt"] for e in errors] == [2, 0]
    assert "Overloaded" in errors[0].data["error"] and errors[1].data["error"] == "API Error: 500"
    assert all("$usage" not in e.metadata for e in errors)


def test_task_tool_sidechain_in_the_main_file_and_todowrite_multiedit():
    routed = feed(
        rec(
            type="assistant",
            uuid="a1",
            requestId="r1",
            message={
                "id": "m1",
                "model": "claude-3-7-sonnet-20250219",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "Task",
                        "input": {"description": "look", "prompt": "find it"},
                    },
                ],
                "usage": {"input_tokens": 5, "output_tokens": 7},
            },
        ),
        rec(
            type="user",
            uuid="u-side",
            isSidechain=True,
            parentUuid=None,
            message={"role": "user", "content": "find it"},
        ),
        rec(
            type="assistant",
            uuid="a2",
            requestId="r2",
            message={
                "id": "m2",
                "model": "claude-3-7-sonnet-20250219",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t2",
                        "name": "MultiEdit",
                        "input": {"file_path": "/w/a.py", "edits": []},
                    },
                    {
                        "type": "tool_use",
                        "id": "t3",
                        "name": "TodoWrite",
                        "input": {"todos": [{"content": "x", "status": "pending"}]},
                    },
                    {
                        "type": "tool_use",
                        "id": "t4",
                        "name": "mcp__github__get_issue",
                        "input": {"n": 1},
                    },
                ],
                "usage": {"input_tokens": 1, "output_tokens": 2},
            },
        ),
        rec(
            type="user",
            uuid="u2",
            message={
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t2", "content": "ok"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t3",
                        "content": [{"type": "text", "text": "todos saved"}],
                    },
                ],
            },
        ),
        rec(type="progress", uuid="p1", data={"type": "hook_progress"}),
    )
    streams = {stream for stream, _ in routed}
    # An inline sidechain (before 2.0) is a subagent named after its first record.
    assert any(s.startswith(f"AgentSubsession-{SID}-sidechain-") for s in streams)
    calls = [
        c
        for _, e in routed
        if e.type == "AssistantToolCallsGenerated"
        for c in e.data["tool_calls"]
    ]
    assert [(c["tool_name"], c["tool_kind"]) for c in calls] == [
        ("Task", "function"),
        ("MultiEdit", "function"),
        ("TodoWrite", "function"),
        ("mcp__github__get_issue", "mcp"),
    ]
    results = [e for _, e in routed if e.type == "ToolResultReceived"]
    assert [r.data["result"] for r in results] == ["ok", "todos saved"]
    assert types(routed)[-1] == "ClientStateRecorded"


def test_images_slash_commands_interrupts_and_unknown_blocks():
    routed = feed(
        rec(
            type="user",
            uuid="u1",
            message={
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this picture?"},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "aGVsbG8gd29ybGQh",
                        },
                    },
                ],
            },
        ),
        rec(
            type="user",
            uuid="u2",
            message={
                "role": "user",
                "content": "<command-name>/review</command-name>\n<command-message>review</command-message>\n<command-args>pr 12</command-args>",
            },
        ),
        rec(
            type="user",
            uuid="u3",
            message={
                "role": "user",
                "content": [{"type": "text", "text": "[Request interrupted by user for tool use]"}],
            },
        ),
        rec(
            type="assistant",
            uuid="a1",
            message={"id": "m1", "model": "claude-x", "content": [{"type": "hologram", "data": 1}]},
        ),
    )
    events = [e for _, e in routed]
    image_msg = next(e for e in events if e.type == "UserMessageReceived")
    assert image_msg.data["extensions"]["claude_code"]["images"] == [
        {"type": "image", "media_type": "image/png", "bytes": 12, "block": 1}
    ]
    command = [e for e in events if e.type == "UserMessageReceived"][1].data["extensions"][
        "claude_code"
    ]
    assert (command["kind"], command["command"], command["args"]) == ("command", "/review", "pr 12")
    assert [e.data["kind"] for e in events if e.type == "InterruptIssued"] == ["user_interrupt"]
    assert events[-1].type == "UnknownRecordReceived" and "hologram" in events[-1].data["reason"]


def test_streamed_partial_usage_is_counted_once_at_its_largest():
    partial = {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 100}
    full = {"input_tokens": 10, "output_tokens": 40, "cache_read_input_tokens": 100}
    routed = feed(
        rec(
            type="assistant",
            uuid="a1",
            requestId="r1",
            message={
                "id": "m1",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": "hi"}],
                "usage": partial,
            },
        ),
        rec(
            type="assistant",
            uuid="a2",
            requestId="r1",
            message={
                "id": "m1",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}],
                "usage": full,
            },
        ),
    )
    from kapacitor.events import RecordedEvent

    summaries = SessionSummaries()
    for n, (stream, e) in enumerate(routed):
        summaries.apply(RecordedEvent(e.id, stream, e.type, n, n + 1, e.data, e.metadata, ""))
    tokens = summaries.sessions[SID].tokens()["claude-sonnet-4-5"]
    assert (tokens["requests"], tokens["output_tokens"], tokens["input_tokens"]) == (1, 40, 10)


def test_session_started_resolves_the_github_repository_of_a_real_checkout(store, tmp_path):
    repo = tmp_path / "widgets"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "remote", "add", "origin", "git@github.com:acme/widgets.git"],
        check=True,
    )
    path = tmp_path / "projects" / "-x" / f"{SID}.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            rec(type="user", uuid="u1", cwd=str(repo), message={"role": "user", "content": "hi"})
        )
        + "\n"
    )
    import_paths(store, [path])
    [started] = [e for e in store.read_all() if e.type == "SessionStarted"]
    ext = started.data["extensions"]["claude_code"]
    assert (ext["repository"], ext["cwd"], ext["git_branch"]) == ("acme/widgets", str(repo), "dev")


@pytest.mark.parametrize(
    "text",
    [  # what Claude Code 2.1.197 answers in -p mode without permission (seen with the real client)
        "rm in '/w/archive' was blocked. For security, Claude Code may only remove files from the allowed working directories for this session: '/w'.",
        "This command requires approval",
        "Claude requested permissions to use WebFetch, but you haven't granted it yet.",
    ],
)
def test_permission_denials_in_the_clients_words_become_interrupts(text):
    routed = feed(rec(type="user", uuid="u1", message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": text, "is_error": True}]}))
    resolved = [e for _, e in routed if e.type == "InterruptResolved"]
    assert [e.data["outcome"] for e in resolved] == ["denied"]


def test_an_ordinary_failure_is_not_a_denial():
    routed = feed(rec(type="user", uuid="u1", message={"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "Exit code 1\ncat: x: No such file or directory", "is_error": True}]}))
    assert not [e for _, e in routed if e.type.startswith("Interrupt")]
