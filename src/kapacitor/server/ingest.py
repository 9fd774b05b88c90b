"""The ingest API: live hook payloads and raw transcript lines in, events out.

``POST /api/ingest/sessions/{session_id}/batches`` takes one batch as sent by
``kapacitor.capture.shipper`` (its docstring shows the format). Transcript lines
are normalized by the very code ``kapacitor import`` uses (``Normalizer.feed``
with the line's byte offset and number, the session/subagent identity from the
path by ``capture.layout``, the git context the client worked out), so a live
session and the same transcript imported later give the identical events, ids
included. A hook payload becomes a ``HookReceived`` event (id from the payload
and the hook's time), SessionEnd also a ``SessionEnded``.

Every line is taken: a line the normalizer cannot map (or whose events cannot
be stored) is kept as an ``UnknownRecordReceived`` with its raw text, as import
keeps it, and an event whose id another stream already holds (Claude Code wrote
the record twice, main and sidechain) is skipped, so no line is ever a reason
to refuse a batch. Lines are normalized and appended in parts of ``PART_BYTES``
(each part one transaction, the hook payload in the last), at most
``CONCURRENT`` batches at a time, so memory stays a small multiple of the batch
size; a batch cut short by a failure is resent whole by the client and the
store skips what it already has.
Answers: 200 ``{"added", "skipped"}`` — a replayed batch is 200 with
``added: 0``, because clients resend after a crash or timeout and must see
success; 400 malformed (not JSON, wrong shape, bad session id); 401 missing or
wrong bearer token; 403 no token configured and the caller is not on this
machine, or the session belongs to another user (or, imported on the server,
to none) and the caller may see it; 404 the same, but the caller may not see
it (the answer every read route gives: ingest does not confirm it exists);
413 body over ``MAX_BODY`` (after gzip ``Content-Encoding``); 415 not
``application/json``, or another content encoding; 422 the batch names another
session. A user's token makes that user the owner of a session new to the
store, and its user (``attributed``: the git identity stays in the events as
``git_user``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from kapacitor.access import accounts
from kapacitor.access.viewer import Viewer
from kapacitor.capture import layout
from kapacitor.events import (
    SCHEMA_VERSION,
    SCHEMA_VERSION_METADATA_KEY,
    HookReceived,
    NewEvent,
    SessionEnded,
    agent_session_stream,
    event_id,
    to_new_event,
)
from kapacitor.normalize import redact
from kapacitor.normalize.claude_code import AGENT, EXT, Normalizer, Routed, Source
from kapacitor.server.access import bearer_token, conn, not_found
from kapacitor.store import codec
from kapacitor.store.base import NO_STREAM, EventStore, append_skipping_taken_ids

MAX_LINE = 256 << 20
"""The largest transcript line live capture delivers (bytes)."""
MAX_BODY = 3 * MAX_LINE + (1 << 20)
"""Largest batch accepted, decoded: one ``MAX_LINE`` line and its JSON escaping.
Clients send a line that large alone in its batch, gzip-compressed."""
PART_BYTES = 1 << 20
"""Line text normalized and appended at a time (one transaction each)."""
CONCURRENT = 2
"""Batches parsed and normalized at once; more wait (bounds the server's memory)."""
_slots = threading.BoundedSemaphore(CONCURRENT)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

router = APIRouter()


class BadBatch(Exception):
    """The request cannot be ingested; ``status`` says why (4xx)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class IngestResult:
    added: int
    skipped: int

    def as_json(self) -> dict[str, int]:
        return {"added": self.added, "skipped": self.skipped}


def ingest(store: EventStore, session_id: str, body: bytes | bytearray, account: str = "") -> IngestResult:
    """Validate a batch, normalize it and append it, part by part; ``account`` is
    the user whose token sent it ("" for none)."""
    with _slots:
        batch = parse_batch(session_id, body)
        added = skipped = 0
        for streams in event_parts(session_id, batch, session_repository(store, session_id, batch), account):
            more, dropped = append_skipping_taken_ids(store, streams)
            added, skipped = added + more, skipped + dropped
    return IngestResult(added, skipped)


def parse_batch(session_id: str, body: bytes | bytearray) -> dict[str, Any]:
    """The batch as a dict, checked field by field (``BadBatch`` names the first problem)."""
    if not layout.valid_session_id(session_id):
        raise BadBatch(400, f"invalid session id {session_id[:80]!r}")
    try:  # the stdlib, not orjson: orjson builds a whole document first, ~14x the body at its peak
        batch = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadBatch(400, f"body is not JSON: {exc}") from None
    _check(isinstance(batch, dict), "body must be a JSON object")
    _check(batch.get("v") == 1, f"unsupported batch version {batch.get('v')!r} (this server speaks 1)")
    _check(batch.get("agent", AGENT) == AGENT, f"unsupported agent {batch.get('agent')!r}")
    if batch.get("session_id", session_id) != session_id:
        raise BadBatch(422, f"batch is for session {batch['session_id']!r}, posted to {session_id!r}")
    _check(isinstance(batch.get("context", {}), dict), "context must be an object")
    hook = batch.get("hook")
    if hook is not None:
        _check(isinstance(hook, dict) and isinstance(hook.get("event"), str) and isinstance(hook.get("at"), str)
               and isinstance(hook.get("payload"), dict), "hook must be {event: str, at: str, payload: object}")
        if hook["payload"].get("session_id", session_id) != session_id:
            raise BadBatch(422, f"hook payload is for session {hook['payload']['session_id']!r}, posted to {session_id!r}")
    transcripts = batch.get("transcripts", [])
    _check(isinstance(transcripts, list), "transcripts must be a list")
    for t in transcripts:
        _check(isinstance(t, dict) and isinstance(t.get("path"), str) and isinstance(t.get("lines"), list),
               "each transcript must be {path: str, lines: list}")
        _check(isinstance(t.get("meta", {}), dict), "transcript meta must be an object")
        owner, _ = layout.identity(t["path"])
        # A 2.0.x subagent file beside its parent's names no session: its records
        # do, and the normalizer pins them to this one anyway.
        if owner != session_id and not layout.is_sibling_agent(t["path"]):
            raise BadBatch(422, f"transcript {t['path']!r} belongs to session {owner!r}, posted to {session_id!r}")
        for line in t["lines"]:
            _check(isinstance(line, dict) and _count(line.get("o")) and _count(line.get("n"))
                   and (isinstance(line.get("t"), str) or isinstance(line.get("b"), str)),
                   "each line must be {o: offset, n: line number, t: text | b: base64}")
    return batch


_STARTED_WITHIN = 20
"""Events at the head of a session's stream searched for its ``SessionStarted``
(the first hooks' events may come before it)."""


def session_repository(store: EventStore, session_id: str, batch: dict[str, Any]) -> str | None:
    """The session's GitHub repository (``owner/repo``), for the redaction off
    switch: what the batch's context says (the client's reading of the git
    remote of the session's cwd), else what the session's ``SessionStarted``
    kept from an earlier batch's context (a hook's or a subagent's batch
    carries none). Looked for only when this server's config switches
    redaction off for some repository; None when unknown (then the batch is
    masked)."""
    if not redact.default(accelerate=True).off_repositories:
        return None
    repository = (batch.get("context") or {}).get("repository")
    if not repository:
        for event in store.read_stream(agent_session_stream(session_id), 0, limit=_STARTED_WITHIN):
            if event.type == "SessionStarted":
                repository = ((event.data.get("extensions") or {}).get(EXT) or {}).get("repository")
                break
    return repository if isinstance(repository, str) and repository else None


def attributed(context: dict[str, Any], account: str) -> dict[str, Any]:
    """Who a session's user is, the one rule: the signed-in account whose token
    sent it (a team server), else the git ``user.email`` of its directory, else
    the OS login (``capture.gitinfo``, on the developer's machine). The git
    identity a token's session came with stays beside it as ``git_user``."""
    if not account:
        return context
    return context | {"user": account, "git_user": context.get("user", "")}


def event_parts(session_id: str, batch: dict[str, Any], repository: str | None = None,
                account: str = "") -> Iterator[dict[str, list[NewEvent]]]:
    """The events of a (parsed) batch by stream, in order, in parts of about
    ``PART_BYTES`` of line text: transcript lines, then the hook (in the last
    part). Each line is released once normalized, so a part's events are the
    only ones alive. ``repository``: the session's (``session_repository``);
    ``account`` (a user's token) is the session's user (``attributed``)."""
    streams: dict[str, list[NewEvent]] = {}
    size = 0
    context = attributed(redact.default(accelerate=True).redact_json(batch.get("context") or {}), account)
    for t in batch.get("transcripts", []):
        _, agent_id = layout.identity(t["path"])
        source = Source(session_id=session_id, agent_id=agent_id, subagent_meta=t.get("meta") or {}, from_records=False)
        redactor = redact.default(accelerate=True).for_location(transcript=t["path"], repository=repository)
        normalizer = Normalizer(source, lambda _cwd: context, redactor)
        lines, t["lines"] = t["lines"], []
        for i, line in enumerate(lines):
            lines[i] = None
            raw = _line_bytes(line)
            for stream, event in line_events(normalizer, raw, line["o"], line["n"]):
                streams.setdefault(stream, []).append(event)
            size += len(raw)
            if size >= PART_BYTES:
                yield streams
                streams, size = {}, 0
    hook = batch.get("hook")
    if hook is not None:
        try:
            events = storable(hook_events(session_id, hook, repository))
        except (Exception, RecursionError) as exc:  # noqa: BLE001 — say a payload nested too deep to encode
            reason = f"payload could not be stored: {type(exc).__name__}: {exc}"[:500]
            events = hook_events(session_id, {**hook, "payload": {"session_id": session_id, "kapacitor_error": reason}}, repository)
        streams.setdefault(agent_session_stream(session_id), []).extend(events)
    if streams:
        yield streams


def line_events(normalizer: Normalizer, raw: bytes, offset: int, line_no: int) -> list[Routed]:
    """A line's events, or, when it cannot be mapped or its events cannot be
    encoded (say JSON nested too deep for the encoder), the line kept whole as an
    unknown record: one line never refuses a batch."""
    try:
        routed = normalizer.feed(raw, offset, line_no)
        storable([event for _, event in routed])
        return routed
    except (Exception, RecursionError) as exc:  # noqa: BLE001 — any record shape at all
        return [normalizer.unmappable(raw, offset, line_no, f"could not be mapped: {type(exc).__name__}: {exc}"[:500])]


def storable(events: list[NewEvent]) -> list[NewEvent]:
    """``events``, once each encoded as the store will encode it, so that a failure
    shows here, per line, and not in the append. Data nested deeper than orjson
    goes (254 levels) is refused here rather than left to the stdlib fallback,
    whose limit depends on how deep the stack is where it runs."""
    for event in events:
        for value in (event.data, event.metadata):
            try:
                orjson.dumps(value)
            except orjson.JSONEncodeError as exc:
                if "ecursion" in str(exc):
                    raise
                codec.dumps(value)  # lone surrogates: the stdlib escapes them
    return events


def hook_events(session_id: str, hook: dict[str, Any], repository: str | None = None) -> list[NewEvent]:
    """``HookReceived`` for a payload (secrets masked, but in the session's
    ``repository`` or directory where the config switches redaction off), plus
    ``SessionEnded`` for SessionEnd. The id comes from the payload and the
    hook's time: a resend is the same event."""
    event, at = hook["event"], hook["at"]
    payload = hook["payload"]
    redactor = redact.default(accelerate=True).for_location(str(payload.get("cwd") or ""), str(payload.get("transcript_path") or ""),
                                                            repository)
    text = redactor.redact(codec.dumps(payload).decode("utf-8", "surrogatepass"))
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    metadata = {
        SCHEMA_VERSION_METADATA_KEY: SCHEMA_VERSION,
        "agent": {"name": AGENT, "version": ""},
        "source": {"session_id": session_id, "hook": event},
    }
    payload = codec.loads(text)
    out = [to_new_event(HookReceived(timestamp=at, hook_event_name=event, extensions={EXT: payload}),
                        event_id(AGENT, session_id, "hook", event, at, digest), metadata)]
    if event == "SessionEnd":
        ended = SessionEnded(timestamp=at, reason=str(payload.get("reason", "")), extensions={EXT: {"hook_id": out[0].id}})
        out.append(to_new_event(ended, event_id(AGENT, session_id, "SessionEnded", at), metadata))
    return out


def _line_bytes(line: dict[str, Any]) -> bytes:
    if "t" in line:
        return line["t"].encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(line["b"], validate=True)
    except ValueError:
        raise BadBatch(400, f"line {line['n']}: 'b' is not base64") from None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BadBatch(400, message)


# --- HTTP ---------------------------------------------------------------------


def server_token(request: Request) -> str:
    """The bearer token this server requires (set by ``create_app``); empty means
    open to this machine only."""
    return str(request.app.state.ingest_token)


def authorize(request: Request) -> str:
    """Who may post: a user's token (returns the user, who will own the session),
    the server's token, or, on a server with neither, this machine (returns "").
    The scheme of ``Authorization: Bearer <token>`` is matched in any case."""
    sent = bearer_token(request)
    if sent is not None:
        found = accounts.user_for_token(conn(request), sent)
        if found is not None:
            return found[0].name
    token = server_token(request)
    if token:
        if sent is None or not hmac.compare_digest(sent.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
    elif request.app.state.auth:
        raise HTTPException(401, "a user's token is required (kapacitor tokens create --user NAME)",
                            headers={"WWW-Authenticate": "Bearer"})
    elif sent is not None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    elif (request.client.host if request.client else "") not in LOOPBACK:
        raise HTTPException(403, "this server has no token: ingest is open to 127.0.0.1 only (set KAPACITOR_TOKEN)")
    return ""


def claim(request: Request, session_id: str, owner: str) -> None:
    """Make ``owner`` the owner of a session the store does not hold yet (or let
    them on if it is theirs). A session another user owns, or one stored without
    an owner (imported on the server: admins only), is not theirs to write, and
    the answer is what a read of it would answer: 403 if ``owner`` may see it
    (they know it exists), else the very 404 every read route gives for a session
    they may not see. Both keep the batch in the client's spool, in order
    (``capture.sender.classify``): nothing is lost, nothing is set aside."""
    if not owner:
        return
    db = conn(request)
    current = accounts.session_owner(db, session_id)
    if current == owner:
        return
    if not current and request.app.state.store.stream_version(agent_session_stream(session_id)) == NO_STREAM:
        current = accounts.claim_session(db, session_id, owner)  # another user's, if they claimed it first
        if current == owner:
            return
    user = accounts.get_user(db, owner)
    if not Viewer(owner, bool(user and user.admin)).may_see_session(db, session_id):
        raise not_found(f"session {session_id!r}")
    if current:
        raise HTTPException(403, f"session {session_id!r} belongs to another user")
    raise HTTPException(403, f"session {session_id!r} was stored without an owner (imported on the server): it is not yours to write")


async def read_body(request: Request) -> bytearray:
    """The body, gunzipped when ``Content-Encoding: gzip``, refused with 413 as soon
    as it (decoded) passes ``MAX_BODY``."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise HTTPException(415, f"content encoding {encoding!r} is not supported (gzip is)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise HTTPException(413, f"batch of {int(length):,} bytes; the limit is {MAX_BODY:,}")
    inflate = zlib.decompressobj(wbits=31) if encoding == "gzip" else None
    body = bytearray()
    async for chunk in request.stream():
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, MAX_BODY + 1 - len(body))
            except zlib.error as exc:
                raise HTTPException(400, f"body is not gzip: {exc}") from None
        if len(body) + len(chunk) > MAX_BODY or (inflate is not None and inflate.unconsumed_tail):
            raise HTTPException(413, f"batch over the limit of {MAX_BODY:,} bytes")
        body += chunk
    if inflate is not None and not inflate.eof:
        raise HTTPException(400, "body is not gzip: cut short")
    return body


@router.post("/api/ingest/sessions/{session_id}/batches")
async def post_batch(session_id: str, request: Request) -> dict[str, int]:
    """Ingest one batch of hook payload and transcript lines for a session (JSON only)."""
    owner = authorize(request)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise HTTPException(415, "a batch must be sent as application/json")
    if owner and layout.valid_session_id(session_id):
        await run_in_threadpool(claim, request, session_id, owner)
    body = await read_body(request)
    try:
        result = await run_in_threadpool(ingest, request.app.state.store, session_id, body, owner)
    except BadBatch as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return result.as_json()
