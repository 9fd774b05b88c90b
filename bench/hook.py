"""What a hook costs the agent, and how fast its event is readable on the server.

Measures, interleaved in the same run (so machine noise hits all alike):

  bare        `python -c pass` with the same interpreter (the floor: any hook
              written in Python pays it)
  hook up     `kapacitor hook PostToolUse` with a real recorded payload and two
              new transcript lines, the server (`kapacitor serve`) up
  hook down   the same with nothing listening: the batch goes to the spool
  no redact   hook up with redaction switched off in the config file: the
              difference to hook up is what masking costs the hook

and prints p50/p95/max, the ratio hook p50 / bare p50 and the difference.
What redaction costs is measured paired: in each run "hook up" and "no
redact" run back to back, in turn either first (so a warm cache or a burst
of load favours neither), and the bench reports the median of the run-by-run
differences (CPU: user + system of the hook process; and wall) with their
quartiles. On a shared machine that is far steadier than the difference of
two medians. Where the cost goes: the same batch masked in fresh processes
(``--parts`` of them), the CPU of loading the rule set (``redact.default``,
from the marshal copy) and of masking the batch (``shipper._mask``).
The package is byte-compiled first, as a regular install is (pip does it):
otherwise, with PYTHONDONTWRITEBYTECODE set, every run would compile it anew.
Then the live latency: from the hook's start to its transcript line being
readable through the JSON API (`/sessions/{id}/chat.json`), p50/p95/max.

    python bench/hook.py [--runs 60] [--parts 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT.parent / "shared" / "claude-code" / "recorded"
SESSION = "708f24f2-dc3e-4588-a43d-59d69a508ed0"
PYTHON = sys.executable
KAPACITOR = str(Path(sys.executable).parent / "kapacitor")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(cmd: list[str], stdin: bytes, env: dict[str, str], cpu: list[float] | None = None) -> float:
    """Wall time of one run; its CPU time (user + system, which machine load
    hardly changes) is appended to ``cpu``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=env, stdout=subprocess.DEVNULL)
    proc.stdin.write(stdin)  # type: ignore[union-attr]
    proc.stdin.close()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{cmd} exited {proc.returncode}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return elapsed


def prompt_line(text: str, parent: str) -> bytes:
    record = {"type": "user", "uuid": str(uuid.uuid4()), "parentUuid": parent, "sessionId": SESSION,
              "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "cwd": "/home/dev/src/widgets",
              "version": "2.1.197", "isSidechain": False, "userType": "external",
              "message": {"role": "user", "content": text}}
    return json.dumps(record).encode() + b"\n"


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": statistics.median(ordered) * 1e3, "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1e3,
            "max_ms": ordered[-1] * 1e3}


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 120  # a loaded machine starts it slowly
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("kapacitor serve did not come up")


PARTS = """import json, sys, time
from kapacitor.capture import shipper
from kapacitor.normalize import redact
batch = json.loads(sys.stdin.buffer.read())
started = time.process_time()
redact.default()
loaded = time.process_time()
shipper._mask(batch["hook"], None, batch["transcripts"], batch["cwd"], None)
masked = time.process_time()
print(json.dumps({"load": loaded - started, "mask": masked - loaded}))
"""
"""A fresh process's CPU for loading the rule set and masking one batch (what
the hook does for it, in its order)."""


def quartiles(samples: list[float]) -> dict[str, float]:
    """Median and quartiles of ``samples`` (seconds) in ms."""
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return {"p25_ms": q1 * 1e3, "median_ms": q2 * 1e3, "p75_ms": q3 * 1e3}


def redaction_parts(runs: int, payload: dict, lines: list[bytes], env: dict[str, str]) -> dict[str, dict[str, float]]:
    """The CPU of loading the rules and masking the bench's batch (the payload and
    two transcript lines), each in a fresh process, ``runs`` times."""
    loads, masks = [], []
    for i in range(runs):
        k = 20 + 2 * i % (len(lines) - 22)
        texts = [lines[k], lines[k + 1]]
        batch = {"hook": {"event": "PostToolUse", "at": "2026-01-01T00:00:00.000000Z", "payload": payload}, "cwd": payload["cwd"],
                 "transcripts": [{"path": payload["transcript_path"],
                                  "lines": [{"o": 0, "n": n, "t": t.decode().rstrip("\n")} for n, t in enumerate(texts)]}]}
        out = subprocess.run([PYTHON, "-c", PARTS], input=json.dumps(batch).encode(), env=env, capture_output=True, check=True)
        figures = json.loads(out.stdout)
        loads.append(figures["load"])
        masks.append(figures["mask"])
    return {"load": quartiles(loads), "mask": quartiles(masks), "both": quartiles([a + b for a, b in zip(loads, masks, strict=True)])}


def run(runs: int, parts: int) -> dict[str, object]:
    package = subprocess.run([PYTHON, "-c", "import kapacitor, os; print(os.path.dirname(kapacitor.__file__))"],
                             check=True, capture_output=True, text=True).stdout.strip()  # the one the hook imports ($PYTHONPATH)
    subprocess.run([PYTHON, "-m", "compileall", "-q", package], check=True, stdout=subprocess.DEVNULL)
    tmp = Path(tempfile.mkdtemp(prefix="kapacitor-bench-hook-"))
    source = RECORDED / "projects" / "-home-dev-src-widgets" / f"{SESSION}.jsonl"
    lines = source.read_bytes().splitlines(keepends=True)
    transcript = tmp / "projects" / "-home-dev-src-widgets" / f"{SESSION}.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(b"".join(lines[:20]))
    payloads = [json.loads(x) for x in (RECORDED / "hooks" / "PostToolUse.jsonl").read_text().splitlines()]
    payload = max((p for p in payloads if p["session_id"] == SESSION), key=lambda p: len(json.dumps(p)))
    payload["transcript_path"] = str(transcript)
    stdin = json.dumps(payload).encode()
    port = free_port()
    base = {**os.environ, "HOME": str(tmp), "XDG_STATE_HOME": str(tmp / "state"), "XDG_CONFIG_HOME": str(tmp / "config"),
            "KAPACITOR_FOLLOW": "0"}
    up = {**base, "KAPACITOR_SERVER": f"http://127.0.0.1:{port}"}
    down = {**base, "KAPACITOR_SERVER": f"http://127.0.0.1:{free_port()}", "XDG_STATE_HOME": str(tmp / "state-down")}
    (tmp / "config-off" / "kapacitor").mkdir(parents=True)
    (tmp / "config-off" / "kapacitor" / "client.json").write_text(json.dumps({"redaction": {"enabled": False}}))
    plain = {**up, "XDG_CONFIG_HOME": str(tmp / "config-off"), "XDG_STATE_HOME": str(tmp / "state-off")}
    server = subprocess.Popen([KAPACITOR, "--store", f"sqlite://{tmp / 'bench.db'}", "serve", "--port", str(port)],
                              env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(up["KAPACITOR_SERVER"])
        timed([KAPACITOR, "hook", "PostToolUse"], stdin, up)  # the session's first batch: history, git context
        timed([KAPACITOR, "hook", "PostToolUse"], stdin, down)
        timed([KAPACITOR, "hook", "PostToolUse"], stdin, plain)
        bare, hook_up, hook_down, hook_plain = [], [], [], []
        cpu: dict[str, list[float]] = {"bare": [], "hook_up": [], "hook_down": [], "no_redact": []}
        tail = iter(lines[20:] * (runs // 10 + 10))
        loads = [os.getloadavg()[0]]
        for n in range(runs):
            bare.append(timed([PYTHON, "-c", "pass"], b"", base, cpu["bare"]))
            with transcript.open("ab") as handle:
                handle.write(next(tail) + next(tail))
            pair = [(hook_up, up, "hook_up"), (hook_plain, plain, "no_redact")]
            for walls, env, name in pair if n % 2 == 0 else pair[::-1]:
                walls.append(timed([KAPACITOR, "hook", "PostToolUse"], stdin, env, cpu[name]))
            hook_down.append(timed([KAPACITOR, "hook", "PostToolUse"], stdin, down, cpu["hook_down"]))
        loads.append(os.getloadavg()[0])
        parts_cpu = redaction_parts(parts, payload, lines, up) if parts else None
        latency = []
        for i in range(runs):
            marker = f"bench marker {i} {uuid.uuid4().hex[:8]}"
            with transcript.open("ab") as handle:
                handle.write(prompt_line(marker, ""))
            started = time.perf_counter()
            subprocess.Popen([KAPACITOR, "hook", "UserPromptSubmit"], stdin=subprocess.PIPE, env=up,
                             stdout=subprocess.DEVNULL).communicate(stdin)
            while True:
                with urllib.request.urlopen(f"{up['KAPACITOR_SERVER']}/sessions/{SESSION}/chat.json", timeout=5) as r:
                    if marker.encode() in r.read():
                        break
                if time.perf_counter() - started > 10:
                    raise SystemExit(f"event {i} not readable after 10 s")
                time.sleep(0.002)
            latency.append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait()
    b, u, d, p = stats(bare), stats(hook_up), stats(hook_down), stats(hook_plain)
    return {
        "runs": runs, "payload_bytes": len(stdin), "bare": b, "hook_up": u, "hook_down": d, "no_redact": p,
        "redaction_ms": u["p50_ms"] - p["p50_ms"],
        "ratio_up": u["p50_ms"] / b["p50_ms"], "ratio_down": d["p50_ms"] / b["p50_ms"],
        "above_bare_up_ms": u["p50_ms"] - b["p50_ms"], "above_bare_down_ms": d["p50_ms"] - b["p50_ms"],
        "live_latency": stats(latency),
        "cpu_p50_ms": {name: statistics.median(samples) * 1e3 for name, samples in cpu.items()},
        "redaction_cpu_paired": quartiles([u - p for u, p in zip(cpu["hook_up"], cpu["no_redact"], strict=True)]),
        "redaction_wall_paired": quartiles([u - p for u, p in zip(hook_up, hook_plain, strict=True)]),
        "redaction_parts_cpu": parts_cpu,
        "load_average": loads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--parts", type=int, default=30, help="fresh processes measuring rule loading and masking (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.runs, args.parts)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.runs} runs, payload {result['payload_bytes']:,} bytes,"
          f" load average {result['load_average'][0]:.1f} -> {result['load_average'][1]:.1f}")
    for name in ("bare", "hook_up", "hook_down", "no_redact", "live_latency"):
        s = result[name]
        print(f"  {name:13} p50 {s['p50_ms']:6.1f} ms   p95 {s['p95_ms']:6.1f} ms   max {s['max_ms']:6.1f} ms")
    print(f"  hook up   / bare: {result['ratio_up']:.2f}x  (+{result['above_bare_up_ms']:.1f} ms)")
    print(f"  hook down / bare: {result['ratio_down']:.2f}x  (+{result['above_bare_down_ms']:.1f} ms)")
    print(f"  redaction: hook up - no redact = {result['redaction_ms']:+.1f} ms p50"
          f" (CPU {result['cpu_p50_ms']['hook_up'] - result['cpu_p50_ms']['no_redact']:+.1f} ms)")
    for kind in ("cpu", "wall"):
        q = result[f"redaction_{kind}_paired"]
        print(f"  redaction, paired {kind:4} differences: median {q['median_ms']:+.2f} ms"
              f" (quartiles {q['p25_ms']:+.2f} .. {q['p75_ms']:+.2f} ms){'; target +3 ms' if kind == 'cpu' else ''}")
    if result["redaction_parts_cpu"]:
        parts = result["redaction_parts_cpu"]
        print("  in a fresh process, CPU: " + ", ".join(
            f"{name} {q['median_ms']:.2f} ms ({q['p25_ms']:.2f} .. {q['p75_ms']:.2f})" for name, q in parts.items()))
    cpu = result["cpu_p50_ms"]
    print("  CPU time p50: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in cpu.items())
          + f"  (hook up / bare {cpu['hook_up'] / cpu['bare']:.2f}x)")


if __name__ == "__main__":
    main()
