"""Ingest memory: the real server's peak RSS while it takes one batch of tiny
transcript lines (and several at once), next to a 1 MB batch in the same run.

Each measurement starts a fresh ``kapacitor serve`` on a loopback port and a
fresh store, warms it up with a 1 MB batch, posts the batch with the capture
client's own sender (gzip and all), and reads the server's peak RSS since
(``VmHWM`` in ``/proc/PID/status``, the kernel's high-water mark, reset through
``clear_refs``: no sampling gaps) and its RSS a second after. The ratio is the
peak's growth over the idle RSS per byte of batch.

    python bench/ingest_memory.py [--mb 30] [--concurrent 4] [--line-mib 256]

``--line-mib N`` adds one more measurement: a batch of a single N MiB transcript
line (a tool result whose output the line holds twice, as Claude Code writes it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from kapacitor.capture.client_config import ClientConfig
from kapacitor.capture.sender import SENT, patient_timeout, post

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from capture_helpers import Server  # noqa: E402


def tiny_batch(session_id: str, megabytes: float) -> bytes:
    """A batch of ~150-byte prompt records, ``megabytes`` of line text in all."""
    lines, offset, n = [], 0, 0
    while offset < megabytes * 1e6:
        text = json.dumps({"type": "user", "uuid": str(uuid.uuid4()), "sessionId": session_id,
                           "timestamp": "2026-05-01T10:00:00.000Z", "message": {"role": "user", "content": f"tiny prompt {n}"}})
        lines.append({"o": offset, "n": n, "t": text})
        offset, n = offset + len(text) + 1, n + 1
    batch = {"v": 1, "agent": "claude-code", "session_id": session_id,
             "transcripts": [{"path": f"/home/dev/.claude/projects/-w/{session_id}.jsonl", "lines": lines}]}
    return json.dumps(batch, separators=(",", ":")).encode()


def huge_line_batch(session_id: str, mebibytes: float) -> bytes:
    """A batch of one transcript line of about ``mebibytes`` MiB: a tool result."""
    row = "output line of a long build: /home/dev/src/widgets/module.py ok\n"
    output = row * int(mebibytes * 2**20 / 2 / (len(row) + 1))
    record = {"type": "user", "uuid": str(uuid.uuid4()), "sessionId": session_id, "timestamp": "2026-05-01T10:00:00.000Z",
              "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_huge", "content": output}]},
              "toolUseResult": {"stdout": output, "stderr": "", "interrupted": False}}
    line = {"o": 0, "n": 0, "t": json.dumps(record)}
    batch = {"v": 1, "agent": "claude-code", "session_id": session_id,
             "transcripts": [{"path": f"/home/dev/.claude/projects/-w/{session_id}.jsonl", "lines": [line]}]}
    return json.dumps(batch, separators=(",", ":")).encode()


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(megabytes: float, concurrent: int, make=tiny_batch) -> dict[str, float]:  # noqa: ANN001
    """A fresh server, warmed up with a 1 MB batch; then its RSS (``idle``), its peak
    RSS while taking ``concurrent`` batches of ``megabytes`` at once, and its RSS
    a second after."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "events.db", KAPACITOR_TOKEN="").start()
        try:
            pid = server.proc.pid  # type: ignore[union-attr]
            config = ClientConfig(server=server.url, token="")
            send(config, [tiny_batch("bench-warm-up", 1)])
            bodies = [make(f"bench-{i}-{uuid.uuid4().hex[:8]}", megabytes) for i in range(concurrent)]
            time.sleep(1.0)
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            idle, _ = rss_mb(pid)
            seconds = send(config, bodies)
            time.sleep(1.0)
            after, peak = rss_mb(pid)
        finally:
            server.stop()
    size = sum(len(b) for b in bodies) / 1e6
    return {"batch_mb": size, "idle_mb": idle, "peak_mb": peak, "after_mb": after, "seconds": seconds,
            "ratio": (peak - idle) / size}


def send(config: ClientConfig, bodies: list[bytes]) -> float:
    """POST the batches at once, each from its own thread; seconds until all were taken."""
    outcomes = []

    def one(body: bytes) -> None:
        outcomes.append(post(config, json.loads(body)["session_id"], body, patient_timeout(len(body)) * len(bodies)))

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(o.kind == SENT for o in outcomes), outcomes
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=30.0, help="line text per batch, MB")
    parser.add_argument("--concurrent", type=int, default=4, help="batches posted at once in the last measurement")
    parser.add_argument("--line-mib", type=float, default=0, help="also one batch of a single line this large")
    args = parser.parse_args()
    rows = [("1 MB batch (baseline)", measure(1, 1)), (f"{args.mb:g} MB batch", measure(args.mb, 1)),
            (f"{args.concurrent} x {args.mb:g} MB at once", measure(args.mb, args.concurrent))]
    if args.line_mib:
        rows.append((f"one {args.line_mib:g} MiB line", measure(args.line_mib, 1, huge_line_batch)))
    print(f"{'':28} {'body MB':>8} {'idle MB':>8} {'peak MB':>8} {'after MB':>9} {'(peak-idle)/body':>17} {'seconds':>8}")
    for name, r in rows:
        print(f"{name:28} {r['batch_mb']:8.1f} {r['idle_mb']:8.0f} {r['peak_mb']:8.0f} {r['after_mb']:9.0f}"
              f" {r['ratio']:17.1f} {r['seconds']:8.1f}")


if __name__ == "__main__":
    main()
