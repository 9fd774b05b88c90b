"""The tool registry and the diff renderer, on calls shaped like the client's."""

from __future__ import annotations

from markupsafe import Markup

from kapacitor.server.chat import SubagentRun, ToolCall
from kapacitor.server.render.diff import diff_text
from kapacitor.server.render.tools import REGISTRY, generic, render_tool, summary


def call(name: str, arguments: dict, result: str | None = "ok", **fields) -> ToolCall:
    return ToolCall("toolu_1", name, arguments, result=result, **fields)


def test_registry_covers_the_named_tools():
    assert set(REGISTRY) == {
        "Bash",
        "Read",
        "Edit",
        "MultiEdit",
        "Write",
        "TodoWrite",
        "TaskCreate",
        "TaskUpdate",
        "Agent",
        "Task",
    }


def test_generic_shows_pretty_json_input_and_text_output():
    html = render_tool(call("Grep", {"pattern": "def add", "path": "src"}, "src/app.py:1:def add"))
    assert (
        '<span class="nt">"pattern"</span>' in html and '<span class="s2">"def add"</span>' in html
    )
    assert "src/app.py:1:def add" in html
    assert render_tool(call("mcp__x__y", {"a": 1})) == generic(
        call("mcp__x__y", {"a": 1}), Markup("")
    )


def test_pending_and_error_results():
    assert "no result recorded" in render_tool(call("Bash", {"command": "sleep 1"}, None))
    assert '<div class="result error">' in render_tool(
        call("Bash", {"command": "false"}, "Exit code 1", is_error=True)
    )


def test_read_without_line_numbers_falls_back_to_text():
    html = render_tool(call("Read", {"file_path": "a.png"}, "[image block]"))
    assert '<pre class="output">[image block]</pre>' in html


def test_write_of_a_new_file_is_all_additions():
    text = diff_text("Write", {"file_path": "/r/new.py", "content": "a\nb\n"}, {"type": "create"})
    assert text == "--- /r/new.py\n+++ /r/new.py\n@@ -0,0 +1,2 @@\n+a\n+b\n"


def test_write_over_a_file_diffs_against_the_original():
    text = diff_text(
        "Write",
        {"file_path": "f", "content": "a\nc\n"},
        {"type": "update", "originalFile": "a\nb\n"},
    )
    assert "-b\n+c\n" in text


def test_multiedit_diffs_every_edit():
    edits = [{"old_string": "x = 1", "new_string": "x = 2"}, {"old_string": "y", "new_string": "z"}]
    text = diff_text("MultiEdit", {"file_path": "m.py", "edits": edits}, None)
    assert ["-x = 1", "+x = 2", "-y", "+z"] == [
        line for line in text.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")
    ]


def test_failed_edit_shows_the_intended_diff_and_the_error():
    html = render_tool(
        call(
            "Edit",
            {"file_path": "f", "old_string": "a", "new_string": "b"},
            "String not found",
            is_error=True,
        )
    )
    assert '<span class="gd">-a</span>' in html and "String not found" in html


def test_task_tools_and_todos_as_checklists():
    assert (
        summary(call("TaskUpdate", {"taskId": "3", "status": "in_progress"})) == "#3 → in_progress"
    )
    html = render_tool(call("TaskUpdate", {"taskId": "3", "status": "in_progress"}))
    assert '<li class="todo todo-in_progress"><span class="mark">◐</span> Task #3</li>' in html
    html = render_tool(call("TaskCreate", {"subject": "Ship it", "description": "all of it"}))
    assert "Ship it" in html and "all of it" in html


def test_agent_nests_the_subagent_conversation_and_shows_its_answer():
    run = SubagentRun("a1", "Explore", "look around")
    html = render_tool(
        call(
            "Agent",
            {"description": "look around", "prompt": "go", "subagent_type": "Explore"},
            "**found** it",
            subagent=run,
        ),
        Markup("<p>child</p>"),
    )
    assert '<span class="agent-type">Explore</span> look around' in html
    assert '<div class="subagent"><p>child</p></div>' in html
    assert "<strong>found</strong>" in html
