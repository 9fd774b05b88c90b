"""``kapacitor sessions --json`` is a read, not a rebuild (issue 9, point 10).

Builds (or reuses, ``--store``) a store of about ``--mb`` megabytes of
transcripts (the recorded ones replicated under fresh ids, as bench/import.py),
brings its read models up to date, then measures in the same run:

  rebuild   what the command did before: every session's fold state decoded,
            re-priced, turned into a row and encoded by the stdlib (indent=2)
  read      the stored rows, newest first, joined as they are
  zoned     what it does now: the same with each row's times rewritten in the
            local zone (``json_times.zoned_at``, ISO 8601 with the offset, at
            the places the read model keeps beside each row)
  command   the whole ``kapacitor sessions --json`` process, wall-clock and CPU
            (user + sys: the figure to trust on a shared machine), median of
            --runs (interpreter start and imports included), beside
            ``kapacitor --version`` and a bare interpreter

``--baseline REV`` then runs the whole command by the code of a git revision
(``git archive REV src``, put first on ``PYTHONPATH``) and by the working tree's,
alternately, ``--pairs`` times each, in the local zone (``TZ`` set to ``--zone``,
a zone with DST) and with ``--tz UTC``, checks the two outputs are the same bytes
(``--baseline-store``: the old code reads its own copy of the store, for a
revision whose read models have another version: one store would be rebuilt
back and forth),
and prints the medians and the paired ratios (new / old, pair by pair: median
and quartiles); with ``--instructions`` also each side's instructions executed,
counted by valgrind's callgrind (the same on a busy machine as on a quiet one,
where times on a shared machine are not). ``--spread DAYS`` runs the processes
on a copy of the store whose session rows' times are each moved back by a
random amount within DAYS days (seeded), as a real history's are spread: the
replicated recordings all start within the same hour, which flatters anything
worked out once per hour of the zone.

    python bench/sessions_json.py [--mb 200] [--store PATH.db] [--runs 5]
                                  [--baseline REV] [--baseline-store PATH.db] [--pairs 9]
                                  [--zone Europe/Oslo] [--spread DAYS]
                                  [--instructions]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from kapacitor.capture.importer import import_paths
from kapacitor.json_times import zoned_at
from kapacitor.projections import live_status, ownership, sessions
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.store import open_store

ROOT = Path(__file__).resolve().parent.parent
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


def built_store(path: Path | None, megabytes: int) -> Path:
    """``path``, else a new store of about ``megabytes`` MB of transcripts (in a
    temporary directory of its own, kept: the caller measures it)."""
    if path is not None:
        return path
    work = Path(tempfile.mkdtemp(prefix="kapacitor-bench-"))
    files, size = make_data(work / "data", megabytes)
    path = work / "store.db"
    store = open_store(f"sqlite://{path}")
    import_paths(store, [work / "data"])
    store.close()
    print(f"built {path}: {files} files, {size / 1e6:.0f} MB of transcripts")
    return path


def spread(path: Path, days: int, into: Path) -> Path:
    """A copy of the store at ``path`` (as ``into``) whose session rows' times
    are each moved back by its own random number of milliseconds within ``days``
    days (every time of a row by the same amount, its ``started`` column too;
    the amount drawn from the session's id: two copies of one history, each
    with its own read models, are spread alike). The stamps keep their length,
    so the places of a row's times stay where they were."""
    shutil.copyfile(path, into)
    stamp = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z"')
    conn = sqlite3.connect(into)

    def moved(text: str, by: timedelta) -> str:
        return stamp.sub(lambda m: f'"{(datetime.fromisoformat(m[1]) - by).isoformat(timespec="milliseconds")}Z"', text)

    for session_id, row, started in conn.execute("SELECT session_id, row, started FROM sessions").fetchall():
        by = timedelta(milliseconds=random.Random(f"9 {session_id}").randrange(days * 86_400_000))
        conn.execute("UPDATE sessions SET row = ?, started = ? WHERE session_id = ?",
                     (moved(row, by), started and moved(f'"{started}"', by)[1:-1], session_id))
    conn.commit()
    conn.close()
    return into


def child_run(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall-clock and CPU seconds (user + sys) of one process, and its output."""
    started, before = time.perf_counter(), os.times()
    out = subprocess.run(argv, capture_output=True, check=True, env=env).stdout
    after = os.times()
    return time.perf_counter() - started, after[2] + after[3] - before[2] - before[3], out


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """Instructions one process executes (valgrind's callgrind: its "Collected")."""
    found = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                           capture_output=True, text=True, check=True, env=env).stderr
    return int(re.search(r"Collected : (\d+)", found)[1])


def quartiles(ratios: list[float]) -> str:
    if len(ratios) < 2:
        return f"{ratios[0]:.3f}"
    q1, q2, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{q2:.3f} ({q1:.3f}-{q3:.3f})"


def against(revision: str, path: Path, old_path: Path, pairs: int, zone: str, env: dict[str, str], count: bool) -> None:
    """The whole command by ``revision``'s code (on the store at ``old_path``) and
    the working tree's (on ``path``), alternately."""
    old_tree = Path(tempfile.mkdtemp(prefix="kapacitor-bench-old-"))
    archive = subprocess.run(["git", "archive", revision, "src"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive, check=True)
    sides = {"old": {**env, "PYTHONPATH": str(old_tree / "src")}, "new": env}
    commands = {side: [sys.executable, "-m", "kapacitor", "--store", f"sqlite://{at}", "sessions", "--json"]
                for side, at in (("old", old_path), ("new", path))}
    for label, extra in ((f"local zone (TZ={zone})", []), ("--tz UTC", ["--tz", "UTC"])):
        runs: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        outputs = {side: child_run(commands[side] + extra, {**side_env, "TZ": zone})[2] for side, side_env in sides.items()}  # warm
        assert outputs["old"] == outputs["new"], f"{label}: the outputs differ"
        for n in range(pairs):
            for side in ("old", "new") if n % 2 == 0 else ("new", "old"):
                wall, cpu, _ = child_run(commands[side] + extra, {**sides[side], "TZ": zone})
                runs[side].append((wall, cpu))
        for i, name in enumerate(("wall", "cpu")):
            old, new = [r[i] for r in runs["old"]], [r[i] for r in runs["new"]]
            print(f"{label:32} {name:4} old median {statistics.median(old):.3f} s, new {statistics.median(new):.3f} s"
                  f" (new range {min(new):.3f}-{max(new):.3f}); new/old paired {quartiles([b / a for a, b in zip(old, new)])}")
        print(f"{label:32} same output from both ({len(outputs['new']) / 1e6:.1f} MB); load average {os.getloadavg()[0]:.1f}",
              flush=True)
        if count:
            old, new = (instructions(commands[side] + extra, {**sides[side], "TZ": zone}) for side in ("old", "new"))
            print(f"{label:32} instructions: old {old / 1e6:,.0f} M, new {new / 1e6:,.0f} M, new/old {new / old:.3f}", flush=True)
    shutil.rmtree(old_tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--store", type=Path, help="an existing store file to measure (else one is built)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", metavar="REV", help="also run the whole command by this git revision's code, alternately")
    parser.add_argument("--baseline-store", type=Path, metavar="PATH",
                        help="the store the baseline's code reads (default: the same store)")
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--zone", default="Europe/Oslo", help="the local zone (TZ) of the alternated runs")
    parser.add_argument("--spread", type=int, metavar="DAYS", help="measure a copy whose times are spread over DAYS days")
    parser.add_argument("--instructions", action="store_true", help="also count each side's instructions (valgrind)")
    args = parser.parse_args()
    path = built_store(args.store, args.mb)
    store = open_store(f"sqlite://{path}")
    runner = ProjectionRunner(store, path, [ownership.PROJECTION, sessions.PROJECTION, live_status.PROJECTION])
    started = time.perf_counter()
    runner.catch_up()
    print(f"read models brought up to date in {time.perf_counter() - started:.1f} s (once)")
    conn = runner.conn
    rebuild, rebuild_cpu, old = best(lambda: json.dumps([s.as_json() for s in sessions.newest(conn)], indent=2), args.runs)
    read, read_cpu, new = best(lambda: "[" + ",\n".join(row for _, row in sessions.newest_json(conn)) + "]\n", args.runs)
    zoned, zoned_cpu, _ = best(lambda: "[" + ",\n".join(zoned_at(sessions.newest_json(conn), None)) + "]\n", args.runs)
    assert json.loads(old) == json.loads(new), "the read rows differ from the rebuilt ones"
    runner.close()
    store.close()
    old_path = args.baseline_store or path
    if args.spread:  # the processes below read a copy, its read models up to date
        work = Path(tempfile.mkdtemp(prefix="kapacitor-bench-"))
        old_path = spread(old_path, args.spread, work / "spread-baseline.db") if args.baseline_store else None
        path = spread(path, args.spread, work / "spread.db")
        old_path = old_path or path
        print(f"times spread over {args.spread} days in a copy: {path} (the figures above are of the store itself)")
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
          f" | ratio {rebuild / read:.1f}x wall, {rebuild_cpu / read_cpu if read_cpu else float('inf'):.1f}x cpu")  # CPU counts in 10 ms
    print(f"read with times in the local zone (zoned) {zoned:.3f} s cpu {zoned_cpu:.3f} s")
    print(f"kapacitor sessions --json, whole process: {whole:.3f} s cpu {whole_cpu:.3f} s"
          f" (kapacitor --version: {start:.3f} s cpu {start_cpu:.3f} s; bare interpreter: {bare:.3f} s cpu {bare_cpu:.3f} s;"
          f" medians of {args.runs})")
    if args.baseline:
        against(args.baseline, path, old_path, args.pairs, args.zone, env, args.instructions)
    if args.spread:
        shutil.rmtree(path.parent)


if __name__ == "__main__":
    main()
