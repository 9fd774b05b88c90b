"""What a hook carrying a 30 MB tool output costs the agent: the hook's wall and
CPU time when it masks and spools the payload itself (``inline``: what it did
before, ``shipper.ship`` in the hook's process) against handing it to a
detached process (``detached``: ``kapacitor hook``, which returns at once), in
interleaved runs of the same payload with the server down (the batch goes to
the spool either way). For ``detached`` also the time until the masked batch
is in the spool (the detached process's work, off the agent's path).

Then, with the real server (``kapacitor serve``) up: the same huge hook, then
at once a small hook whose transcript gained a prompt line, and the time from
the small hook's start until that prompt is readable through the JSON API
(``/sessions/{id}/chat.json``, polled every 5 ms): what a later batch waits
for the huge payload being masked (``later_batch``; ``huge_stored``: until the
huge payload's event is in the store, for comparison). And once the masked
batch is written, while the detached process uploads it (holding the session's
send lock), one more small hook: its wall time (``during_upload``: it waited
its second for the lock, then spooled; now it spools at once).

    python bench/hook_huge.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from hook import wait_up  # bench/hook.py, beside this script

from kapacitor.capture.spool import exclusive

PYTHON = sys.executable
KAPACITOR = str(Path(sys.executable).parent / "kapacitor")
INLINE = """import sys
from kapacitor.capture.client_config import load
from kapacitor.capture.hook import HOOK_BUDGET
from kapacitor.capture.shipper import ship, utc_stamp
import json
payload = json.loads(sys.stdin.buffer.read())
ship(payload["session_id"], load(), transcript=payload["transcript_path"], cwd=payload["cwd"],
     hook={"event": "PostToolUse", "at": utc_stamp(), "payload": payload}, hasty=True, budget=HOOK_BUDGET)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(cmd: list[str], stdin: bytes, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=env, stdout=subprocess.DEVNULL)
    proc.stdin.write(stdin)  # type: ignore[union-attr]
    proc.stdin.close()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{cmd} failed")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def held_written(sessions: Path, session_id: str) -> bool:
    """Whether the session's held batch is written (its file unlocked and whole)."""
    for path in sessions.glob(f"{session_id}.held-*"):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        return path.read_bytes().endswith(b"\n")
    return False


def run(runs: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="kapacitor-bench-hook-huge-"))
    transcript = tmp / "t.jsonl"
    transcript.write_bytes(b"")
    output = "".join(f"line {i}: build output with \"quotes\", a tab\tand /home/dev/src/widgets/f_{i}.py\n"
                     for i in range(360_000))
    env = {**os.environ, "HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config"), "KAPACITOR_FOLLOW": "0",
           "KAPACITOR_SERVER": f"http://127.0.0.1:{free_port()}"}
    figures: dict[str, list[float]] = {"inline_wall": [], "inline_cpu": [], "detached_wall": [], "detached_cpu": [],
                                       "detached_spooled": []}
    for n in range(runs):
        for way in ("inline", "detached") if n % 2 == 0 else ("detached", "inline"):
            session_id = str(uuid.uuid4())
            payload = {"session_id": session_id, "transcript_path": str(transcript), "cwd": "/home/dev/src/widgets",
                       "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_response": {"stdout": output}}
            stdin = json.dumps(payload).encode()
            state = tmp / f"state-{way}-{n}"
            run_env = {**env, "XDG_STATE_HOME": str(state)}
            cmd = [PYTHON, "-c", INLINE] if way == "inline" else [KAPACITOR, "hook", "PostToolUse"]
            started = time.perf_counter()
            wall, cpu = timed(cmd, stdin, run_env)
            figures[f"{way}_wall"].append(wall)
            figures[f"{way}_cpu"].append(cpu)
            if way == "detached":
                sessions = state / "kapacitor" / "sessions"
                while not held_written(sessions, session_id):
                    time.sleep(0.01)
                figures["detached_spooled"].append(time.perf_counter() - started)
                time.sleep(1)  # let the detached process finish its (failing) send before the next run
    figures |= later_batch(runs, tmp, output, env)
    return {k: round(statistics.median(v), 3) for k, v in figures.items()} | {"runs": runs,
                                                                              "payload_mb": round(len(stdin) / 1e6, 1)}


def later_batch(runs: int, tmp: Path, output: str, env: dict[str, str]) -> dict[str, list[float]]:
    """Seconds from a small hook's start, fired right after a huge one, until its
    transcript line is readable on the server; and until the huge payload's
    event is stored."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    store = tmp / "later.db"
    server = subprocess.Popen([KAPACITOR, "--store", f"sqlite://{store}", "serve", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures: dict[str, list[float]] = {"later_batch": [], "huge_stored": [], "during_upload": []}
    try:
        wait_up(url)
        for n in range(runs):
            session_id = str(uuid.uuid4())
            transcript = tmp / "projects" / "-home-dev-src-widgets" / f"{session_id}.jsonl"
            transcript.parent.mkdir(parents=True, exist_ok=True)
            transcript.write_bytes(prompt_line(session_id, "first prompt"))
            run_env = {**env, "KAPACITOR_SERVER": url, "XDG_STATE_HOME": str(tmp / f"state-later-{n}")}
            huge = {"session_id": session_id, "transcript_path": str(transcript), "cwd": "/home/dev/src/widgets",
                    "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "toolu_huge",
                    "tool_response": {"stdout": output}}
            started = time.perf_counter()
            timed([KAPACITOR, "hook", "PostToolUse"], json.dumps(huge).encode(), run_env)
            marker = f"later marker {uuid.uuid4().hex[:8]}"
            with transcript.open("ab") as handle:
                handle.write(prompt_line(session_id, marker))
            small = {**huge, "tool_use_id": "toolu_small", "tool_response": {"stdout": "ok\n"}}
            small_started = time.perf_counter()
            timed([KAPACITOR, "hook", "PostToolUse"], json.dumps(small).encode(), run_env)
            while marker.encode() not in fetch(f"{url}/sessions/{session_id}/chat.json"):
                if time.perf_counter() - small_started > 120:
                    raise SystemExit("the small hook's line was not readable after 120 s")
                time.sleep(0.005)
            figures["later_batch"].append(time.perf_counter() - small_started)
            sessions = tmp / f"state-later-{n}" / "kapacitor" / "sessions"
            while not held_written(sessions, session_id):
                time.sleep(0.01)
            while not lock_taken(sessions / f"{session_id}.lock") and not huge_stored(store, session_id):
                time.sleep(0.005)
            if not huge_stored(store, session_id):  # the upload is under way
                during = {**huge, "tool_use_id": "toolu_during", "tool_response": {"stdout": "ok\n"}}
                figures["during_upload"].append(timed([KAPACITOR, "hook", "PostToolUse"], json.dumps(during).encode(), run_env)[0])
            while not huge_stored(store, session_id):
                if time.perf_counter() - started > 300:
                    raise SystemExit("the huge payload was not stored after 300 s")
                time.sleep(0.05)
            figures["huge_stored"].append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait()
    return figures


def lock_taken(path: Path) -> bool:
    """Whether another process holds the ``flock`` on ``path`` (the session's send lock)."""
    with exclusive(str(path), 0) as free:
        return not free


def prompt_line(session_id: str, text: str) -> bytes:
    record = {"type": "user", "uuid": str(uuid.uuid4()), "parentUuid": None, "sessionId": session_id,
              "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "cwd": "/home/dev/src/widgets",
              "version": "2.1.197", "isSidechain": False, "userType": "external", "message": {"role": "user", "content": text}}
    return json.dumps(record).encode() + b"\n"


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.read()
    except OSError:
        return b""


def huge_stored(store: Path, session_id: str) -> bool:
    """Whether the huge payload's ``HookReceived`` is in the store (read-only)."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT count(*) FROM events WHERE type = 'HookReceived' AND stream = ? AND instr(data, ?)",
                            (f"AgentSession-{session_id}", b"toolu_huge")).fetchone()
    return bool(rows and rows[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.runs)
    if args.json:
        print(json.dumps(result))
        return
    print(f"payload {result['payload_mb']} MB, {result['runs']} runs each, medians (seconds), load {os.getloadavg()[0]:.1f}")
    print(f"inline   (hook masks and spools): wall {result['inline_wall']:.2f}  CPU {result['inline_cpu']:.2f}")
    print(f"detached (hook hands it off):     wall {result['detached_wall']:.2f}  CPU {result['detached_cpu']:.2f}"
          f"  masked batch in the spool after {result['detached_spooled']:.2f}")
    print(f"server up: a small hook right after the huge one readable after {result['later_batch']:.2f}"
          f" (the huge payload stored after {result['huge_stored']:.2f} from its hook's start)")
    print(f"a small hook while the masked batch is uploaded: wall {result['during_upload']:.2f}")


if __name__ == "__main__":
    main()
