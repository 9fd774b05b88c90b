"""``kapacitor watch``: follow live transcripts in the foreground (a daemon for
machines without the hooks, or to watch one session by hand)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click

from kapacitor.capture import client_config, layout, refusals
from kapacitor.capture.follower import IDLE, follow
from kapacitor.capture.transcripts import default_roots

RESCAN = 5.0


@click.command("watch")
@click.argument("transcripts", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--idle", default=IDLE, show_default=True, help="Stop following a transcript after this many seconds without new lines.")
def watch_command(transcripts: tuple[Path, ...], idle: float) -> None:
    """Stream transcripts to the server as they grow, within a second.

    With TRANSCRIPT paths (main transcripts: <session>.jsonl), follows those until
    they go idle. Without, runs until interrupted: every main transcript under
    Claude Code's projects dirs that changed in the last --idle seconds is
    followed, rescanning every few seconds. Shares offsets and spool with the
    hooks, so running both never duplicates or skips a line.

    When the server does not take a session's batches (down, or refusing
    them: a token it does not know, another user's session), one line on
    stderr says its answer and the fix; the batches wait in the spool, in
    order, and are sent once it takes them (said too), while following goes on.
    """
    if transcripts:
        threads = [_start(path, idle) for path in transcripts]
        for thread in threads:
            thread.join()
        return
    following: dict[Path, threading.Thread] = {}
    click.echo(f"watching {', '.join(map(str, default_roots())) or 'nothing (no Claude Code projects dir)'}; Ctrl-C to stop", err=True)
    while True:
        cutoff = time.time() - idle
        for root in default_roots():
            for path in root.glob("*/*.jsonl"):
                thread = following.get(path)
                if (thread is None or not thread.is_alive()) and _mtime(path) > cutoff:
                    following[path] = _start(path, idle)
        time.sleep(RESCAN)


def _start(path: Path, idle: float) -> threading.Thread:
    session_id, _ = layout.identity(str(path))
    thread = threading.Thread(
        target=follow, args=(session_id,), daemon=True,
        kwargs={"transcript": str(path.resolve()), "cwd": _first_cwd(path), "idle": idle, "on_stuck": _teller(session_id)},
    )
    thread.start()
    return thread


def _teller(session_id: str) -> Callable[[int, str], None]:
    """``follow``'s ``on_stuck`` for one session: a line on stderr each time
    what keeps its batches in the spool changes (``refusals``' wording, as
    ``doctor`` and ``sync`` give it), and when the server takes them again."""

    def tell(status: int, answer: str) -> None:
        server = client_config.load().server
        if not answer:
            click.echo(f"session {session_id}: {server} takes its batches again", err=True)
        else:
            click.echo(f"session {session_id}: {refusals.answer(server, status, answer)}; fix: {refusals.fix(status, server)}",
                       err=True)

    return tell


def _first_cwd(path: Path) -> str:
    """The session's working directory: the first record that names one."""
    try:
        with path.open("rb") as handle:
            for _, line in zip(range(200), handle, strict=False):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and isinstance(record.get("cwd"), str):
                    return record["cwd"]
    except OSError:
        pass
    return ""


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
