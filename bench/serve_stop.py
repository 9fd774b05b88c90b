"""How long ``kapacitor serve`` takes to stop (SIGTERM to exit) while its chat
warm-up builds a huge session's chat: a store holding one session of
``--calls`` Bash calls (``chat_slices.session_events``), its read models up to
date as a restarted server finds them; the server is started, signalled as soon
as ``/healthz`` answers (the warm-up starts before it does), and timed until it
exits. Also whether it printed a traceback, and its last line on stderr.

    python bench/serve_stop.py [--calls 20000] [--runs 3] [--json]

Run it with ``PYTHONPATH=<another checkout>/src`` to measure other code on the
same machine (the server inherits the environment).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chat_slices import session_events  # bench/chat_slices.py, beside this script
from hook import wait_up  # bench/hook.py

from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db

KAPACITOR = str(Path(sys.executable).parent / "kapacitor")
SESSION = "5e55100e-0000-4000-8000-0000000000b2"


def huge_store(path: Path, calls: int) -> None:
    store = open_store(f"sqlite://{path}")
    events = session_events(SESSION, calls)
    for start in range(0, len(events), 5000):
        store.append(f"AgentSession-{SESSION}", events[start : start + 5000])
    runner = ProjectionRunner(store, open_read_db(store), PROJECTIONS)
    runner.catch_up()
    runner.close()
    store.close()


def stop_once(path: Path, errors: Path) -> tuple[float, str]:
    """Seconds from SIGTERM to exit, and what the server printed on stderr."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with errors.open("wb") as err:
        server = subprocess.Popen([KAPACITOR, "--store", f"sqlite://{path}", "serve", "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=err)
        wait_up(f"http://127.0.0.1:{port}")
        started = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait()
    return time.perf_counter() - started, errors.read_text(errors="replace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    stops, said = [], []
    with tempfile.TemporaryDirectory(prefix="kapacitor-bench-serve-stop-") as name:
        tmp = Path(name)
        huge_store(tmp / "events.db", args.calls)
        for n in range(args.runs):
            seconds, stderr = stop_once(tmp / "events.db", tmp / f"stderr-{n}")
            stops.append(seconds)
            said.append(stderr)
    result = {"calls": args.calls, "runs": args.runs, "stop_median": round(statistics.median(stops), 2),
              "stop_max": round(max(stops), 2), "tracebacks": sum("Traceback" in s for s in said),
              "last_line": (said[-1].strip().splitlines() or [""])[-1], "load": round(os.getloadavg()[0], 1)}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.calls:,} calls, {args.runs} stops: median {result['stop_median']:.2f} s, max {result['stop_max']:.2f} s,"
          f" {result['tracebacks']} with a traceback, load {result['load']}; last line: {result['last_line']!r}")


if __name__ == "__main__":
    main()
