"""``kapacitor sessions --json`` is a read, not a rebuild (issue 9, point 10).

Builds (or reuses, ``--store``) a store of about ``--mb`` megabytes of
transcripts (the recorded ones replicated under fresh ids, as bench/import.py),
brings its read models up to date, then measures in the same run:

  rebuild   what the command did before: every session's fold state decoded,
            re-priced, turned into a row and encoded by the stdlib (indent=2)
  read      the stored rows, newest first, joined as they are
  zoned     what it does now: the same with each row's times rewritten in the
            local zone (``json_times.zoned_text``, ISO 8601 with the offset)
  command   the whole ``kapacitor sessions --json`` process, wall-clock and CPU
            (user + sys: the figure to trust on a shared machine), median of
            --runs (interpreter start and imports included), beside
            ``kapacitor --version`` and a bare interpreter

    python bench/sessions_json.py [--mb 200] [--store PATH.db] [--runs 5]
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
from pathlib import Path

from kapacitor.capture.importer import import_paths
from kapacitor.json_times import zoned_text
from kapacitor.projections import ownership, sessions
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent))
make_data = __import__("import").make_data


def best(fn, runs: int) -> tuple[float, float, object]:  # type: ignore[no-untyped-def]
    """Median wall-clock and CPU seconds of ``fn`` (this process and its children:
    CPU is the steadier figure when other work shares the cores), and its result."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        started, before = time.perf_counter(), os.times()
        result = fn()
        after = os.times()
        walls.append(time.perf_counter() - started)
        cpus.append(sum(after[:4]) - sum(before[:4]))
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--store", type=Path, help="an existing store file to measure (else one is built)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    path = args.store
    if path is None:
        work = Path(tempfile.mkdtemp(prefix="kapacitor-bench-"))
        files, size = make_data(work / "data", args.mb)
        path = work / "store.db"
        store = open_store(f"sqlite://{path}")
        import_paths(store, [work / "data"])
        store.close()
        print(f"built {path}: {files} files, {size / 1e6:.0f} MB of transcripts")
    store = open_store(f"sqlite://{path}")
    runner = ProjectionRunner(store, path, [ownership.PROJECTION, sessions.PROJECTION])
    started = time.perf_counter()
    runner.catch_up()
    print(f"read models brought up to date in {time.perf_counter() - started:.1f} s (once)")
    conn = runner.conn
    rebuild, rebuild_cpu, old = best(lambda: json.dumps([s.as_json() for s in sessions.newest(conn)], indent=2), args.runs)
    read, read_cpu, new = best(lambda: "[" + ",\n".join(sessions.newest_json(conn)) + "]\n", args.runs)
    zoned, zoned_cpu, _ = best(lambda: "[" + ",\n".join(zoned_text(r, None) for r in sessions.newest_json(conn)) + "]\n",
                               args.runs)
    assert json.loads(old) == json.loads(new), "the read rows differ from the rebuilt ones"
    runner.close()
    store.close()
    # As an installed package runs: with its bytecode cached (pip compiles it at
    # install; a PYTHONDONTWRITEBYTECODE shell would compile every module each run).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def run(*argv: str) -> bytes:
        return subprocess.run([sys.executable, *argv], capture_output=True, check=True, env=env).stdout

    command = ("-m", "kapacitor", "--store", f"sqlite://{path}", "sessions", "--json")
    run(*command)  # warm: bytecode written, the file in the page cache
    whole, whole_cpu, out = best(lambda: run(*command), args.runs)
    start, start_cpu, _ = best(lambda: run("-m", "kapacitor", "--version"), args.runs)
    bare, bare_cpu, _ = best(lambda: run("-c", "pass"), args.runs)
    rows = len(json.loads(out))
    print(f"store {path.stat().st_size / 1e6:.0f} MB, {rows} sessions, output {len(out) / 1e6:.1f} MB, load average {os.getloadavg()[0]:.1f}")
    print(f"rebuild (before) {rebuild:.3f} s cpu {rebuild_cpu:.3f} s | read (now) {read:.3f} s cpu {read_cpu:.3f} s"
          f" | ratio {rebuild / read:.1f}x wall, {rebuild_cpu / read_cpu:.1f}x cpu")
    print(f"read with times in the local zone (zoned) {zoned:.3f} s cpu {zoned_cpu:.3f} s")
    print(f"kapacitor sessions --json, whole process: {whole:.3f} s cpu {whole_cpu:.3f} s"
          f" (kapacitor --version: {start:.3f} s cpu {start_cpu:.3f} s; bare interpreter: {bare:.3f} s cpu {bare_cpu:.3f} s;"
          f" medians of {args.runs})")


if __name__ == "__main__":
    main()
