"""The transcript follower: streams a live session's new lines within a second,
for the long stretches where no hook fires (a long turn, the final assistant
message written after the Stop hook, the end of a session after SessionEnd).

One per session (a ``flock`` held for its life). It shares the hook's offsets,
spool and send lock (``shipper``), so together they neither send a line twice
nor skip one, and after a ``kill -9`` a new follower resumes from the saved
offsets. It stops a few seconds after SessionEnd (the client writes its last
lines as it exits) or when the transcript has been idle for ``idle`` seconds.
While it runs it also ``sweep``s the machine: other sessions' left-behind
spools and the set-aside batches that are due (``capture.aside``).
Stdlib only: ``python -m kapacitor.capture.follower SESSION_ID`` is what the hook
starts, detached; ``kapacitor watch`` runs the same loop in the foreground.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

from kapacitor.capture import aside
from kapacitor.capture.client_config import ClientConfig, excluded, load, log_failure, state_dir
from kapacitor.capture.shipper import ship
from kapacitor.capture.spool import (
    exclusive,
    follower_lock,
    known_sessions,
    load_state,
    opened,
    spool_pending,
)
from kapacitor.normalize import redact

POLL = 0.25
GRACE = 3.0
IDLE = float(os.environ.get("KAPACITOR_FOLLOW_IDLE", "600"))
STUCK_WAIT = 4.0
"""The longest pause (seconds) between passes while the server does not take
the spool (down, or refusing the token): the pause doubles from ``poll``."""


def follow(
    session_id: str,
    config: ClientConfig | None = None,
    *,
    transcript: str = "",
    cwd: str = "",
    poll: float = POLL,
    idle: float = IDLE,
    grace: float = GRACE,
    on_stuck: Callable[[int, str], None] | None = None,
) -> bool:
    """Follow until the session ended (plus ``grace``) or went idle; False when
    another follower already has this session. The client config is read
    again on every pass (a token replaced meanwhile is used at once) unless
    ``config`` is given; a pass may also start a ``sweep`` of the machine, in a
    thread, so that delivering other sessions never delays this one's lines
    (waited for before returning: nobody waits for a follower). ``on_stuck``
    is told (status, the server's answer) when what keeps the session's
    batches in the spool changes: another HTTP status (0: no answer), or
    (0, "") once the server takes them again (``kapacitor watch`` says it)."""
    with follower_lock(session_id, write_pid=True) as mine:
        if not mine:
            return False
        last_news = time.monotonic()
        ended_at, wait, sweeper, told = None, poll, None, None
        while True:
            current = config or load()
            if (sweeper is None or not sweeper.is_alive()) and sweep_due(current):
                redact.default().key()  # made here, not by two threads at once (it is made on first use)
                sweeper = threading.Thread(target=sweep, args=(current, session_id), daemon=True)
                sweeper.start()
            result = ship(session_id, current, transcript=transcript, cwd=cwd, budget=8 << 20, lock_wait=poll)
            stuck = result.status if result.stuck else None
            if on_stuck is not None and result.locked and stuck != told:  # (a pass without the lock tried nothing)
                on_stuck(result.status, result.stuck)  # (0, "") once delivered
            told = stuck if result.locked else told
            now = time.monotonic()
            if result.lines or result.sent:
                last_news = now
            if ended_at is None and load_state(session_id).ended:
                ended_at = now
            if result.more:
                continue
            if (ended_at is not None and now - ended_at >= grace) or now - last_news >= idle:
                if sweeper is not None:
                    sweeper.join()
                return True
            wait = min(STUCK_WAIT, wait * 2) if result.stuck else poll  # the server refuses: ask it less often
            time.sleep(wait)


def _stamp() -> str:
    return os.path.join(state_dir(), "sweep.stamp")


def sweep_due(config: ClientConfig) -> bool:
    """Is a ``sweep`` due: ``aside.CHECK_EVERY`` seconds since the last one on this
    machine, or the client's server or token changed since?"""
    try:
        with open(_stamp(), "rb") as handle:
            last = handle.read().decode("ascii", "replace")
        return last != aside.fingerprint(config) or time.time() - os.stat(_stamp()).st_mtime >= aside.CHECK_EVERY
    except OSError:
        return True


def sweep(config: ClientConfig, own: str = "") -> None:
    """Deliver what no one else would: retry the set-aside batches that are due
    (``aside.retry``), and ship every other session that has something left
    (spooled batches, unread transcript lines) and no follower — a session
    that ended while the server was down, say, which no hook will wake again.
    One sweeper at a time on the machine; the followers start one when
    ``sweep_due``. Never raises (a thread of a detached process: it logs)."""
    try:
        with exclusive(os.path.join(state_dir(), "sweep.lock"), 0) as mine:
            if not mine:
                return
            fd = opened(_stamp(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                os.write(fd, aside.fingerprint(config).encode())
            finally:
                os.close(fd)
            aside.retry(config)
            for session_id in known_sessions():
                if session_id == own or not _left_behind(session_id):
                    continue
                with follower_lock(session_id) as unfollowed:
                    pass  # not held while shipping: a hook may start the session's follower meanwhile
                if unfollowed:
                    ship(session_id, config, budget=8 << 20, lock_wait=0)
    except Exception as exc:  # noqa: BLE001
        log_failure(f"sweep: {type(exc).__name__}: {exc}")


def _left_behind(session_id: str) -> bool:
    """Has the session spooled batches or transcript lines past its offsets (and
    is its directory not excluded since: nothing of such a session leaves)?"""
    state = load_state(session_id)
    if excluded(state.cwd):
        return False
    if spool_pending(state):
        return True
    files = dict(state.offsets)
    if state.transcript:
        files.setdefault(state.transcript, [0, 0])
    for path, (offset, _) in files.items():
        try:
            if os.stat(path).st_size > offset:
                return True
        except OSError:
            continue
    return False


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m kapacitor.capture.follower SESSION_ID", file=sys.stderr)
        return 2
    try:
        follow(argv[0])
    except Exception as exc:  # noqa: BLE001 — a detached process has no one else to tell
        log_failure(f"follower {argv[0]}: {type(exc).__name__}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
