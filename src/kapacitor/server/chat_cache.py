"""The chat items (and trace tree) of the sessions being read, kept between
requests.

A long chat is served in slices (``/sessions/{id}/chat?start=N``), a large trace
in parts (``/trace/children``) and node details (``/trace/detail``), and a live
page re-fetches what it shows on every change; building the items reads every
event of the session and its subagents, so each of those requests would cost
the whole session. The items are kept per session, with the version each of its
streams had when read, and reused while none of those streams moved (one cheap
version query per stream): a slice then costs its own items only, wherever it
starts. The trace tree, built from the items, is kept with them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from kapacitor.server.chat import ChatItem, read_chat
from kapacitor.server.trace import TraceNode, trace_tree
from kapacitor.store.base import EventStore

SESSIONS = 4
"""Sessions kept (least recently read dropped first): a huge session's items are
tens of MB."""


@dataclass
class _Entry:
    versions: dict[str, int]
    items: list[ChatItem]
    tree: TraceNode | None = None
    inherited: Mapping[int, str] = field(default_factory=dict)


class ChatCache:
    def __init__(self, size: int = SESSIONS):
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def items(self, store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None) -> list[ChatItem]:
        """The session's chat items (``chat.chat_items``, ``inherited`` marked), built
        again only when one of its streams gained events, or its inherited events
        changed, since."""
        return self._entry(store, session_id, inherited or {}).items

    def tree(self, store: EventStore, session_id: str, inherited: Mapping[int, str] | None = None) -> TraceNode:
        """The session's trace tree (``trace.trace_tree``), from the kept items."""
        entry = self._entry(store, session_id, inherited or {})
        if entry.tree is None:
            entry.tree = trace_tree(store, session_id, entry.items)
        return entry.tree

    def _entry(self, store: EventStore, session_id: str, inherited: Mapping[int, str]) -> _Entry:
        with self._lock:
            entry = self._entries.get(session_id)
        if (
            entry is not None
            and entry.inherited == inherited
            and all(store.stream_version(s) == v for s, v in entry.versions.items())
        ):
            with self._lock:
                if session_id in self._entries:
                    self._entries.move_to_end(session_id)
            return entry
        items, versions = read_chat(store, session_id, inherited)
        entry = _Entry(versions, items, inherited=inherited)
        with self._lock:
            self._entries[session_id] = entry
            self._entries.move_to_end(session_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry
