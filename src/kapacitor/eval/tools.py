"""Session-scoped tools a judge calls to look deeper than the compact trace.

One implementation serves both the MCP server (``kapacitor mcp judge``, for the
``claude`` backend) and the API backends' function tools: ``TOOLS`` lists each
tool's name, description and JSON Schema, ``SessionTools.call`` runs one. The
tools hold one ``SessionView`` and read nothing else, so a judge can never see
another session: a call id, ref or path that is not in this session is simply
not found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kapacitor.eval.compact import DEFAULT_THRESHOLD, plan_text, render_entry
from kapacitor.eval.session import Entry, SessionView

PAGE_SIZE = 40
"""Entries per transcript page."""
OUTPUT_CAP = 100_000
"""Characters of one tool output returned (the rest is named, not sent)."""
SEARCH_LIMIT = 30
TEST_COMMAND = re.compile(
    r"\b(pytest|py\.test|unittest|tox|nox|jest|vitest|mocha|go test|cargo test|npm (run )?test|"
    r"yarn test|pnpm test|make (test|check)|ctest|rspec|phpunit|gradle test|mvn test|scripts/test|"
    r"tsc|mypy|ruff|cargo build|go build|npm run build|make)\b"
)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "session_summary",
        "Overview of the session: files written (with write counts), test and build runs with "
        "their outcome, failed tool calls, and which tool outputs the transcript truncated.",
        _schema({}, []),
    ),
    ToolSpec(
        "search_session",
        "Case-insensitive text search in this session's messages, tool calls and full tool outputs. "
        "Returns matching entries' refs with a snippet.",
        _schema({"query": {"type": "string", "description": "text to look for"}}, ["query"]),
    ),
    ToolSpec(
        "transcript_page",
        f"One page ({PAGE_SIZE} entries) of the compact transcript, pages numbered from 1.",
        _schema({"page": {"type": "integer", "minimum": 1}}, ["page"]),
    ),
    ToolSpec(
        "tool_output",
        "The full, untruncated output of one tool call, by its call id or its entry ref.",
        _schema({"call": {"type": "string", "description": "call id (toolu_...) or entry ref"}}, ["call"]),
    ),
    ToolSpec(
        "file_content",
        "A file's content as this session last wrote it (Write, Edit, MultiEdit), by path.",
        _schema({"path": {"type": "string"}}, ["path"]),
    ),
)
TOOL_NAMES = {t.name for t in TOOLS}


class ToolError(ValueError):
    """A tool was called wrongly (unknown tool, missing argument): told to the judge."""


class SessionTools:
    """The tools over one session, with the trace threshold the judge saw."""

    def __init__(self, view: SessionView, threshold: int = DEFAULT_THRESHOLD):
        self.view, self.threshold = view, threshold
        self._handlers: dict[str, Callable[..., str]] = {
            "session_summary": self.summary,
            "search_session": self.search,
            "transcript_page": self.page,
            "tool_output": self.tool_output,
            "file_content": self.file_content,
        }

    def call(self, name: str, arguments: dict[str, Any] | None) -> str:
        """Run tool ``name``; a wrong call raises ``ToolError`` with a message for the judge."""
        handler = self._handlers.get(name)
        if handler is None:
            raise ToolError(f"no tool {name!r}; the tools are {', '.join(sorted(TOOL_NAMES))}")
        spec = next(t for t in TOOLS if t.name == name)
        arguments = arguments if isinstance(arguments, dict) else {}
        missing = [k for k in spec.parameters["required"] if k not in arguments]
        if missing:
            raise ToolError(f"{name} needs {', '.join(missing)}")
        known = {k: v for k, v in arguments.items() if k in spec.parameters["properties"]}
        return handler(**known)

    # --- the tools ---------------------------------------------------------

    def summary(self) -> str:
        files: dict[str, int] = {}
        tests, errors, truncated = [], [], []
        for e in self._calls():
            call = e.item.tool
            assert call is not None
            path = _written_path(call.name, call.arguments)
            if path and not call.is_error:
                files[path] = files.get(path, 0) + 1
            command = str(call.arguments.get("command", "")) if call.name == "Bash" else ""
            if command and TEST_COMMAND.search(command):
                outcome = "no result" if call.result is None else ("FAILED" if call.is_error else "ok (exit 0)")
                tests.append(f"[{e.short}] {command[:200]} -> {outcome}")
            if call.is_error:
                errors.append(f"[{e.short}] {call.name}: {_first_line(call.result or '')}")
            size = len((call.result or "").encode("utf-8", "surrogatepass"))
            if size > self.threshold:
                truncated.append(f"[{e.short}] {call.name} (call {call.call_id}): {size:,} bytes")
        plan = plan_text(self.view)
        out = [f"Session {self.view.session_id}: {len(self.view.entries)} entries, "
               f"{(len(self.view.entries) + PAGE_SIZE - 1) // PAGE_SIZE} transcript pages."]
        out += _section("Plan", plan.splitlines())
        out += _section("Files written", [f"{p} ({n} writes)" for p, n in sorted(files.items())])
        out += _section("Test and build runs", tests)
        out += _section("Failed tool calls", errors)
        out += _section(f"Tool outputs over {self.threshold:,} bytes (truncated in the transcript)", truncated)
        return "\n".join(out)

    def search(self, query: str) -> str:
        needle = str(query).lower()
        if not needle:
            raise ToolError("search_session needs a non-empty query")
        hits = []
        for e in self.view.entries:
            text = _searchable(e)
            at = text.lower().find(needle)
            if at >= 0:
                snippet = text[max(0, at - 80): at + len(needle) + 80].replace("\n", " ")
                hits.append(f"[{e.short}]{' {' + e.agent + '}' if e.agent else ''} {e.kind}: …{snippet}…")
        if not hits:
            return f"No entry contains {query!r}."
        more = f"\n({len(hits) - SEARCH_LIMIT} more not shown)" if len(hits) > SEARCH_LIMIT else ""
        return "\n".join(hits[:SEARCH_LIMIT]) + more

    def page(self, page: int) -> str:
        try:
            page = int(page)
        except (TypeError, ValueError):
            raise ToolError("page must be a number") from None
        pages = max(1, (len(self.view.entries) + PAGE_SIZE - 1) // PAGE_SIZE)
        if not 1 <= page <= pages:
            raise ToolError(f"page {page} does not exist; pages 1 to {pages}")
        chunk = self.view.entries[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        return f"Page {page} of {pages}\n" + "\n".join(render_entry(e, self.threshold) for e in chunk)

    def tool_output(self, call: str) -> str:
        entry = self.view.call(str(call))
        if entry is None:
            full = self.view.resolve(str(call))
            entry = self.view.entry(full) if full else None
        if entry is None or entry.item.tool is None:
            raise ToolError(f"no tool call {call!r} in this session")
        tool = entry.item.tool
        if tool.result is None:
            return f"{tool.name} (call {tool.call_id}) has no result in this session."
        text = tool.result
        head = f"[{entry.short}] {tool.name} (call {tool.call_id}){' ERROR' if tool.is_error else ''}, {len(text):,} characters:\n"
        if len(text) > OUTPUT_CAP:
            return head + text[:OUTPUT_CAP] + f"\n[{len(text) - OUTPUT_CAP:,} more characters not shown]"
        return head + text

    def file_content(self, path: str) -> str:
        content: str | None = None
        last: Entry | None = None
        matched = ""
        for e in self._calls():
            call = e.item.tool
            assert call is not None
            written = _written_path(call.name, call.arguments)
            if call.is_error or not written or not _same_path(written, str(path)):
                continue
            content = _apply(call.name, call.arguments, call.structured, content)
            last, matched = e, written
        if last is None:
            raise ToolError(f"this session did not write {path!r}")
        if content is None:
            return f"{matched}: edited at [{last.short}], but its content before the edit is not in the session."
        if len(content) > OUTPUT_CAP:
            content = content[:OUTPUT_CAP] + f"\n[{len(content) - OUTPUT_CAP:,} more characters not shown]"
        return f"{matched} as last written at [{last.short}]:\n{content}"

    def _calls(self) -> list[Entry]:
        return [e for e in self.view.entries if e.kind == "tool" and e.item.tool is not None]


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"\n{title}:", *(lines or ["(none)"])]


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def _searchable(e: Entry) -> str:
    item = e.item
    if item.tool is not None:
        return f"{item.tool.name} {json.dumps(item.tool.arguments, ensure_ascii=False)}\n{item.tool.result or ''}"
    return item.text


def _written_path(tool: str, arguments: dict[str, Any]) -> str | None:
    if tool in ("Write", "Edit", "MultiEdit"):
        return str(arguments.get("file_path") or "") or None
    return None


def _same_path(written: str, asked: str) -> bool:
    """The path as written, or a trailing part of it (``src/app.py`` for ``/repo/src/app.py``)."""
    asked = asked.strip()
    return bool(asked) and (written == asked or written.endswith("/" + asked.lstrip("/")))


def _apply(tool: str, arguments: dict[str, Any], structured: Any, before: str | None) -> str | None:
    """The file after one successful write, from the content before it (None: unknown)."""
    if tool == "Write":
        return str(arguments.get("content", ""))
    if before is None and isinstance(structured, dict) and isinstance(structured.get("originalFile"), str):
        before = structured["originalFile"]
    if before is None:
        return None
    edits = arguments.get("edits") if tool == "MultiEdit" else [arguments]
    for edit in edits if isinstance(edits, list) else []:
        old, new = str(edit.get("old_string", "")), str(edit.get("new_string", ""))
        before = before.replace(old, new) if edit.get("replace_all") else before.replace(old, new, 1)
    return before
