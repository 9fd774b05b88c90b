"""Marks: a person says a session is worth learning from (``SessionMarked``,
with an optional reason) or takes a mark back (``SessionUnmarked``), on the
session's mark stream (``SessionMarks-{session}``), never on its agent streams.

One mark per person and session: marking again replaces the reason. A session
is marked while anyone's mark stands.
"""

from __future__ import annotations

import uuid

from kapacitor import authored
from kapacitor.events import SessionMarked, SessionUnmarked, session_marks_stream, to_new_event
from kapacitor.store.base import EventStore, utc_now

MAX_REASON = 2_000


class MarkError(ValueError):
    """A mark that cannot be kept (a reason that is too long)."""


def mark(store: EventStore, session_id: str, author: str, reason: str = "") -> str:
    """Append ``author``'s mark; returns the event id."""
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise MarkError(f"a reason has at most {MAX_REASON:,} characters ({len(reason):,} given)")
    new = to_new_event(SessionMarked(utc_now(), author, reason), str(uuid.uuid4()))
    authored.append(store, session_marks_stream(session_id), [new])
    return new.id


def unmark(store: EventStore, session_id: str, author: str, marked_by: str) -> str:
    """Append ``author``'s taking back of ``marked_by``'s mark; returns the event id."""
    new = to_new_event(SessionUnmarked(utc_now(), author, marked_by), str(uuid.uuid4()))
    authored.append(store, session_marks_stream(session_id), [new])
    return new.id
