"""Huge chats built before anyone asks: after a start, the kept chats are empty,
and the first read of a 20,000-call session folds every one of its 40,000
events (seconds). The sessions someone is likely to open first are the ones
running now or active last; ``ChatWarmer`` builds theirs (chat and trace) in a
background thread when the server starts, so the first read finds them kept.

Bounded: only sessions with at least ``WARM_FROM`` events (smaller ones build
in a fraction of a second when read), at most the cache's free places (it never
evicts a chat someone read; an unread warmed chat is the first to go), one
session at a time, once per start. Nothing is stored: a warmed chat is the same
``ChatModel`` a read would fold from the events, kept in memory only.

A stop is prompt: the server's shutdown sets the warmer's stop flag, which the
build under way looks at every ``chat.STOP_EVERY`` events it folds and before
each page of the streams it reads (``chat.BuildStopped``); the server waits for
it at most ``STOP_WAIT`` seconds and then leaves it, a daemon thread, to end by
itself: its next read of the closed store or database raises ``StoreClosed``,
which ends it with one line.

The thread keeps the process's CPU priority on purpose: it holds the session's
lock and, while it folds, the interpreter's lock, so a reader of that session
(or of any page) waits for it; at a lower OS priority a busy machine would
starve it and make them wait longer. A reader that comes while its session is
being warmed waits for the rest of that build, never more than a cold read.
"""

from __future__ import annotations

import logging
import threading

from kapacitor.events import agent_session_stream
from kapacitor.projections import live_status
from kapacitor.projections.ownership import inherited_positions
from kapacitor.server.chat import BuildStopped
from kapacitor.server.chat_cache import ChatCache
from kapacitor.store.base import EventStore, StoreClosed
from kapacitor.store.readdb import ReadDb

WARM_FROM = 5_000
"""Events in a session stream that make its chat worth building ahead (a
5,000-event chat takes about a quarter of a second to build when first read)."""
RECENT = 20
"""How many of the most recently active sessions are looked at."""
STOP_WAIT = 5.0
"""Seconds a stopping server waits for the warm-up to end (it ends within
milliseconds of its stop flag, unless a single read of the store takes longer)."""

log = logging.getLogger(__name__)


def candidates(store: EventStore, db: ReadDb, places: int) -> list[str]:
    """Up to ``places`` sessions whose chats are worth building ahead: running ones
    first, then the most recently active, each with ``WARM_FROM`` events or more."""
    running = sorted(live_status.running_sessions(db))
    recent = [sid for (sid,) in db.execute(
        "SELECT session_id FROM repository_sessions ORDER BY last_activity DESC LIMIT ?", (RECENT,))]
    out: list[str] = []
    for sid in dict.fromkeys([*running, *recent]):
        if len(out) >= places:
            break
        if store.stream_version(agent_session_stream(sid)) + 1 >= WARM_FROM:
            out.append(sid)
    return out


def warm(store: EventStore, db: ReadDb, cache: ChatCache, stop: threading.Event | None = None) -> list[str]:
    """Build the chat and trace of each of ``candidates`` the cache has room for;
    the sessions built. ``stop``: set, the build under way gives up
    (``chat.BuildStopped``, raised) and no further session is begun."""
    built = []
    for sid in candidates(store, db, cache.room()):
        if stop is not None and stop.is_set():
            raise BuildStopped
        if cache.warm(store, sid, inherited_positions(db, sid), stop):
            built.append(sid)
    return built


class ChatWarmer:
    """``warm`` in a background thread, once per start."""

    def __init__(self, store: EventStore, db: ReadDb, cache: ChatCache):
        self.store, self.db, self.cache = store, db, cache
        self.built: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chat-warmup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.built = warm(self.store, self.db, self.cache, self._stop)
        except BuildStopped:
            log.warning("chat warm-up stopped before it was done: the server is stopping")
        except Exception as exc:  # a warm-up that fails leaves reads to build, as without it
            if self._stop.is_set() or isinstance(exc, StoreClosed):  # the store was closed under it: a stop
                log.warning("chat warm-up stopped: %s: %s", type(exc).__name__, exc)
            else:
                log.exception("chat warm-up stopped")

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop the build under way and wait for it, at most ``STOP_WAIT`` seconds
        (then it is left to end by itself, quietly: see the module's docstring)."""
        self._stop.set()
        self.join(STOP_WAIT)
