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
What redaction costs is also given as the median of the paired CPU
differences (hook up minus no redact, run by run), steadier on a shared
machine than the difference of two medians.
The package is byte-compiled first, as a regular install is (pip does it):
otherwise, with PYTHONDONTWRITEBYTECODE set, every run would compile it anew.
Then the live latency: from the hook's start to its transcript line being
readable through the JSON API (`/sessions/{id}/chat.json`), p50/p95/max.

    python bench/hook.py [--runs 40] [--json]
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
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("kapacitor serve did not come up")


def run(runs: int) -> dict[str, object]:
    subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "src" / "kapacitor")], check=True, stdout=subprocess.DEVNULL)
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
        tail = iter(lines[20:] * 10)
        for _ in range(runs):
            bare.append(timed([PYTHON, "-c", "pass"], b"", base, cpu["bare"]))
            with transcript.open("ab") as handle:
                handle.write(next(tail) + next(tail))
            hook_up.append(timed([KAPACITOR, "hook", "PostToolUse"], stdin, up, cpu["hook_up"]))
            hook_down.append(timed([KAPACITOR, "hook", "PostToolUse"], stdin, down, cpu["hook_down"]))
            hook_plain.append(timed([KAPACITOR, "hook", "PostToolUse"], stdin, plain, cpu["no_redact"]))
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
        "redaction_cpu_paired_ms": statistics.median(u - p for u, p in zip(cpu["hook_up"], cpu["no_redact"], strict=True)) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.runs} runs, payload {result['payload_bytes']:,} bytes")
    for name in ("bare", "hook_up", "hook_down", "no_redact", "live_latency"):
        s = result[name]
        print(f"  {name:13} p50 {s['p50_ms']:6.1f} ms   p95 {s['p95_ms']:6.1f} ms   max {s['max_ms']:6.1f} ms")
    print(f"  hook up   / bare: {result['ratio_up']:.2f}x  (+{result['above_bare_up_ms']:.1f} ms)")
    print(f"  hook down / bare: {result['ratio_down']:.2f}x  (+{result['above_bare_down_ms']:.1f} ms)")
    print(f"  redaction: hook up - no redact = {result['redaction_ms']:+.1f} ms p50"
          f" (CPU {result['cpu_p50_ms']['hook_up'] - result['cpu_p50_ms']['no_redact']:+.1f} ms;"
          f" median of paired CPU differences {result['redaction_cpu_paired_ms']:+.1f} ms; target +3 ms)")
    cpu = result["cpu_p50_ms"]
    print("  CPU time p50: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in cpu.items())
          + f"  (hook up / bare {cpu['hook_up'] / cpu['bare']:.2f}x)")


if __name__ == "__main__":
    main()
