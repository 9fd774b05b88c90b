"""The follower's "within a second": from a record appended to a live session's
transcript to the server having it and the dashboard told, with the real hook,
follower and server on loopback.

One real ``kapacitor serve`` on a fresh SQLite store (``--postgres URL``: an
empty PostgreSQL database instead). Session A is live as Claude Code runs one:
its transcript file under a projects dir, the real ``kapacitor hook
SessionStart`` run on it, which starts the session's follower (detached, as in
service; it polls the file every 0.25 s). Each trial appends one user prompt
line to A's transcript and times, from the write:

- ``SSE``: the server's ``/events`` stream (what the open pages listen to)
  sends a ``change`` naming the session; the dashboard re-reads then;
- ``API``: ``/sessions/{id}.json`` counts the prompt (polled every 5 ms once
  the change came).

The baseline, measured in the same run, trials alternating: the same kind of
line for session B POSTed straight to the ingest API (what the follower's
shipper sends, without the follower's wait for its next poll and its read of
the file), timed from just before the POST. The ratio (follower ÷ direct) is
what the follower adds; the absolute p95 is the "within a second" figure.
Trials are spaced 0.3–0.8 s apart at random, so they fall anywhere in the
follower's poll period.

    python bench/follow_latency.py [--trials 40] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from capture_helpers import KAPACITOR, WIDGETS_DIR, Server, wait_for  # noqa: E402

SOURCE = WIDGETS_DIR / "708f24f2-dc3e-4588-a43d-59d69a508ed0.jsonl"
CWD = "/home/dev/src/widgets"


class Changes:
    """The server's ``/events`` stream, read in a thread: each ``change`` message's
    arrival (``time.perf_counter``) and its JSON."""

    def __init__(self, url: str) -> None:
        self.seen: list[tuple[float, dict]] = []
        self.ready = threading.Event()
        self.cond = threading.Condition()
        self.client = httpx.Client(timeout=httpx.Timeout(5, read=None))
        self.thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self.thread.start()
        if not self.ready.wait(30):
            raise SystemExit("the /events stream did not open")

    def _read(self, url: str) -> None:
        try:
            with self.client.stream("GET", url + "/events") as response:
                event = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "hello":
                        self.ready.set()
                    elif line.startswith("data:") and event == "change":
                        with self.cond:
                            self.seen.append((time.perf_counter(), json.loads(line[5:])))
                            self.cond.notify_all()
        except httpx.HTTPError:
            pass  # the server stopped

    def after(self, mark: int, session_id: str, timeout: float = 30) -> float:
        """The arrival of the first change past the first ``mark`` that names ``session_id``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for at, data in self.seen[mark:]:
                    if data.get("all") or session_id in data.get("sessions", ()):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"no change for {session_id} within {timeout} s")
                self.cond.wait(left)

    def close(self) -> None:
        self.client.close()


class Transcript:
    """A session's main transcript file, grown a line at a time; each line's
    byte offset and number as the shipper reports them."""

    def __init__(self, projects: Path, session_id: str) -> None:
        self.session_id = session_id
        self.path = projects / "-home-dev-src-widgets" / f"{session_id}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self.offset, self.number, self.last = 0, 0, None
        self.template = json.loads(SOURCE.read_bytes().splitlines()[2])  # the session's first prompt

    def prompt(self, text: str) -> bytes:
        """A user prompt line, as Claude Code writes one, now."""
        record = dict(self.template, sessionId=self.session_id, uuid=str(uuid.uuid4()), parentUuid=self.last,
                      promptId=str(uuid.uuid4()), timestamp=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                      message={"role": "user", "content": text})
        self.last = record["uuid"]
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"

    def append(self, line: bytes) -> dict:
        """Write ``line`` in one write (a whole line, as the client does); its entry in a batch."""
        with self.path.open("ab") as handle:
            handle.write(line)
        entry = {"o": self.offset, "n": self.number, "t": line.decode().rstrip("\n")}
        self.offset += len(line)
        self.number += 1
        return entry


def post(client: httpx.Client, url: str, transcript: Transcript, entry: dict) -> None:
    batch = {"v": 1, "agent": "claude-code", "session_id": transcript.session_id,
             "transcripts": [{"path": str(transcript.path), "lines": [entry]}]}
    response = client.post(f"{url}/api/ingest/sessions/{transcript.session_id}/batches", json=batch)
    response.raise_for_status()


def prompts(client: httpx.Client, url: str, session_id: str) -> int:
    response = client.get(f"{url}/sessions/{session_id}.json")
    return response.json()["prompts"] if response.status_code == 200 else 0


def hook(event: str, transcript: Transcript, **extra: str) -> None:
    payload = {"session_id": transcript.session_id, "transcript_path": str(transcript.path), "cwd": CWD,
               "hook_event_name": event, **extra}
    subprocess.run([KAPACITOR, "hook", event], input=json.dumps(payload).encode(), check=True, timeout=60,
                   env={**os.environ, "KAPACITOR_FOLLOW": "1"})


def follower_pid(session_id: str) -> int | None:
    lock = Path(os.environ["XDG_STATE_HOME"]) / "kapacitor" / "sessions" / f"{session_id}.follow.lock"
    try:
        pid = int(lock.read_text())
        return pid if b"kapacitor.capture.follower" in Path(f"/proc/{pid}/cmdline").read_bytes() else None
    except (OSError, ValueError):
        return None


def quantiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, round(len(ordered) * 0.95) - 1)], ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40, help="trials of each kind (default 40)")
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database as the store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kapacitor-bench-follow-") as tmp:
        home = Path(tmp) / "home"
        os.environ.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"), XDG_CONFIG_HOME=str(home / "config"),
                          XDG_DATA_HOME=str(home / "data"))
        for name in ("KAPACITOR_TOKEN", "KAPACITOR_STORE", "CLAUDE_CONFIG_DIR"):
            os.environ.pop(name, None)
        server = Server(args.postgres or Path(tmp) / "events.db").start().caught_up()
        os.environ["KAPACITOR_SERVER"] = server.url
        live, direct = Transcript(Path(tmp) / "projects", str(uuid.uuid4())), Transcript(Path(tmp) / "projects", str(uuid.uuid4()))
        client = httpx.Client(timeout=30)
        changes = Changes(server.url)
        results: dict[str, dict[str, list[float]]] = {"follower": {"SSE": [], "API": []}, "direct POST": {"SSE": [], "API": []}}
        try:
            live.append(live.prompt("start"))
            hook("SessionStart", live, source="startup")
            wait_for(lambda: follower_pid(live.session_id), timeout=60)
            post(client, server.url, direct, direct.append(direct.prompt("start")))
            for t in (live, direct):
                wait_for(lambda t=t: prompts(client, server.url, t.session_id) == 1, timeout=60)
            print(f"server {server.url} ({'PostgreSQL' if args.postgres else 'SQLite'}), follower pid {follower_pid(live.session_id)},"
                  f" load average {os.getloadavg()[0]:.1f}; {args.trials} trials each", flush=True)
            for n in range(args.trials):
                for kind in (("follower", "direct POST") if n % 2 else ("direct POST", "follower")):
                    time.sleep(random.uniform(0.3, 0.8))
                    transcript = live if kind == "follower" else direct
                    line = transcript.prompt(f"probe {n}: how long until the dashboard sees this?")
                    mark = len(changes.seen)
                    if kind == "follower":
                        started = time.perf_counter()
                        transcript.append(line)
                    else:
                        entry = transcript.append(line)
                        started = time.perf_counter()
                        post(client, server.url, transcript, entry)
                    told = changes.after(mark, transcript.session_id)
                    while prompts(client, server.url, transcript.session_id) < n + 2:
                        time.sleep(0.005)
                    results[kind]["SSE"].append((told - started) * 1000)
                    results[kind]["API"].append((time.perf_counter() - started) * 1000)
            hook("SessionEnd", live, reason="other")
            wait_for(lambda: follower_pid(live.session_id) is None, timeout=60)
        finally:
            if pid := follower_pid(live.session_id):
                os.kill(pid, signal.SIGKILL)
            changes.close()
            client.close()
            server.stop()
    print(f"\nload average after: {os.getloadavg()[0]:.1f}\n")
    print("| path | SSE p50 | SSE p95 | SSE max | API p50 | API p95 | API max |")
    print("|---|---|---|---|---|---|---|")
    for kind, by in results.items():
        print(f"| {kind} | " + " | ".join(f"{v:.0f} ms" for stage in ("SSE", "API") for v in quantiles(by[stage])) + " |")
    for stage in ("SSE", "API"):
        (f50, f95, _), (d50, d95, _) = quantiles(results["follower"][stage]), quantiles(results["direct POST"][stage])
        over = sum(v >= 1000 for v in results["follower"][stage])
        print(f"{stage}: follower ÷ direct POST: p50 {f50 / d50:.2f}×, p95 {f95 / d95:.2f}×; follower trials over 1 s: {over} of {args.trials}")


if __name__ == "__main__":
    main()
