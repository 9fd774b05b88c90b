"""What a session planned, did and broke: recap, errors and the plan check.

All three read the session's chat (``server/chat.chat_items``: every tool call
paired with its result, subagents inlined under the call that started them), so
the pairing rules stay in one place.

- ``recap``: the plan, the files written and edited (with how often), the test
  runs with their result, the tool errors; ``transcript`` is the markdown
  transcript of ``--full``.
- ``errors``: every failed tool call: tool, error text, chat position, link.
- ``plan_check``: the plan the session had (plan mode's ``ExitPlanMode`` plan,
  ``TodoWrite`` lists, ``TaskCreate``/``TaskUpdate`` tasks, a plan file written
  under ``.claude/plans/`` or named ``PLAN.md``) beside what it did, and what is left.
- ``chain``: a session and the ones before it on the same branch of the same
  repository by the same user (a heuristic: Claude Code keeps the id across a
  resume, so a chain is a piece of work split over several sessions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kapacitor.memory import gate
from kapacitor.memory.search import chat_link
from kapacitor.projections.repositories import group_of
from kapacitor.projections.session_summary import FILE_TOOLS
from kapacitor.server.chat import ChatItem, ToolCall, chat_items
from kapacitor.store.base import EventStore
from kapacitor.store.readdb import ReadDb

TEST_COMMAND = re.compile(
    r"(?:^|[\s;&|(])(?:python3? -m (?:pytest|unittest)|pytest|tox|nox|go test|cargo test|(?:npm|yarn|pnpm|bun)(?: run)? test"
    r"|make (?:test|check)\S*|jest|vitest|rspec|mvn test|gradle\S* test|phpunit|ctest|dotnet test|\./scripts/test)\b"
)
ERROR_CHARS = 500
PLAN_FILE = re.compile(r"(?:/\.claude/plans/[^/]+\.md|(?:^|/)PLAN\.md)$", re.I)
CHAIN_LIMIT = 10


class SessionNotFound(LookupError):
    """No such session, or one the viewer may not see (the message says which id)."""


@dataclass
class PlanItem:
    text: str
    status: str = "pending"  # pending, in_progress, completed
    source: str = ""  # TodoWrite, Task, ExitPlanMode, plan file


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)
    text: str = ""  # a plan written out (plan mode, plan file)
    sources: list[str] = field(default_factory=list)

    @property
    def left(self) -> list[PlanItem]:
        return [i for i in self.items if i.status != "completed"]

    def as_json(self) -> dict[str, Any]:
        return {"items": [vars(i) for i in self.items], "text": self.text, "sources": self.sources,
                "left": [vars(i) for i in self.left]}


def session_row(conn: ReadDb, viewer: gate.Viewer, session_id: str) -> dict[str, Any]:
    """The session's summary row; ``SessionNotFound`` when missing or not visible."""
    found = conn.execute("SELECT row FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
    if not found or not gate.may_see(conn, viewer, session_id):
        raise SessionNotFound(f"no session {session_id!r}")
    row: dict[str, Any] = json.loads(found[0])
    row["repo"] = group_of(row)[0]
    return row


def walk(items: list[ChatItem], agent: str = "") -> Iterator[tuple[int, ChatItem, str]]:
    """(chat position, item, subagent id or "") for every item, subagents' nested ones too."""
    for position, item in enumerate(items):
        yield position, item, agent
        run = item.tool.subagent if item.tool else None
        if run is not None:
            for _, child, sub in walk(run.items, run.agent_id):
                yield position, child, sub


def tool_calls(items: list[ChatItem]) -> Iterator[tuple[int, ChatItem, ToolCall, str]]:
    for position, item, agent in walk(items):
        if item.tool is not None:
            yield position, item, item.tool, agent


def plan_of(items: list[ChatItem]) -> Plan:
    plan = Plan()
    todos: list[PlanItem] = []
    tasks: dict[str, PlanItem] = {}
    for _, _, call, _ in tool_calls(items):
        args = call.arguments
        if call.name == "TodoWrite" and isinstance(args.get("todos"), list):
            todos = [PlanItem(str(t.get("content", "")), str(t.get("status", "pending")), "TodoWrite")
                     for t in args["todos"] if isinstance(t, dict)]
        elif call.name == "TaskCreate" and not call.is_error:
            task_id = _created_task_id(call) or str(len(tasks) + 1)
            tasks[task_id] = PlanItem(str(args.get("subject", "")), "pending", "Task")
        elif call.name == "TaskUpdate" and str(args.get("taskId")) in tasks and args.get("status"):
            tasks[str(args["taskId"])].status = str(args["status"])
        elif call.name == "ExitPlanMode" and args.get("plan"):
            plan.text, plan.sources = str(args["plan"]), [*plan.sources, "ExitPlanMode"]
        elif call.name in FILE_TOOLS and PLAN_FILE.search(str(args.get(FILE_TOOLS[call.name], ""))) and args.get("content"):
            plan.text, plan.sources = str(args["content"]), [*plan.sources, "plan file"]
    plan.items = todos + list(tasks.values())
    plan.sources += sorted({i.source for i in plan.items})
    if plan.text and not plan.items:  # a written plan's checklist is its items
        plan.items = [PlanItem(m.group(2).strip(), "completed" if m.group(1).strip() else "pending", plan.sources[0])
                      for m in re.finditer(r"^\s*[-*]\s+\[([ xX]?)\]\s+(.+)$", plan.text, re.M)]
    return plan


def _created_task_id(call: ToolCall) -> str:
    task = call.structured.get("task") if isinstance(call.structured, dict) else None
    if isinstance(task, dict) and task.get("id"):
        return str(task["id"])
    found = re.search(r"Task #(\w+) created", call.result or "")
    return found.group(1) if found else ""


def files_touched(items: list[ChatItem]) -> list[dict[str, Any]]:
    """Per file, successful writes and edits, in first-touched order."""
    files: dict[str, dict[str, Any]] = {}
    for _, _, call, _ in tool_calls(items):
        path = call.arguments.get(FILE_TOOLS.get(call.name, ""), "")
        if not path or call.is_error or call.result is None:
            continue
        entry = files.setdefault(str(path), {"path": str(path), "writes": 0, "edits": 0})
        entry["writes" if call.name == "Write" else "edits"] += 1
    return list(files.values())


def test_runs(session_id: str, items: list[ChatItem]) -> list[dict[str, Any]]:
    runs = []
    for position, item, call, agent in tool_calls(items):
        command = str(call.arguments.get("command", "")) if call.name == "Bash" else ""
        if command and TEST_COMMAND.search(command):
            outcome = "running" if call.result is None else ("failed" if call.is_error else "passed")
            runs.append({"command": command, "result": outcome, "position": position, "timestamp": call.started,
                         "agent": agent, "link": chat_link(session_id, item.id)})
    return runs


def errors(session_id: str, items: list[ChatItem]) -> list[dict[str, Any]]:
    """Every failed tool call, in chat order."""
    found = []
    for position, item, call, agent in tool_calls(items):
        if call.is_error:
            found.append({
                "session_id": session_id, "tool": call.name, "input": _brief_input(call),
                "error": (call.result or "").strip()[:ERROR_CHARS], "position": position,
                "timestamp": call.finished or call.started, "agent": agent, "call_id": call.call_id,
                "link": chat_link(session_id, item.id),
            })
    return found


def _brief_input(call: ToolCall) -> str:
    args = call.arguments
    for key in ("command", "file_path", "notebook_path", "pattern", "url", "description", "prompt"):
        if args.get(key):
            return str(args[key])[:200]
    return json.dumps(args, ensure_ascii=False)[:200]


def recap(conn: ReadDb, store: EventStore, viewer: gate.Viewer, session_id: str) -> dict[str, Any]:
    """The session's plan, files written and edited, test runs, errors and prompts."""
    row = session_row(conn, viewer, session_id)
    items = chat_items(store, session_id)
    return {
        "session_id": session_id, "title": row.get("title", ""), "repo": row["repo"], "branch": row.get("branch", ""),
        "user": row.get("user", ""), "started": row.get("started", ""), "ended": row.get("ended", ""),
        "prompts": [i.text for i in items if i.kind == "prompt"],
        "plan": plan_of(items).as_json(), "files": files_touched(items), "tests": test_runs(session_id, items),
        "errors": len(errors(session_id, items)), "final_text": next((i.text for i in reversed(items) if i.kind == "text"), ""),
        "link": chat_link(session_id, ""),
    }


def session_errors(conn: ReadDb, store: EventStore, viewer: gate.Viewer, session_id: str) -> list[dict[str, Any]]:
    session_row(conn, viewer, session_id)
    return errors(session_id, chat_items(store, session_id))


def plan_check(conn: ReadDb, store: EventStore, viewer: gate.Viewer, session_id: str) -> dict[str, Any]:
    """The plan beside what was done: items with their status, files, tests, what is left."""
    session_row(conn, viewer, session_id)
    items = chat_items(store, session_id)
    plan = plan_of(items)
    return {"session_id": session_id, "has_plan": bool(plan.items or plan.text), "plan": plan.as_json(),
            "done": {"files": files_touched(items), "tests": test_runs(session_id, items)},
            "left": [vars(i) for i in plan.left]}


def transcript(store: EventStore, conn: ReadDb, viewer: gate.Viewer, session_id: str,
               start: int = 0, limit: int | None = None) -> str:
    """The chat as markdown (items ``start`` to ``start + limit``)."""
    row = session_row(conn, viewer, session_id)
    items = chat_items(store, session_id)
    chosen = items[start:] if limit is None else items[start:start + limit]
    out = [f"# {row.get('title') or session_id}", ""] if start == 0 else []
    for position, item in enumerate(chosen, start):
        out += _markdown(position, item)
    return "\n".join(out).rstrip() + "\n"


def _markdown(position: int, item: ChatItem, depth: int = 0) -> list[str]:
    pad = "> " * depth
    if item.tool is not None:
        call = item.tool
        status = "error" if call.is_error else ("no result" if call.result is None else "ok")
        lines = [f"{pad}**[{position}] {call.name}** `{_brief_input(call)}` ({status})"]
        if call.result:
            lines += [f"{pad}```", *(pad + line for line in call.result[:2000].splitlines()), f"{pad}```"]
        if call.subagent is not None:
            for child in call.subagent.items:
                lines += _markdown(position, child, depth + 1)
        return [*lines, ""]
    if item.kind in ("thinking",) or not item.text:
        return []
    who = {"prompt": "User", "text": "Assistant"}.get(item.kind, item.kind)
    return [f"{pad}**[{position}] {who}:** " + item.text.replace("\n", "\n" + pad), ""]


def chain(conn: ReadDb, viewer: gate.Viewer, session_id: str) -> list[str]:
    """``session_id`` and the sessions before it on the same repository and branch
    by the same user, oldest first (at most ``CHAIN_LIMIT``)."""
    row = session_row(conn, viewer, session_id)
    if not row.get("branch"):
        return [session_id]
    found = conn.execute(
        "SELECT r.session_id, s.row FROM repository_sessions r JOIN sessions s USING (session_id)"
        ' WHERE r.key = ? AND r."user" = ? AND r.started <= ? ORDER BY r.started DESC LIMIT ?',
        (row["repo"], row.get("user", ""), row.get("started", ""), CHAIN_LIMIT * 4),
    ).fetchall()
    ids = []
    for sid, raw in found:
        if json.loads(raw).get("branch") != row["branch"]:
            break
        ids.append(sid)
    ids = gate.visible(conn, viewer, ids[:CHAIN_LIMIT], lambda s: s)
    return list(reversed(ids)) or [session_id]


def repo_sessions(conn: ReadDb, viewer: gate.Viewer, repo: str, limit: int = 10) -> list[dict[str, Any]]:
    """The repository's newest sessions with what the list shows of them."""
    rows = [json.loads(r) for (r,) in conn.execute(
        "SELECT list_row FROM repository_sessions WHERE key = ? ORDER BY started DESC LIMIT ?", (repo, limit))]
    return gate.visible(conn, viewer, rows, lambda r: r["session_id"])


def latest_session(conn: ReadDb, viewer: gate.Viewer, project: str = "") -> tuple[str, str]:
    """(session id, project) of the newest session of ``project`` (a GitHub
    ``owner/repo`` or a directory: the list's grouping, ``session_keys.group_of``),
    of the whole store without one; ``SessionNotFound`` when none."""
    where, params = ("WHERE key = ?", [project]) if project else ("", [])
    for sid, key in conn.execute(f"SELECT session_id, key FROM repository_sessions {where} ORDER BY started DESC LIMIT 50", params):
        if gate.may_see(conn, viewer, sid):
            return str(sid), str(key)
    raise SessionNotFound(f"no sessions{' of ' + project if project else ''} yet")
