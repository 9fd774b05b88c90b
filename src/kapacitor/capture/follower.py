"""The transcript follower: streams a live session's new lines within a second,
for the long stretches where no hook fires (a long turn, the final assistant
message written after the Stop hook, the end of a session after SessionEnd).

One per session (a ``flock`` held for its life). It shares the hook's offsets,
spool and send lock (``shipper``), so together they neither send a line twice
nor skip one, and after a ``kill -9`` a new follower resumes from the saved
offsets. It stops a few seconds after SessionEnd (the client writes its last
lines as it exits) or when the transcript has been idle for ``idle`` seconds.
Stdlib only: ``python -m kapacitor.capture.follower SESSION_ID`` is what the hook
starts, detached; ``kapacitor watch`` runs the same loop in the foreground.
"""

from __future__ import annotations

import os
import sys
import time

from kapacitor.capture.client_config import ClientConfig, load, log_failure
from kapacitor.capture.shipper import ship
from kapacitor.capture.spool import follower_lock, load_state

POLL = 0.25
GRACE = 3.0
IDLE = float(os.environ.get("KAPACITOR_FOLLOW_IDLE", "600"))


def follow(
    session_id: str,
    config: ClientConfig | None = None,
    *,
    transcript: str = "",
    cwd: str = "",
    poll: float = POLL,
    idle: float = IDLE,
    grace: float = GRACE,
) -> bool:
    """Follow until the session ended (plus ``grace``) or went idle; False when
    another follower already has this session."""
    config = config or load()
    with follower_lock(session_id, write_pid=True) as mine:
        if not mine:
            return False
        last_news = time.monotonic()
        ended_at = None
        while True:
            result = ship(session_id, config, transcript=transcript, cwd=cwd, budget=8 << 20, lock_wait=poll)
            now = time.monotonic()
            if result.lines or result.sent:
                last_news = now
            if ended_at is None and load_state(session_id).ended:
                ended_at = now
            if result.more:
                continue
            if (ended_at is not None and now - ended_at >= grace) or now - last_news >= idle:
                return True
            time.sleep(poll)


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
