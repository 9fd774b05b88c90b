"""Ship one session to the server: drain its spool, read what its transcripts
gained since their offsets, send that with the hook payload as one batch, and
spool the batch if the server does not take it. Stdlib only; shared by the hook,
the follower and ``kapacitor sync``, all under the session's send lock.

A batch (the ingest API's request body) is JSON::

    {"v": 1, "agent": "claude-code", "session_id": "...",
     "hook": {"event": "PostToolUse", "at": "2026-...Z", "payload": {...}},   # optional
     "context": {"user": ..., "repository": ..., "remote_url": ...},          # with main lines
     "transcripts": [{"path": "...", "meta": {...},                           # meta: subagents
                      "lines": [{"o": byte offset, "n": line number, "t": text}  # or "b": base64
                                , ...]}]}

Only complete lines (ending in a newline) are sent; blank lines are counted, not sent.
"""

from __future__ import annotations

import json
import os
import time

from kapacitor.capture import layout, sender
from kapacitor.capture.client_config import ClientConfig, log_failure, state_dir
from kapacitor.capture.spool import (
    SessionState,
    drop_hold,
    held_batch,
    held_size,
    held_token,
    load_state,
    save_state,
    send_lock,
    spool_append,
    spool_delivered,
    spool_read,
    uploading,
)
from kapacitor.normalize import redact

AGENT = "claude-code"


HASTY_BATCH = 1 << 20
"""A hook sends no batch larger than this (bytes): a huge transcript line, read
or spooled, is the follower's (started by the hook), since the agent waits for
the hook."""


class ShipResult:
    """What one pass did: batches ``sent`` (spooled ones included), ``spooled``,
    ``rejected`` by the server for good (logged, set aside); transcript ``lines``
    read; ``more`` when there is more to send than this pass took (the read
    budget ran out, or a hook left a huge line to the follower): call again;
    ``locked`` whether the send lock was had; ``stuck``: why the spool could
    not be delivered ("" when it was), ``status`` the server's HTTP status
    then (0: no answer); ``masking``: held places passed over, their huge
    hook payloads still being masked."""

    def __init__(self) -> None:
        self.sent = self.spooled = self.rejected = self.lines = self.masking = self.status = 0
        self.more, self.locked, self.stuck = False, True, ""


def utc_stamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def ship(
    session_id: str,
    config: ClientConfig,
    *,
    transcript: str = "",
    cwd: str = "",
    hook: dict | None = None,
    ended: bool | None = None,
    budget: int = 1 << 20,
    lock_wait: float = 1.0,
    hasty: bool = False,
) -> ShipResult:
    """One pass for one session; never raises for a server problem (it spools).
    ``ended`` marks the session ended (SessionEnd) or live again (SessionStart).
    ``hasty`` (a hook: the agent waits for it) waits less for an answer, spools
    without trying while the server was recently too slow to answer, and does
    not wait for the send lock while its holder uploads a large batch."""
    result = ShipResult()
    skip = _server_slow() if hasty else None
    lock = send_lock(session_id, lock_wait, unless_uploading=hasty)
    with lock as locked:
        if not locked:  # another sender is busy: keep the payload, it will read the lines
            result.locked = False
            if hook is not None:
                spool_append(session_id, hook_batch(session_id, hook, cwd))
                result.spooled = 1
                if lock.uploader:
                    log_failure(f"session {session_id}: process {lock.uploader} is uploading a large batch:"
                                " spooled the hook's payload without waiting for the send lock")
            return result
        state = load_state(session_id)
        state.transcript = transcript or state.transcript
        state.cwd = cwd or state.cwd
        state.ended = state.ended if ended is None else ended
        stuck = skip or _drain(state, config, result, hasty)
        failure = stuck
        files, advances, more = _read_new(state, budget, whole_lines=not hasty)
        result.more = result.more or more
        result.lines = sum(len(f["lines"]) for f in files)
        if hook is not None or files:
            context = _context(state) if any("meta" not in f for f in files) else None
            body = _encode(session_id, hook, context, files, state.cwd, _repository(state, state.cwd))
            outcome = stuck or _deliver(config, session_id, body, result, hasty)  # never overtake the spool
            if outcome.kind == sender.FAILED:
                spool_append(session_id, body)
                result.spooled += 1
                if not outcome.huge:
                    failure = outcome
                    log_failure(f"session {session_id}: spooled a batch: {outcome.detail}")
        if failure is not None:
            result.stuck, result.status = failure.detail, failure.status
            state.failure = {"at": time.time(), "status": failure.status, "detail": failure.detail}
        elif not result.more:
            state.failure = None
        state.offsets.update(advances)
        save_state(state)
    return result


def hook_batch(session_id: str, hook: dict, cwd: str) -> bytes:
    """A batch of a hook payload alone (no transcript lines: whoever holds the
    send lock reads those), secrets masked."""
    return _encode(session_id, hook, None, [], cwd, _repository(None, cwd))


def _deliver(config: ClientConfig, session_id: str, body: bytes, result: ShipResult, hasty: bool) -> sender.Outcome:
    """POST one batch and count it; a batch refused for good is set aside (kept,
    logged: keeping it in the spool would block every later one). A timeout
    marks the server slow. ``hasty`` (a hook) waits ``HOOK_TIMEOUT`` and leaves a
    batch over ``HASTY_BATCH`` untried (``huge``: the follower's); the others
    wait as long as the batch's size needs."""
    if hasty and len(body) > HASTY_BATCH:
        result.more = True
        return sender.Outcome(sender.FAILED, f"a batch of {len(body):,} bytes is the follower's", huge=True)
    timeout = sender.HOOK_TIMEOUT if hasty else sender.patient_timeout(len(body))
    if len(body) > HASTY_BATCH:  # seconds: meanwhile hooks do not wait for the send lock
        with uploading(session_id):
            outcome = sender.post(config, session_id, body, timeout)
    else:
        outcome = sender.post(config, session_id, body, timeout)
    if outcome.slow:
        _mark_slow(True)
    if outcome.kind == sender.SENT:
        result.sent += 1
        _mark_slow(False)
    elif outcome.kind == sender.REJECTED:
        result.rejected += 1
        from kapacitor.capture.aside import set_aside  # rare: the hook does not pay the import

        path = set_aside(session_id, body, outcome.detail, utc_stamp(), config)
        log_failure(f"session {session_id}: batch refused for good, set aside in {path}: {outcome.detail}")
    return outcome


def _drain(state: SessionState, config: ClientConfig, result: ShipResult, hasty: bool) -> sender.Outcome | None:
    """Deliver the spool in order; the failure that stopped it, or None. A
    held place (``spool.spool_hold``) whose batch is still being masked is
    passed over (counted in ``result.masking``): the batches after it are
    delivered now, it once written (and by a hook only if small: else it is
    left to the follower, and passed over too). It holds a hook payload
    alone, whose events' place among the session's nothing reads (see
    docs/reliability.md), so a small batch never waits seconds for a huge
    one. Lines delivered past a place passed over are kept in
    ``state.spool_ahead`` so they are not sent again."""
    spooled = spool_read(state)
    start = done = state.spool_pos
    ahead = [list(r) for r in state.spool_ahead]
    sent_ahead = {r[0] for r in ahead}
    failure, held, begin = None, [], start
    for end, body in spooled:
        line, begin = [begin, end], end
        if line[0] in sent_ahead:
            done = end if done == line[0] else done
            continue
        token = held_token(body)
        if token is not None:
            if hasty and held_size(state.session_id, token) > HASTY_BATCH:  # the follower's (see ``_deliver``)
                result.more = True
                continue
            batch = held_batch(state.session_id, token)
            if batch is None:
                result.masking += 1
                continue
            if not batch:
                log_failure(f"session {state.session_id}: a hook payload was lost: the process masking it died")
            body = batch
        if body:
            outcome = _deliver(config, state.session_id, body, result, hasty)
            if outcome.kind == sender.FAILED:
                failure = outcome
                break
        if done == line[0]:
            done = end
        else:
            ahead.append(line)
        if token is not None:
            held.append(token)
    if done != start or ahead != state.spool_ahead:
        spool_delivered(state, done, ahead)
        for token in held:
            drop_hold(state.session_id, token)
    return failure


SLOW_BACKOFF = 30.0
"""After a timeout, hooks spool without trying for this long (the follower and
``kapacitor sync`` keep trying, and clear the mark when the server answers)."""


def _slow_mark() -> str:
    return os.path.join(state_dir(), "server-slow")


def _server_slow() -> sender.Outcome | None:
    """A failure to spool with, if the server timed out in the last SLOW_BACKOFF s."""
    try:
        age = time.time() - os.stat(_slow_mark()).st_mtime
    except OSError:
        return None
    return sender.Outcome(sender.FAILED, f"the server timed out {age:.0f} s ago: spooled without trying") if age < SLOW_BACKOFF else None


def _mark_slow(slow: bool) -> None:
    try:
        if slow:
            os.makedirs(state_dir(), exist_ok=True)
            with open(_slow_mark(), "w"):
                pass
        else:
            os.unlink(_slow_mark())
    except OSError:
        pass


def _read_new(state: SessionState, budget: int, *, whole_lines: bool) -> tuple[list[dict], dict[str, list[int]], bool]:
    """The new complete lines of the session's transcripts, up to ``budget`` bytes
    (and a line longer than that alone, when ``whole_lines``)."""
    if not state.transcript:
        return [], {}, False
    main = state.transcript
    files, advances, more = [], {}, False
    for path in [main, *layout.subagent_transcripts(main), *_own_siblings(state)]:
        if budget <= 0:
            more = True
            break
        offset, line_no = state.offsets.get(path, (0, 0))
        lines, end, end_line, left = _read_lines(path, offset, line_no, budget, whole_lines)
        more = more or left
        if end != offset or end_line != line_no:
            advances[path] = [end, end_line]
            budget -= end - offset
        if lines:
            entry: dict = {"path": path, "lines": lines}
            if path != main:
                entry["meta"] = _meta(path)
            files.append(entry)
    return files, advances, more


def _own_siblings(state: SessionState) -> list[str]:
    """The 2.0.x-layout subagent transcripts beside the main one that are this
    session's: those already being read, and new ones whose first record names
    it (the layout is only a hint: every session in the folder writes there).
    Files older than the session's capture, or another session's, are not read
    again (``state.foreign``); one without a complete first line waits."""
    own = []
    for path in layout.sibling_agent_transcripts(state.transcript):
        if path in state.offsets:
            own.append(path)
            continue
        if path in state.foreign:
            continue
        try:
            if os.stat(path).st_mtime < state.since:
                continue
        except OSError:
            continue
        named = layout.names_session(path)
        if named == state.session_id:
            own.append(path)
        elif named is not None:
            state.foreign.append(path)
    return own


def _read_lines(path: str, offset: int, line_no: int, budget: int, whole_line: bool) -> tuple[list[dict], int, int, bool]:
    """(lines, new offset, new line number, more left) from ``offset`` on. A first
    line longer than ``budget`` is taken whole when ``whole_line``, else left."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, 2)
            if offset > size:  # replaced or truncated: read it all again (ids dedupe)
                offset = line_no = 0
            if offset == size:
                return [], offset, line_no, False
            handle.seek(offset)
            data = handle.read(min(size - offset, budget))
            if b"\n" not in data:  # one line longer than the budget: take it whole, alone
                if not whole_line:
                    return [], offset, line_no, True
                data += handle.read(size - offset - len(data))
    except OSError:
        return [], offset, line_no, False
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset, line_no, False
    lines = []
    for raw in data[: end + 1].split(b"\n")[:-1]:
        body = raw.rstrip(b"\r")
        if body.strip():
            try:
                lines.append({"o": offset, "n": line_no, "t": body.decode("utf-8")})
            except UnicodeDecodeError:
                import base64

                lines.append({"o": offset, "n": line_no, "b": base64.b64encode(body).decode("ascii")})
        offset += len(raw) + 1
        line_no += 1
    return lines, offset, line_no, offset < size


def _meta(path: str) -> dict:
    try:
        with open(layout.meta_path(path), "rb") as handle:
            meta = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _context(state: SessionState) -> dict:
    """The cwd's repository, remote and user, worked out once per session (from
    git's config files: no ``git`` runs while the agent waits)."""
    if state.context is None:
        from kapacitor.capture.gitinfo import resolve_context

        state.context = resolve_context(state.cwd) if state.cwd else {}
    return state.context


def _repository(state: SessionState | None, cwd: str) -> str | None:
    """The session's GitHub repository (``owner/repo``) when the config switches
    redaction off for some repository (else not worked out: None): from the
    session's saved context, or from git's config files."""
    if not redact.default().off_repositories or not cwd:
        return None
    if state is not None:
        repository = _context(state).get("repository")
    else:
        from kapacitor.capture.gitinfo import repository_of

        repository = repository_of(cwd)
    return str(repository) if repository else None


def _mask(hook: dict | None, context: dict | None, files: list[dict], cwd: str, repository: str | None) -> None:
    """Mask the secrets in everything a batch carries, in place, before it is sent
    or spooled: the hook payload, each line, subagent meta, the git context.
    With the standard library only, whatever the size (a 30 MB tool output
    included: see ``redact.SCAN_MIN``). Nothing is masked for a directory or
    a ``repository`` the config switches redaction off for."""
    redactor = redact.default().for_location(cwd, files[0]["path"] if files else "", repository)
    if not redactor.enabled:
        return
    slots: list[tuple[dict, str, str]] = []  # (holder, key, how: json | text | b64)
    if hook is not None:
        slots.append((hook, "payload", "json"))
    if context:
        slots.append(({"c": context}, "c", "json"))
    for f in files:
        if f.get("meta"):
            slots.append((f, "meta", "json"))
        slots += [(line, "t", "text") if "t" in line else (line, "b", "b64") for line in f["lines"]]
    texts = []
    for holder, key, how in slots:
        value = holder[key]
        if how == "json":
            texts.append(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        elif how == "b64":
            import base64  # rare (invalid UTF-8), and costly for the hook to import

            texts.append(base64.b64decode(value).decode("utf-8", "surrogateescape"))
        else:
            texts.append(value)
    for (holder, key, how), text, masked in zip(slots, texts, redactor.redact_many(texts), strict=True):
        if masked is text:
            continue
        if how == "json":
            holder[key] = json.loads(masked)
            if key == "c":
                context.clear()
                context.update(holder[key])
        elif how == "b64":
            import base64

            holder[key] = base64.b64encode(masked.encode("utf-8", "surrogateescape")).decode("ascii")
        else:
            holder[key] = masked


def _encode(session_id: str, hook: dict | None, context: dict | None, files: list[dict], cwd: str = "",
            repository: str | None = None) -> bytes:
    """The batch as sent and spooled, secrets masked."""
    _mask(hook, context, files, cwd, repository)
    batch: dict = {"v": 1, "agent": AGENT, "session_id": session_id}
    if hook is not None:
        batch["hook"] = hook
    if context is not None:
        batch["context"] = context
    batch["transcripts"] = files
    try:  # UTF-8 as is: escaping every non-ASCII character would triple a CJK or emoji line
        return json.dumps(batch, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in the hook payload: escaped, never lost
        return json.dumps(batch, separators=(",", ":")).encode("ascii")
