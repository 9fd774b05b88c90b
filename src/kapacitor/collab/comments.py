"""Comments: ``CommentAdded``, ``CommentEdited`` and ``CommentRetracted`` on a session's comment
stream (``SessionComments-{session}``).

That stream is not one of the session's agent streams, so the activity folds
(sessions, live status) never see a comment: commenting does not move the
session's end time or light its live dot. Nothing is changed in place: its
author edits a comment with ``CommentEdited`` (the new text; the old stays in
the log), its author or an admin retracts it with ``CommentRetracted``, and the
read model shows the latest text or stops showing it.

Who may comment, and on which session, is the server's question (the viewer);
this module keeps the rules of a comment itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from kapacitor import authored
from kapacitor.events import (
    CommentAdded,
    CommentEdited,
    CommentRetracted,
    event_id,
    session_comments_stream,
    to_new_event,
)
from kapacitor.store.base import EventStore, utc_now

MAX_TEXT = 20_000
"""Characters a comment may have (a long review, not a pasted log)."""
MAX_ANCHOR = 200
KINDS = ("session", "chat", "trace")
"""What a comment is on: the whole session, one chat item (anchor: its event
id, as in the chat's ``#e-<id>`` links) or one trace node (anchor: the node's
``data-id``, as in ``trace#node=<id>`` links)."""


class CommentError(ValueError):
    """A comment that cannot be kept: empty, too long, or on an unknown kind of target."""


@dataclass(frozen=True)
class Target:
    kind: str = "session"
    anchor: str = ""

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "anchor": self.anchor}


def check_target(kind: str, anchor: str = "") -> Target:
    """The target a comment is on; a session comment has no anchor."""
    kind, anchor = (kind or "session").strip(), (anchor or "").strip()
    if kind not in KINDS:
        raise CommentError(f"a comment is on one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "session":
        return Target()
    if not anchor or len(anchor) > MAX_ANCHOR:
        raise CommentError(f"a comment on a {kind} item names it (anchor: 1 to {MAX_ANCHOR} characters)")
    return Target(kind, anchor)


def check_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise CommentError("a comment needs some text")
    if len(text) > MAX_TEXT:
        raise CommentError(f"a comment has at most {MAX_TEXT:,} characters ({len(text):,} given)")
    return text


def add(store: EventStore, session_id: str, author: str, text: str, target: Target) -> CommentAdded:
    """Append a comment by ``author`` (secrets in its text masked, as in transcripts);
    returns it. Raises ``CommentError`` for bad text."""
    comment_id = str(uuid.uuid4())
    comment = CommentAdded(utc_now(), comment_id, author, check_text(text), target.as_json())
    [stored] = authored.append(store, session_comments_stream(session_id), [to_new_event(comment, comment_id)])
    return CommentAdded(**stored.data)


def edit(store: EventStore, session_id: str, comment_id: str, author: str, text: str) -> CommentEdited:
    """Append a new text for a comment (secrets masked); returns the edit. Raises
    ``CommentError`` for bad text. Whether ``author`` may edit it is the caller's check."""
    edited = CommentEdited(utc_now(), comment_id, author, check_text(text))
    [stored] = authored.append(store, session_comments_stream(session_id), [to_new_event(edited, str(uuid.uuid4()))])
    return CommentEdited(**stored.data)


def retract(store: EventStore, session_id: str, comment_id: str, author: str) -> None:
    """Append the retraction of a comment (once: a second retraction is the same event)."""
    retraction = CommentRetracted(utc_now(), comment_id, author)
    authored.append(store, session_comments_stream(session_id), [to_new_event(retraction, event_id("retract", comment_id))])
