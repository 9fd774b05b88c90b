"""What a hook carrying a 30 MB tool output costs the agent: the hook's wall and
CPU time when it masks and spools the payload itself (``inline``: what it did
before, ``shipper.ship`` in the hook's process) against handing it to a
detached process (``detached``: ``kapacitor hook``, which returns at once), in
interleaved runs of the same payload with the server down (the batch goes to
the spool either way). For ``detached`` also the time until the masked batch
is in the spool (the detached process's work, off the agent's path).

    python bench/hook_huge.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

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
    return {k: round(statistics.median(v), 3) for k, v in figures.items()} | {"runs": runs,
                                                                              "payload_mb": round(len(stdin) / 1e6, 1)}


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


if __name__ == "__main__":
    main()
