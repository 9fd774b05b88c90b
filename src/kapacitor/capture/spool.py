"""Per-session client state in the state dir: transcript offsets, the spool, locks.

For each session ``<state>/sessions/`` holds:

- ``<id>.json``: the transcript offsets (byte offset and line number of the next
  unsent line, per transcript file), the spool's delivered position, the cwd and
  its git context. An offset means: everything before it was delivered to the
  server *or* is in the spool. Written with a rename, so it is never half written.
- ``<id>.lock``: the send lock. Whoever reads transcripts, sends, drains the spool
  or moves an offset holds it (a hook, the follower, ``kapacitor sync``), so no
  line is read twice by two senders and none is skipped. While its holder
  uploads a large batch (seconds) the file says so (``uploading``): a hook
  then spools at once instead of waiting for a lock it would not get.
- ``<id>.spool``: batches the server did not take, one JSON line each, appended
  with ``O_APPEND`` under ``flock`` and fsync'd before the offsets move past them.
  Drained in order; emptied (under the same ``flock``) once all is delivered.
- ``<id>.held-<token>``: a huge hook payload's batch, written (masked) by the
  detached process the hook hands it to (``capture.hook``); the spool holds its
  place as one line ``{"held": token}``, appended before the hook returns. The
  file is locked while that process masks. A drain passes over a place still
  being masked and delivers the batches after it (their lines past
  ``spool_pos`` kept in ``spool_ahead``), then the held batch once written: it
  holds a hook payload alone, whose events' place among the session's
  nothing reads (docs/reliability.md, "Live capture").
- ``<id>.aside``: batches the server refused for good (a 4xx that a resend cannot
  change today), set aside so they never block the ones after them, and
  retried when their cause may be gone (``capture.aside``).

Stdlib only: the hook runs this on every agent action.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import time
from collections.abc import Iterator

from kapacitor.capture.client_config import state_dir


def sessions_dir() -> str:
    return os.path.join(state_dir(), "sessions")


def session_file(session_id: str, suffix: str) -> str:
    """The path of one of a session's files in the state dir (``suffix``: ``.json``, ``.spool``, ...)."""
    return os.path.join(sessions_dir(), session_id + suffix)


class SessionState:
    """What the client remembers about one session between hook runs.
    (Plain classes here: ``dataclasses`` costs the hook an import of ``inspect``.)"""

    FIELDS = ("transcript", "cwd", "context", "offsets", "spool_pos", "spool_ahead", "ended", "since", "foreign", "failure")
    SIBLING_SLACK = 3600.0
    """2.0.x subagent files (``layout.sibling_agent_transcripts``) older than the
    session's state by more than this (seconds) are not its live subagents."""

    def __init__(self, session_id: str, **saved: object):
        self.session_id = session_id
        self.transcript: str = str(saved.get("transcript") or "")
        self.cwd: str = str(saved.get("cwd") or "")
        context = saved.get("context")
        self.context: dict | None = context if isinstance(context, dict) else None
        offsets = saved.get("offsets")
        self.offsets: dict[str, list[int]] = offsets if isinstance(offsets, dict) else {}
        spool_pos = saved.get("spool_pos")
        self.spool_pos: int = spool_pos if isinstance(spool_pos, int) else 0
        ahead = saved.get("spool_ahead")
        self.spool_ahead: list[list[int]] = ahead if isinstance(ahead, list) else []
        """[start, end) of the spool lines past ``spool_pos`` already delivered:
        they overtook a held place whose batch was still being masked."""
        self.ended: bool = saved.get("ended") is True
        since = saved.get("since")
        self.since: float = since if isinstance(since, (int, float)) else time.time() - self.SIBLING_SLACK
        foreign = saved.get("foreign")
        self.foreign: list[str] = foreign if isinstance(foreign, list) else []
        """2.0.x subagent files beside the main transcript whose records name another session."""
        failure = saved.get("failure")
        self.failure: dict | None = failure if isinstance(failure, dict) else None
        """Why the last pass left batches in the spool: ``{"at": epoch seconds,
        "status": the server's HTTP status (0: no answer), "detail": its answer}``;
        None since a pass delivered everything it tried (``shipper.ship``). What
        ``kapacitor doctor`` names, without asking the server again."""

    def as_json(self) -> dict:
        return {"session_id": self.session_id, **{k: getattr(self, k) for k in self.FIELDS}}


def load_state(session_id: str) -> SessionState:
    try:
        with open(session_file(session_id, ".json"), "rb") as handle:
            saved = json.loads(handle.read())
    except (OSError, ValueError):
        return SessionState(session_id)
    if not isinstance(saved, dict):
        return SessionState(session_id)
    return SessionState(session_id, **{k: v for k, v in saved.items() if k in SessionState.FIELDS})


def save_state(state: SessionState) -> None:
    path = session_file(state.session_id, ".json")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(opened(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", closefd=True) as handle:
        handle.write(json.dumps(state.as_json()))
    os.replace(tmp, path)


def known_sessions() -> list[str]:
    """Every session this client has state for."""
    try:
        names = [e.name for e in os.scandir(sessions_dir())]
    except OSError:
        return []
    return sorted(n.removesuffix(".json") for n in names if n.endswith(".json"))


def opened(path: str, flags: int) -> int:
    """``os.open`` for the user alone (mode 0600), making the state dir (0700) if needed."""
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)  # spools hold transcript text
        return os.open(path, flags, 0o600)


class exclusive:  # noqa: N801 — used like contextlib's helpers
    """``with exclusive(path, wait) as held:`` holds ``flock`` on ``path`` if it can be
    had within ``wait`` seconds; ``held`` says whether it was. The kernel drops the
    lock when the process dies (kill -9 included). ``unless_uploading``: give up
    at once when the holder says it is uploading (``uploading``); ``uploader``
    is then its pid (else 0)."""

    def __init__(self, path: str, wait: float, *, write_pid: bool = False, unless_uploading: bool = False):
        self.path, self.wait, self.fd, self.write_pid = path, wait, -1, write_pid
        self.unless_uploading, self.uploader = unless_uploading, 0

    def __enter__(self) -> bool:
        self.fd = opened(self.path, os.O_RDWR | os.O_CREAT)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if self.write_pid:  # who holds it, for people and tests
                    os.ftruncate(self.fd, 0)
                    os.pwrite(self.fd, str(os.getpid()).encode(), 0)
                return True
            except BlockingIOError:
                if self.unless_uploading:
                    self.uploader = _uploader(self.fd)
                if self.uploader or time.monotonic() >= deadline:
                    return False
                time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def send_lock(session_id: str, wait: float, *, unless_uploading: bool = False) -> exclusive:
    """The session's send lock, waited for up to ``wait`` seconds (a hook: not at
    all while its holder uploads a large batch, with ``unless_uploading``)."""
    return exclusive(session_file(session_id, ".lock"), wait, unless_uploading=unless_uploading)


_UPLOADING = b"uploading "


class uploading:  # noqa: N801 — used like contextlib's helpers
    """``with uploading(session_id):`` around a long upload by the holder of the
    session's send lock: the lock file names the upload and its pid meanwhile, so
    a hook that finds the lock taken spools at once rather than waiting for it
    (``send_lock(unless_uploading=True)``). Left behind by a killed holder it is
    read only once someone else holds the lock, and its pid is gone then (were the
    pid reused, a hook would spool where it could have waited: nothing is lost)."""

    def __init__(self, session_id: str):
        self.path, self.fd = session_file(session_id, ".lock"), -1

    def __enter__(self) -> None:
        self.fd = opened(self.path, os.O_WRONLY | os.O_CREAT)
        os.ftruncate(self.fd, 0)  # a longer pid left behind would show through
        os.pwrite(self.fd, _UPLOADING + str(os.getpid()).encode(), 0)

    def __exit__(self, *exc: object) -> None:
        try:
            os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)


def _uploader(fd: int) -> int:
    """The pid of the live process uploading under the lock ``fd`` is of, else 0."""
    said = os.pread(fd, 32, 0)
    if not said.startswith(_UPLOADING):
        return 0
    try:
        pid = int(said[len(_UPLOADING):])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return 0
    except PermissionError:  # alive, another user's
        pass
    return pid


def follower_lock(session_id: str, *, write_pid: bool = False) -> exclusive:
    """Held by the session's follower for its whole life (its pid inside): one
    follower per session."""
    return exclusive(session_file(session_id, ".follow.lock"), 0, write_pid=write_pid)


def spool_append(session_id: str, entry: bytes) -> None:
    """Add one batch to the session's spool, durably, safe beside other writers
    (``append_line``)."""
    append_line(session_file(session_id, ".spool"), entry)


def append_line(path: str, line: bytes) -> None:
    """Append ``line`` (a newline added) to a JSON-lines file under ``flock``,
    fsync'd. All or nothing: a write cut short (a full disk) is taken back and
    raises ``OSError``, so the caller keeps what it was writing; a line a dead
    writer left cut short is dropped first, so it cannot swallow this one."""
    fd = opened(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            size = _last_line_end(fd, size)
            os.ftruncate(fd, size)
        data = line.rstrip(b"\n") + b"\n"
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"{path}: only {written:,} of {len(data):,} bytes written (disk full?)")
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def _last_line_end(fd: int, size: int) -> int:
    """The offset just after the file's last newline (0 if none)."""
    end = size
    while end > 0:
        start = max(0, end - (64 << 10))
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def spool_hold(session_id: str) -> tuple[str, int]:
    """Keep a place in the session's spool for a batch still to be written:
    (its token, the open and locked ``.held-<token>`` file to write it into with
    ``fill_hold``). The lock is taken before the place is appended, so a drain
    never takes a place whose batch is being written for lost."""
    token = f"{time.time_ns():x}-{os.getpid()}"
    fd = opened(session_file(session_id, f".held-{token}"), os.O_RDWR | os.O_CREAT | os.O_EXCL)
    fcntl.flock(fd, fcntl.LOCK_EX)
    spool_append(session_id, json.dumps({"held": token}).encode())
    return token, fd


def fill_hold(fd: int, body: bytes) -> None:
    """Write a held place's batch (durably) and let drains take it (closes ``fd``)."""
    try:
        data = memoryview(body.rstrip(b"\n") + b"\n")
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


def held_token(entry: bytes) -> str | None:
    """The token of a spool line that holds a place (``spool_hold``), else None."""
    if not entry.startswith(b'{"held":'):
        return None
    token = json.loads(entry).get("held")
    return token if isinstance(token, str) else None


def held_batch(session_id: str, token: str) -> bytes | None:
    """A held place's batch; None while it is being written; ``b""`` when the
    process writing it died first (its file is unlocked and incomplete)."""
    try:
        fd = os.open(session_file(session_id, f".held-{token}"), os.O_RDONLY)
    except FileNotFoundError:
        return b""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        with open(fd, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(fd)
    return data.rstrip(b"\n") if data.endswith(b"\n") else b""


def held_size(session_id: str, token: str) -> int:
    """Bytes written so far for a held place (0 if none or no file)."""
    try:
        return os.stat(session_file(session_id, f".held-{token}")).st_size
    except OSError:
        return 0


def drop_hold(session_id: str, token: str) -> None:
    """Remove a held place's file once its line is delivered (and that saved)."""
    try:
        os.unlink(session_file(session_id, f".held-{token}"))
    except FileNotFoundError:
        pass


def spool_read(state: SessionState) -> Iterator[tuple[int, bytes]]:
    """The spooled batches not yet delivered, oldest first, each with the spool
    position after it; read one at a time, so a drain that fails at the first
    one (the server is still down) does not read the rest. Called under the send
    lock, so the spool cannot be emptied meanwhile; appends are whole lines in
    one ``write``, so no read lock is needed (a partial last line is left).
    A spool emptied since the state was saved resets ``state``'s positions
    here, before the first line is read."""
    try:
        handle = open(session_file(state.session_id, ".spool"), "rb")  # noqa: SIM115 — the iterator's lifetime
    except FileNotFoundError:
        return iter(())
    if state.spool_pos > os.fstat(handle.fileno()).st_size:  # emptied after we last saved
        state.spool_pos, state.spool_ahead = 0, []
    return _lines_from(handle, state.spool_pos)


def _lines_from(handle: io.BufferedReader, pos: int) -> Iterator[tuple[int, bytes]]:
    with handle:
        handle.seek(pos)
        for line in handle:
            if not line.endswith(b"\n"):
                return
            pos += len(line)
            yield pos, line.rstrip(b"\n")


def spool_delivered(state: SessionState, pos: int, ahead: list[list[int]] | None = None) -> None:
    """Everything before ``pos`` reached the server, and the lines ``ahead`` past
    it ([start, end) each, see ``SessionState.spool_ahead``): save that, and empty
    the spool when nothing is left (saving position 0 first, so a crash in
    between can only cause a harmless resend, never a skip)."""
    path = session_file(state.session_id, ".spool")
    fd = opened(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_size == pos:
            state.spool_pos, state.spool_ahead = 0, []
            save_state(state)
            os.ftruncate(fd, 0)
        else:
            state.spool_pos = pos
            state.spool_ahead = [r for r in (state.spool_ahead if ahead is None else ahead) if r[0] >= pos]
            save_state(state)
    finally:
        os.close(fd)


def spool_pending(state: SessionState) -> int:
    """Bytes of the session's spool not yet delivered."""
    try:
        size = os.stat(session_file(state.session_id, ".spool")).st_size
    except OSError:
        return 0
    return max(0, size - state.spool_pos - sum(end - start for start, end in state.spool_ahead))


def forget(state: SessionState, older_than: float) -> bool:
    """Remove a finished session's state and spool: ended, nothing spooled, every
    transcript read to its end and unchanged for ``older_than`` seconds, no
    follower. (Were it resumed later, its transcripts would be sent again from
    the start, which the store ignores: the ids are the same.) The empty lock
    files stay: deleting a lock file someone may be about to open would let two
    processes lock two different files."""
    sid = state.session_id
    if not state.ended or spool_pending(state):
        return False
    for path, (offset, _) in state.offsets.items():
        try:
            info = os.stat(path)
        except OSError:
            continue  # the transcript is gone: nothing left to send
        if info.st_size != offset or time.time() - info.st_mtime < older_than:
            return False
    with send_lock(sid, 0) as mine, follower_lock(sid) as no_follower:
        if not (mine and no_follower):
            return False
        for suffix in (".json", ".spool"):
            try:
                os.unlink(session_file(sid, suffix))
            except FileNotFoundError:
                pass
    return True
