"""Read model ``search_index``: full-text search over every session (SQLite FTS5;
on PostgreSQL a table with ``tsvector`` columns and a GIN index).

One document per searchable thing a session holds: a prompt (``prompt``), an
assistant text block (``text``), a tool call's input (``tool_input``: its
arguments' values), a tool's output (``tool_output``) and the file paths a call
names (``path``); subagents' included, under their parent session. Each keeps
its event id and the ``anchor`` of the chat item that shows it (a tool output is
shown with its call, so its anchor is the call's event; ``search_calls`` keeps
that link), so a hit can jump to the chat position. ``memory/search.py`` queries it.

A ``prompt`` document is the user's own words only (``USER_WORDS``), so a search
of prompts (``kapacitor search --prompts``, ``/search?in=prompts``) finds what
people asked, never context the client injected. History a resumed or forked
session replays (``ownership``) is indexed once, under the session that made it.

A document's text is cut at ``MAX_DOC_CHARS``: a multi-megabyte tool output is
searchable in its first part only.

Each document also keeps ``stems``: the forms of its words (``word_forms``),
made here in Python, so both backends index the same forms. Searches match them
(an FTS5 column on SQLite; ``stemmed``, their ``tsvector``, on PostgreSQL, with
the GIN index). ``text`` keeps the words as written (FTS5's ``unicode61``; on
PostgreSQL the generated ``doc``), which only ranks hits with the exact words
first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from kapacitor.events import RecordedEvent
from kapacitor.projections.ownership import StoredOwners
from kapacitor.projections.runner import Projection
from kapacitor.projections.session_summary import session_of
from kapacitor.store.readdb import ReadDb
from kapacitor.word_forms import forms, tsvector

MAX_DOC_CHARS = 100_000
PATH_KEYS = ("file_path", "notebook_path", "path")
USER_WORDS = ("prompt", "bash_input", "command")
"""User message kinds that are the user's own words: typed or queued prompts,
bash-mode commands, slash commands. The rest (IDE context, system reminders,
hook output, command caveats and output) is the client's, and is not indexed;
context around a prompt's words is already kept apart from its ``content``."""
_BASH_INPUT = re.compile(r"</?bash-input>")


TSCONFIG = "simple"
"""PostgreSQL's text search configuration of the exact words: lowercased, no
stemming (as FTS5's unicode61); word forms come from ``word_forms``."""


def words(expr: str) -> str:
    """PostgreSQL SQL for ``expr`` with every run of non-alphanumerics a space: the
    words FTS5's unicode61 tokenizer sees (PostgreSQL's own parser keeps
    ``hello.py`` or a path as one token)."""
    return f"regexp_replace({expr}, '[^[:alnum:]]+', ' ', 'g')"

DOC_COLUMNS = ("text", "stems", "session_id", "kind", "event_id", "anchor", "position", "timestamp", "tool")


def setup(conn: ReadDb) -> None:
    if conn.dialect == "postgresql":
        conn.execute(
            "CREATE TABLE search_text (text TEXT NOT NULL, stems TEXT NOT NULL, session_id TEXT NOT NULL,"
            ' kind TEXT NOT NULL, event_id TEXT NOT NULL, anchor TEXT NOT NULL, "position" BIGINT NOT NULL,'
            ' "timestamp" TEXT NOT NULL, tool TEXT NOT NULL, stemmed tsvector NOT NULL,'
            f" doc tsvector GENERATED ALWAYS AS (to_tsvector('{TSCONFIG}', {words('text')})) STORED)"
        )
        conn.execute("CREATE INDEX search_text_stemmed ON search_text USING gin (stemmed)")
    else:
        conn.execute(
            "CREATE VIRTUAL TABLE search_text USING fts5(text, stems, session_id UNINDEXED, kind UNINDEXED,"
            " event_id UNINDEXED, anchor UNINDEXED, position UNINDEXED, timestamp UNINDEXED, tool UNINDEXED)"
        )
    conn.execute(
        "CREATE TABLE search_calls (session_id TEXT NOT NULL, call_id TEXT NOT NULL, event_id TEXT NOT NULL,"
        " tool TEXT NOT NULL, PRIMARY KEY (session_id, call_id))"
    )


def argument_text(arguments: Any) -> str:
    """The values of a call's arguments, one per line (keys are noise to a search)."""
    if isinstance(arguments, dict):
        return "\n".join(argument_text(v) for v in arguments.values())
    if isinstance(arguments, list):
        return "\n".join(argument_text(v) for v in arguments)
    return "" if arguments is None else str(arguments)


def user_words(data: dict[str, Any]) -> str | None:
    """What the user typed in a user message, or None when it is not the user's
    words: a slash command as ``/name args``, a bash-mode command without its tag."""
    ext = (data.get("extensions") or {}).get("claude_code") or {}
    kind = ext.get("kind") or "prompt"
    if kind not in USER_WORDS:
        return None
    if kind == "command":
        return f"{ext.get('command', '')} {ext.get('args', '')}".strip()
    content = str(data.get("content", ""))
    return _BASH_INPUT.sub("", content) if kind == "bash_input" else content


def documents(conn: ReadDb, event: RecordedEvent, session_id: str) -> list[tuple[str, str, str, str]]:
    """(kind, text, anchor, tool) of each document of one event."""
    data = event.data
    if event.type == "UserMessageReceived":
        words = user_words(data)
        return [("prompt", words, event.id, "")] if words is not None else []
    if event.type == "AssistantTextGenerated":
        return [("text", data.get("content", ""), event.id, "")]
    if event.type == "AssistantToolCallsGenerated":
        docs = []
        for call in data.get("tool_calls") or []:
            tool, arguments = str(call.get("tool_name", "")), call.get("arguments")
            conn.execute("INSERT INTO search_calls VALUES (?, ?, ?, ?) ON CONFLICT (session_id, call_id) DO NOTHING",
                         (session_id, str(call.get("call_id", "")), event.id, tool))
            docs.append(("tool_input", argument_text(arguments), event.id, tool))
            if isinstance(arguments, dict):
                docs += [("path", str(arguments[k]), event.id, tool) for k in PATH_KEYS if arguments.get(k)]
        return docs
    if event.type == "ToolResultReceived":
        found = conn.execute("SELECT event_id, tool FROM search_calls WHERE session_id = ? AND call_id = ?",
                             (session_id, data.get("call_id", ""))).fetchone()
        anchor, tool = found or (event.id, data.get("tool_name", ""))
        return [("tool_output", data.get("result", ""), anchor, tool)]
    return []


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    rows: list[tuple[Any, ...]] = []
    inherited = StoredOwners(conn, events).by_position  # indexed under the session that owns them
    for event in events:
        session_id = session_of(event)
        if not session_id or event.position in inherited:
            continue
        for kind, text, anchor, tool in documents(conn, event, session_id):
            if isinstance(text, str) and text.strip():
                text = text[:MAX_DOC_CHARS].replace("\x00", "")
                rows.append((text, forms(text), session_id, kind, event.id, anchor, event.position,
                             event.data.get("timestamp", ""), tool))
    names, values = ", ".join(f'"{c}"' for c in DOC_COLUMNS), ", ".join("?" * len(DOC_COLUMNS))
    if conn.dialect == "postgresql":
        conn.executemany(f"INSERT INTO search_text ({names}, stemmed) VALUES ({values}, ?::tsvector)",
                         [(text, " ".join(found), *rest, tsvector(found)) for text, found, *rest in rows])
    else:
        conn.executemany(f"INSERT INTO search_text ({names}) VALUES ({values})",
                         [(text, " ".join(found), *rest) for text, found, *rest in rows])


PROJECTION = Projection("search_index", 3, ("search_text", "search_calls"), setup, apply)

