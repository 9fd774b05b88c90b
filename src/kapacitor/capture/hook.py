"""``kapacitor hook EVENT``: what Claude Code runs on each hook event.

It reads the JSON payload from stdin, sends it with the session's new transcript
lines to the server (``shipper``), and exits 0: it never blocks or breaks the
agent. Stdlib only and nothing heavy imported (``entry`` routes here before
click is loaded). Any failure is written as one line to the capture log in the
user state dir and swallowed. A payload over ``DETACH_ABOVE`` bytes (a tool's
huge output) is masked, spooled and sent by a detached process (``hand_off``):
masking 30 MB takes seconds, and the agent waits for the hook. Whatever must outlive the hook (the last lines
after SessionEnd: the client kills that hook ~1 s after it exits; long turns
with no hook firing) is the follower's job, a detached process started here.
"""

from __future__ import annotations

import json
import os
import sys

from kapacitor.capture import layout
from kapacitor.capture.client_config import excluded, load, log_failure
from kapacitor.capture.recall_hook import print_context
from kapacitor.capture.shipper import hook_batch, ship, utc_stamp
from kapacitor.capture.spool import fill_hold, follower_lock, spool_hold

EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "Stop",
    "SubagentStart",
    "SubagentStop",
    "PreCompact",
    "Notification",
    "PreModelSwitch",
    "PostModelSwitch",
    "SessionEnd",
)
"""The events ``kapacitor setup`` installs the hook for."""

_WAKE_FOLLOWER = {"SessionStart", "UserPromptSubmit", "SessionEnd"}
HOOK_BUDGET = 256 << 10
"""Transcript bytes one hook reads at most; a larger backlog (a long session
resumed after setup) is the follower's, which the hook then starts."""
DETACH_ABOVE = 1 << 20
"""A payload larger than this (bytes) is handed to a detached process."""


def main(argv: list[str]) -> int:
    event = argv[0] if argv else ""
    try:
        run(event, sys.stdin.buffer.read())
    except Exception as exc:  # noqa: BLE001 — the agent must never notice
        log_failure(f"hook {event or '?'}: {type(exc).__name__}: {exc}")
    return 0


def run(event: str, raw: bytes) -> None:
    at = utc_stamp()
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        log_failure(f"hook {event or '?'}: payload is not JSON ({exc}): {raw[:200]!r}")
        return
    if not isinstance(payload, dict):
        log_failure(f"hook {event or '?'}: payload is not a JSON object: {raw[:200]!r}")
        return
    session_id = payload.get("session_id")
    if not layout.valid_session_id(session_id):
        log_failure(f"hook {event or '?'}: payload has no valid session_id: {str(session_id)[:100]!r}")
        return
    event = event or str(payload.get("hook_event_name", ""))
    if excluded(str(payload.get("cwd") or "")):
        return  # an excluded directory: nothing of it leaves this machine
    transcript = payload.get("transcript_path")
    config = load()
    cwd = str(payload.get("cwd") or "")
    hook = {"event": event, "at": at, "payload": payload}
    if len(raw) > DETACH_ABOVE:
        hand_off(session_id, hook, cwd, transcript if isinstance(transcript, str) else "")
    else:
        result = ship(
            session_id,
            config,
            transcript=transcript if isinstance(transcript, str) else "",
            cwd=cwd,
            hook=hook,
            ended={"SessionEnd": True, "SessionStart": False}.get(event),
            hasty=True,
            budget=HOOK_BUDGET,
        )
        if event in _WAKE_FOLLOWER or result.more:
            start_follower(session_id)
    if event == "SessionStart":
        print_context(payload, config)


def hand_off(session_id: str, hook: dict, cwd: str, transcript: str) -> None:
    """Return at once and leave a huge payload to a detached copy of this process,
    which masks it, writes it into the place this process kept for it in the
    session's spool (``spool.spool_hold``, before returning: a lost payload is
    then logged, and ``sync`` knows one is on its way; later batches do not
    wait for it), then sends what the session has and starts the follower.
    Nothing unmasked is written to disk."""
    token, fd = spool_hold(session_id)
    if not fork_detached(keep=fd):
        os.close(fd)
        return
    try:
        fill_hold(fd, hook_batch(session_id, hook, cwd))
        event = hook["event"]
        ship(session_id, load(), transcript=transcript, cwd=cwd, ended={"SessionEnd": True, "SessionStart": False}.get(event))
        start_follower(session_id)
    except BaseException as exc:  # noqa: BLE001 — a detached process: log, never raise
        log_failure(f"hook {hook['event']}: detached payload {token}: {type(exc).__name__}: {exc}")
    finally:
        os._exit(0)


def start_follower(session_id: str) -> None:
    """Start the session's follower, detached, unless one runs (or ``KAPACITOR_FOLLOW=0``)."""
    if os.environ.get("KAPACITOR_FOLLOW", "1") == "0":
        return
    with follower_lock(session_id) as free:
        if not free:
            return
    command = [sys.executable, "-m", "kapacitor.capture.follower", session_id]
    detach(command)


def detach(command: list[str]) -> None:
    """Run ``command`` detached (``fork_detached``)."""
    if fork_detached():
        try:
            os.execv(command[0], command)
        finally:
            os._exit(1)


def fork_detached(keep: int = -1) -> bool:
    """Fork a process in its own session, not our child (double fork), so that it
    survives the hook and the client being killed and never holds their pipes:
    True in that process (stdio on /dev/null, no other inherited descriptor but
    ``keep``; it must end with ``os._exit``), False here once it is started."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return False
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if keep < 3:
            os.closerange(3, 256)
        else:
            os.closerange(3, keep)
            os.closerange(keep + 1, 256)
    except BaseException:  # noqa: BLE001
        os._exit(1)
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
