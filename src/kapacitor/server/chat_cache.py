"""The chat (and trace) of the sessions being read, kept between requests and
brought up to date by what was appended since.

A long chat is served in slices (``/sessions/{id}/chat?start=N``), a large trace
in parts (``/trace/children``) and node details (``/trace/detail``), and a live
page re-fetches what it shows on every change. Building the items reads every
event of the session and its subagents, so each of those requests would cost
the whole session. A session's ``chat.ChatModel`` is kept instead: while none of
its streams moved (one cheap version query per stream) a slice costs its own
items only, wherever it starts, and when events arrive only those are read and
folded in (``ChatModel.update``); the trace tree (``trace.TraceModel``) grows
from the items the same way. Only the first read of a session since the server
started, a change in the history it inherited, or a ``kapacitor scrub`` builds
it whole; the huge sessions active at a start are built ahead, in the
background (``chat_warmup``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kapacitor.events import scrub_log_stream
from kapacitor.server.chat import BuildStopped, ChatItem, ChatModel
from kapacitor.server.trace import TraceModel, TraceNode
from kapacitor.store.base import EventStore

SESSIONS = 4
"""Sessions kept (least recently read dropped first): a huge session's items are
tens of MB."""
LOCKS = 16


@dataclass
class _Entry:
    chat: ChatModel
    scrubbed: int
    trace: TraceModel | None = None


class ChatCache:
    """The kept chats. An update changes items and tree nodes in place, so a
    reader that goes on using them (a page being rendered) holds ``lock(session)``
    meanwhile; the cache's own updates take the same lock."""

    def __init__(self, size: int = SESSIONS):
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._session_locks = [threading.RLock() for _ in range(LOCKS)]

    def lock(self, session_id: str) -> threading.RLock:
        """The lock of ``session_id``'s kept chat (one of ``LOCKS``, by hash)."""
        return self._session_locks[hash(session_id) % LOCKS]

    def items(self, store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None) -> list[ChatItem]:
        """The session's chat items (``chat.chat_items``, ``inherited`` marked), with
        what its streams gained since the last read folded in."""
        with self.lock(session_id):
            return self._entry(store, session_id, inherited or {}).chat.items

    def tree(self, store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None,
             subagents: Mapping[str, Mapping[str, Any]] | None = None) -> TraceNode:
        """The session's trace tree (``trace.trace_tree``), grown with the items; given
        the session row's ``subagents`` (by agent id), each subagent node spans its
        subagent as they say (``TraceModel.time_subagents``)."""
        with self.lock(session_id):
            entry = self._entry(store, session_id, inherited or {})
            if entry.trace is None:
                entry.trace = TraceModel(entry.chat)
            tree = entry.trace.update()
            if subagents:
                entry.trace.time_subagents(subagents)
            return tree

    def room(self) -> int:
        """How many more sessions the cache keeps before it drops one."""
        with self._lock:
            return max(0, self.size - len(self._entries))

    def warm(self, store: EventStore, session_id: str, inherited: Mapping[int, str],
             stop: threading.Event | None = None) -> bool:
        """Build and keep the session's chat and trace ahead of a read (``chat_warmup``),
        only while there is room: False when it is kept already or there is none.
        Kept as the least recently read, so it is the first dropped for a real read.
        ``stop`` set: the build gives up (``chat.BuildStopped``), keeping nothing."""
        with self.lock(session_id):
            with self._lock:
                if session_id in self._entries or len(self._entries) >= self.size:
                    return False
            scrubbed = store.stream_version(scrub_log_stream())  # before the build, as ``_entry``
            entry = _Entry(ChatModel(store, session_id, inherited, stop), scrubbed)
            if stop is not None and stop.is_set():
                raise BuildStopped
            entry.trace = TraceModel(entry.chat)
            entry.trace.update()
            with self._lock:
                if session_id in self._entries or len(self._entries) >= self.size:
                    return False
                self._entries[session_id] = entry
                self._entries.move_to_end(session_id, last=False)
            return True

    def _entry(self, store: EventStore, session_id: str, inherited: Mapping[int, str]) -> _Entry:
        """The session's kept entry, brought up to date (under its lock)."""
        scrubbed = store.stream_version(scrub_log_stream())
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is not None:
                self._entries.move_to_end(session_id)
        if entry is not None and entry.chat.inherited == inherited and entry.scrubbed == scrubbed:
            entry.chat.update()
            return entry
        entry = _Entry(ChatModel(store, session_id, inherited), scrubbed)
        with self._lock:
            self._entries[session_id] = entry
            self._entries.move_to_end(session_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry
