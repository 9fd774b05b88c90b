"""Live updates: ``GET /events`` is a Server-Sent Events stream telling open pages
what changed, so they re-fetch just the affected fragment (see static/live.js).

The hub watches the read models' checkpoints, not the raw log: it announces a
change only once every projection has applied it, so a page that re-fetches on
the message already sees the new data. A message names the sessions and
repositories the new events touched (``all`` when there were too many to list)
and the sessions people commented on or marked (``comments``), or the sessions
whose visibility changed (``access_changed``: read from the access-change log,
so a change made by another server or the CLI is announced too),
cut for each subscriber to what its viewer may see: a change to a session
someone may not see never reaches their stream. A stream whose user's rights
changed (made or unmade an admin, the token it signed in with revoked) is
signed in again as they are now and told to re-read everything (``all``).

A stream's viewer is identified as of an access change (``server.access.gate``
reads the log's last ``seq`` before it identifies a stream's request): one
registered after the hub announced a later change without it (the change landed
between the request's sign-in and the stream's start) is caught up at the hub's
next look (``catch_up``), so no change is missed until the user's next one.

A stream may follow one session (``/events?session=ID``, which the viewer must
be allowed to see): it hears only of that session. On a server with ``--auth``
that is the only stream an anonymous visitor may open (what a public session's
page listens to): the lists need sign-in, so the whole stream would tell them
of public sessions they were never given. Messages carry no log position (it
counts everyone's events, so it would show how busy sessions one may not see
are). Streams are limited so that nobody can take the others' (``refusal``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, HTTPException, Request
from sse_starlette.sse import EventSourceResponse

from kapacitor.access import accounts, changes
from kapacitor.access.viewer import LOCAL, Viewer, visible_sessions
from kapacitor.events import RecordedEvent
from kapacitor.projections.runner import checkpoints
from kapacitor.projections.session_summary import session_of
from kapacitor.server.access import SignInRequired, identified_as_of, not_found, viewer_of
from kapacitor.store.base import EventStore, StoreClosed
from kapacitor.store.readdb import ReadDb

router = APIRouter()
log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
"""How often the hub looks at the checkpoints unwoken: the projection runner wakes
it as soon as the read models may have moved, so this is only a safety net."""
MAX_LISTED = 2000  # events, or sessions whose access changed; more than that in one step and pages re-read everything
MAX_SUBSCRIBERS = 200
"""Open ``/events`` streams of signed-in users (and of the local user of a server
without ``--auth``) at most; one more is answered 503 (each holds a queue and a
connection)."""
MAX_PER_USER = 20
"""One signed-in user's open streams at most (a browser tab each), so that no
single account can take the team's ``MAX_SUBSCRIBERS``."""
MAX_ANONYMOUS = 20
"""Anonymous visitors' open streams (public sessions' pages), all together, at
most: counted apart from ``MAX_SUBSCRIBERS``, so that people without an account
can never take the signed-in users' places."""


DISCUSSION_STREAMS = ("SessionComments-", "SessionMarks-")
"""Streams of people's comments and marks on a session (``collab``): announced
apart (``comments``), since they are not session activity."""


def discussed_session(event: RecordedEvent) -> str | None:
    """The session a comment or mark event is about, None for any other event."""
    for prefix in DISCUSSION_STREAMS:
        if event.stream.startswith(prefix):
            return event.stream.removeprefix(prefix)
    return None


class LiveHub:
    """Fans change messages out to every open ``/events`` stream."""

    def __init__(self, store: EventStore, db: ReadDb, names: list[str], max_subscribers: int = MAX_SUBSCRIBERS):
        self.store, self.db, self.names, self.max_subscribers = store, db, names, max_subscribers
        self.queues: dict[asyncio.Queue[dict[str, Any]], Viewer] = {}
        self.scopes: dict[asyncio.Queue[dict[str, Any]], str] = {}  # the streams that follow one session
        self.seen: dict[asyncio.Queue[dict[str, Any]], int | None] = {}  # the access change each viewer is current as of
        self.position = 0
        self.access_seq: int | None = None  # the last access change seen (``access_changed``)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken = asyncio.Event()

    def refusal(self, viewer: Viewer) -> str | None:
        """Why one more stream for ``viewer`` is refused (a 503's detail), None when
        it is not: anonymous visitors share ``MAX_ANONYMOUS`` streams, apart from
        everyone else's ``max_subscribers``, of which one signed-in user holds at
        most ``MAX_PER_USER`` (the local user of a server without ``--auth`` is
        alone: only the total counts)."""
        if not viewer.signed_in:
            if sum(not v.signed_in for v in self.queues.values()) >= MAX_ANONYMOUS:
                return f"{MAX_ANONYMOUS} anonymous live streams are open already: sign in for yours"
            return None
        if sum(v.signed_in for v in self.queues.values()) >= self.max_subscribers:
            return f"{self.max_subscribers} live streams are open already"
        if viewer != LOCAL and sum(v.name == viewer.name for v in self.queues.values()) >= MAX_PER_USER:
            return f"{MAX_PER_USER} live streams of {viewer.name} are open already: close a tab"
        return None

    def subscribe(self, viewer: Viewer, session: str = "", seen: int | None = None) -> asyncio.Queue[dict[str, Any]] | None:
        """A new subscriber's queue (it gets what ``viewer`` may see; of ``session``
        alone when given), or None when ``refusal`` refuses it. ``seen``: the access
        change ``viewer`` was identified as of (``server.access.identified_as_of``;
        None: as of the hub's next look), so a later one is not missed (``catch_up``)."""
        if self.refusal(viewer) is not None:
            return None
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self.queues[queue], self.seen[queue] = viewer, seen
        if session:
            self.scopes[queue] = session
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.queues.pop(queue, None)
        self.scopes.pop(queue, None)
        self.seen.pop(queue, None)

    def heard(self, queue: asyncio.Queue[dict[str, Any]]) -> bool:
        """Whether ``queue`` holds a message (all taken out): for a stream that is
        not a change stream (an eval's progress) but must end when what its viewer
        may see changed (``sees``)."""
        heard = False
        while not queue.empty():
            queue.get_nowait()
            heard = True
        return heard

    def sees(self, queue: asyncio.Queue[dict[str, Any]], session: str) -> bool:
        """May the viewer of ``queue``, as they are now (re-signed on a change of
        their rights), still see ``session``?"""
        viewer = self.queues.get(queue)
        return viewer is not None and viewer.may_see_session(self.db, session)

    def applied_position(self) -> int:
        """The position every read model has reached."""
        saved = checkpoints(self.db)
        return min((saved[n].position for n in self.names if n in saved), default=0)

    def changes(self, after: int, upto: int) -> dict[str, Any]:
        """What the events in (after, upto] touched."""
        events = self.store.read_all(after, limit=MAX_LISTED + 1)
        if len(events) > MAX_LISTED and events[-1].position <= upto:
            return self.everything()
        events = [e for e in events if e.position <= upto]
        sessions = sorted({sid for sid in map(session_of, events) if sid})
        comments = sorted({sid for sid in map(discussed_session, events) if sid})
        return {"all": False, "sessions": sessions, "repositories": self._repositories(sessions), "comments": comments}

    def _repositories(self, sessions: list[str]) -> list[str]:
        if not sessions:
            return []
        marks = ",".join("?" * len(sessions))
        return sorted(k for (k,) in self.db.execute(
            f"SELECT DISTINCT key FROM repository_sessions WHERE session_id IN ({marks})", sessions))

    def access_changed(self, viewers: set[Viewer]) -> tuple[dict[Viewer, Viewer], dict[Viewer, dict[str, Any] | None]] | None:
        """The access changes since the last look (made by any server or the CLI:
        ``access.changes``): the viewers among ``viewers`` whose user's rights
        changed, each with who they are now (``accounts.as_now``; their streams
        re-read everything, ``resign``), and the visibility changes cut for each
        of the others: the sessions they may see now or could before, so a
        timeline gains a session shared with its viewer (or drops one made
        private) without a reload. None when nothing changed."""
        latest = changes.latest(self.db)
        if self.access_seq is None or latest < self.access_seq:  # not running yet, or a replaced database
            self.access_seq = latest
            return None
        if latest == self.access_seq:
            return None
        after, self.access_seq = self.access_seq, latest
        return self.announced(viewers, after, latest)

    def announced(self, viewers: set[Viewer], after: int, latest: int) -> tuple[dict[Viewer, Viewer], dict[Viewer, dict[str, Any] | None]]:
        """The changes in (``after``, ``latest``] for ``viewers``, as ``access_changed`` returns them."""
        users = set(changes.changed_users(self.db, after, latest))
        resigned = {viewer: now for viewer in viewers
                    if viewer.name in users and (now := accounts.as_now(self.db, viewer)) != viewer}
        viewers = viewers - set(resigned)
        cut: dict[Viewer, dict[str, Any] | None] = {}
        if len(changes.changed_sessions(self.db, after, latest)) > MAX_LISTED:  # too many to list: re-read everything
            for viewer in viewers:  # ... whoever may see one of them now or could before, and nobody else
                cut[viewer] = self.everything() if changes.seen_around(self.db, viewer, after, latest, limit=1) else None
            return resigned, cut
        for viewer in viewers:
            seen = changes.seen_around(self.db, viewer, after, latest)
            cut[viewer] = {"all": False, "sessions": sorted(seen),
                           "repositories": sorted(set(seen.values())), "comments": []} if seen else None
        return resigned, cut

    def everything(self) -> dict[str, Any]:
        """The message that makes a page re-read every live part of it."""
        return {"all": True, "sessions": [], "repositories": [], "comments": []}

    def resign(self, resigned: dict[Viewer, Viewer]) -> None:
        """Each stream of a viewer in ``resigned`` goes on as who they are now, and
        re-reads everything (what they may see changed as a whole)."""
        for queue, viewer in list(self.queues.items()):
            if viewer in resigned:
                self.queues[queue] = resigned[viewer]
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(self.everything())

    def for_viewers(self, message: dict[str, Any], viewers: set[Viewer]) -> dict[Viewer, dict[str, Any] | None]:
        """``message`` as each viewer may see it: only the sessions they may see and
        those sessions' repositories; None when nothing of it is theirs."""
        cut: dict[Viewer, dict[str, Any] | None] = {}
        for viewer in viewers:
            if viewer.admin or message["all"]:
                cut[viewer] = message
                continue
            seen = visible_sessions(self.db, viewer, message["sessions"])
            discussed = sorted(visible_sessions(self.db, viewer, message["comments"]))
            cut[viewer] = (message | {"sessions": sorted(seen), "repositories": sorted(set(seen.values())),
                                      "comments": discussed}) if seen or discussed else None
        return cut

    def publish(self, cut: dict[Viewer, dict[str, Any] | None]) -> None:
        for queue, viewer in list(self.queues.items()):
            self.deliver(queue, cut.get(viewer))

    def deliver(self, queue: asyncio.Queue[dict[str, Any]], message: dict[str, Any] | None) -> None:
        """``message`` (None: nothing) into one stream, cut to its session if it follows one."""
        if message is not None and queue in self.scopes:
            message = of_session(message, self.scopes[queue])
        if message is not None:
            with contextlib.suppress(asyncio.QueueFull):  # a stuck client misses messages, not the others
                queue.put_nowait(message)

    def late(self) -> dict[asyncio.Queue[dict[str, Any]], tuple[Viewer, int]]:
        """The streams whose viewer was identified as of an access change before the
        last one the hub announced (``access_seq``) and that missed it: registered
        after the hub read the changes (``catch_up`` brings them up to date)."""
        if self.access_seq is None:
            return {}
        return {queue: (self.queues[queue], seen) for queue, seen in self.seen.items()
                if seen is not None and seen < self.access_seq and queue in self.queues}

    def catch_up(self, late: dict[asyncio.Queue[dict[str, Any]], tuple[Viewer, int]], upto: int,
                 ) -> dict[asyncio.Queue[dict[str, Any]], tuple[Viewer, dict[str, Any] | None]]:
        """For each stream in ``late`` (``late()``), what it missed of the changes up
        to ``upto``: who its viewer is now (re-signed when their rights changed,
        and then told to re-read everything) and the message it missed (None:
        nothing of them was theirs)."""
        caught: dict[asyncio.Queue[dict[str, Any]], tuple[Viewer, dict[str, Any] | None]] = {}
        for queue, (viewer, seen) in late.items():
            resigned, cut = self.announced({viewer}, seen, upto)
            caught[queue] = (resigned[viewer], self.everything()) if viewer in resigned else (viewer, cut[viewer])
        return caught

    def wake(self) -> None:
        """Look at the checkpoints now (from any thread: the projection runner calls
        it when the read models may have moved) instead of at the next poll. A
        no-op when the hub is not running: before ``run`` or once its loop stopped
        or closed (the server is shutting down and nobody is listening)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                loop.call_soon_threadsafe(self._woken.set)

    def advance(self, viewers: set[Viewer]) -> dict[Viewer, dict[str, Any] | None] | None:
        """The change since the last advance, cut for each of ``viewers``; None when
        the read models have not moved."""
        reached = self.applied_position()
        if reached <= self.position:
            return None
        message = self.changes(self.position, reached)
        self.position = reached
        return self.for_viewers(message, viewers)

    async def start(self) -> None:
        """Where the read models and the access-change log stand: what ``step``
        announces comes after."""
        self.position = await _in_thread(self.applied_position)
        self.access_seq = await _in_thread(changes.latest, self.db)

    async def step(self) -> None:
        """One look: publish what the read models applied since the last, catch up
        the streams that missed an access change (``late``), then publish the
        access changes since the last look."""
        cut = await _in_thread(self.advance, set(self.queues.values()))
        if cut is not None:
            self.publish(cut)
        late, upto = self.late(), self.access_seq
        if late and upto is not None:
            caught = await _in_thread(self.catch_up, late, upto)
            for queue, (viewer, message) in caught.items():
                if queue in self.queues:  # not closed meanwhile
                    self.queues[queue], self.seen[queue] = viewer, upto
                    self.deliver(queue, message)
        behind, streams = set(self.late()), list(self.queues)
        changed = await _in_thread(self.access_changed, {self.queues[q] for q in streams})
        if changed is not None:
            resigned, cut = changed
            self.resign(resigned)
            self.publish(cut)
        for queue in streams:  # told of the changes since the last look: current, unless behind before it too
            if queue in self.seen and queue not in behind:
                self.seen[queue] = self.access_seq

    async def run(self) -> None:
        """Publish each advance of the checkpoints and each access change, until
        cancelled (or the database is closed under it: ``StoreClosed``, logged
        once): when woken (``wake``), else every ``POLL_SECONDS``."""
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self.start()
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), POLL_SECONDS)
                self._woken.clear()
                await self.step()
        except StoreClosed as exc:
            log.warning("live updates stopped: %s", exc)
        finally:
            self._loop = None  # wake() from the runner's thread is a no-op from now on


def of_session(message: dict[str, Any], session: str) -> dict[str, Any] | None:
    """``message`` as a stream following ``session`` alone hears it: that session
    among ``sessions`` and ``comments`` (``repositories`` stay empty: the other
    sessions' would show), None when it is not about it."""
    sessions, comments = [session] if session in message["sessions"] else [], [session] if session in message["comments"] else []
    if not (message["all"] or sessions or comments):
        return None
    return message | {"sessions": sessions, "repositories": [], "comments": comments}


async def _in_thread(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)`` in a worker thread. Cancelled, this still waits for the
    thread to finish before it raises ``CancelledError``: the server closes the
    database the hub reads as soon as the hub's task has ended, and a query still
    running then would fail or open a connection nobody closes."""
    thread = asyncio.ensure_future(asyncio.to_thread(work, *args))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        await asyncio.wait([thread])
        if not thread.cancelled():
            thread.exception()  # seen: a failure of work whose result nobody wants any more is not worth a log line
        raise


def stream_url(request: Request, session_id: str = "") -> str:
    """The ``/events`` URL a page listens to ("" for none): the whole stream, but
    for an anonymous visitor of a server with ``--auth``, who may follow only the
    session whose (public) page it is (``session_id``; none on any other page)."""
    if request.app.state.auth and not viewer_of(request).signed_in:
        return f"/events?session={quote(session_id)}" if session_id else ""
    return "/events"


def subscribed(request: Request, session: str = "") -> asyncio.Queue[dict[str, Any]]:
    """A queue of the app's hub for the stream ``request`` opens (``session``: it
    follows that session alone), its viewer identified as of the access change the
    gate saw (``identified_as_of``); 503 (retry later) when ``LiveHub.refusal``
    refuses it. The caller unsubscribes it when the stream ends."""
    hub: LiveHub = request.app.state.hub
    viewer = viewer_of(request)
    queue = hub.subscribe(viewer, session, identified_as_of(request))
    if queue is None:
        raise HTTPException(503, hub.refusal(viewer), headers={"Retry-After": "30"})
    return queue


@router.get("/events", summary="Server-Sent Events: one `change` message per advance of the read models")
async def events(request: Request, session: str = "") -> EventSourceResponse:
    """Each ``change`` message is JSON: ``all`` (re-read everything: more changed
    than a message lists, or the viewer's own rights changed), ``sessions``,
    ``repositories``, ``comments`` (sessions whose comments or marks changed); the
    first message, ``hello``, is ``{}``. ``session``: follow that session alone
    (404 when the viewer may not see it); on a server with ``--auth`` an anonymous
    visitor must name one (else 401). 503 (retry later) when the viewer's streams
    are at their limit (``LiveHub.refusal``)."""
    hub: LiveHub = request.app.state.hub
    viewer = viewer_of(request)
    if session and not await _in_thread(visible_sessions, hub.db, viewer, [session]):
        raise not_found("session")
    if request.app.state.auth and not viewer.signed_in and not session:
        raise SignInRequired()
    queue = subscribed(request, session)
    shutdown = anyio.Event()  # set when the server stops: the stream ends cleanly

    async def stream():  # type: ignore[no-untyped-def]
        try:
            yield {"event": "hello", "data": "{}"}
            while not shutdown.is_set():
                message = None
                with anyio.move_on_after(0.5):
                    message = await queue.get()
                if message is not None:
                    yield {"event": "change", "data": json.dumps(message)}
        finally:
            hub.unsubscribe(queue)

    return EventSourceResponse(stream(), ping=15, shutdown_event=shutdown, shutdown_grace_period=1)
