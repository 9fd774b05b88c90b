"""The chat items of the sessions being read, kept between requests.

A long chat is served in slices (``/sessions/{id}/chat?start=N``) and a live
page re-fetches what it shows on every change; building the items reads every
event of the session and its subagents, so each slice would cost the whole
session. The items are kept per session, with the version each of its streams
had when read, and reused while none of those streams moved (one cheap version
query per stream): a slice then costs its own items only, wherever it starts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from kapacitor.server.chat import ChatItem, read_chat
from kapacitor.store.base import EventStore

SESSIONS = 4
"""Sessions kept (least recently read dropped first): a huge session's items are
tens of MB."""


class ChatCache:
    def __init__(self, size: int = SESSIONS):
        self.size = size
        self._entries: OrderedDict[str, tuple[dict[str, int], list[ChatItem]]] = OrderedDict()
        self._lock = threading.Lock()

    def items(self, store: EventStore, session_id: str) -> list[ChatItem]:
        """The session's chat items (``chat.chat_items``), built again only when
        one of its streams gained events since."""
        with self._lock:
            entry = self._entries.get(session_id)
        if entry is not None and _current(store, entry[0]):
            with self._lock:
                if session_id in self._entries:
                    self._entries.move_to_end(session_id)
            return entry[1]
        items, versions = read_chat(store, session_id)
        with self._lock:
            self._entries[session_id] = (versions, items)
            self._entries.move_to_end(session_id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return items


def _current(store: EventStore, versions: dict[str, int]) -> bool:
    return all(store.stream_version(stream) == read for stream, read in versions.items())
