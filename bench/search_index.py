"""What word forms cost the search index: its build and its queries, before and after.

Builds a store of about ``--mb`` megabytes of transcripts (the recorded ones
replicated under fresh ids, as bench/import.py; ``--history 2.1.332`` for the
newer, larger recordings), brings the other read models up to date once,
then, in the same run, alternately ``--repeat`` times:

  before  the ``search_index`` read model and the search queries of ``--baseline``
          (a git revision: the last one without word forms), loaded from git
  after   the ones in the working tree (word forms: every word stemmed in Python,
          a ``stems`` column indexed beside the text)

and prints the build's wall-clock and CPU seconds (CPU: this process, so on
PostgreSQL the server's work is in the wall time only), their ratios
after/before (medians of the repeats and of the fastest), the index's size, and
the median time of a set of searches on each. ``--postgres URL`` (a database of
its own, emptied first) measures PostgreSQL instead of a SQLite file.

    python bench/search_index.py [--mb 50] [--history 2.1.197|2.1.332] [--repeat 3]
                                 [--baseline 0be4de5] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

from kapacitor.capture.importer import import_paths
from kapacitor.memory import search
from kapacitor.projections import search_index
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner, reset
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db

sys.path.insert(0, str(Path(__file__).resolve().parent))
bench_import = __import__("import")
ROOT = Path(__file__).resolve().parent.parent
QUERIES = ["hello.py", "test_add fails", '"No such file or directory"', "the", "review", "running tests",
           "src/widgets/hello.py", "permission"]


def from_git(revision: str, path: str, name: str) -> types.ModuleType:
    """The module at ``path`` as it was at ``revision``."""
    source = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    module = types.ModuleType(name)
    module.__file__ = f"{revision}:{path}"
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def build(store, db, projection) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Wall-clock and CPU seconds of building ``projection`` from the start of the log."""
    reset(db, projection)
    runner = ProjectionRunner(store, db, [projection])
    started, cpu = time.perf_counter(), time.process_time()
    runner.catch_up()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert not runner.failures, runner.failures
    return wall, cpu


def size(db) -> int:  # type: ignore[no-untyped-def]
    """Bytes the search tables take (SQLite: their pages, FTS5's shadow tables included)."""
    if db.dialect == "postgresql":
        return db.execute("SELECT pg_total_relation_size('search_text')").fetchone()[0]
    return db.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'search_text%'").fetchone()[0]


def queries(db, searcher) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of one search of ``QUERIES`` (each run 3 times)."""
    times = []
    for query in QUERIES * 3:
        started = time.perf_counter()
        searcher.search(db, None, query, limit=50)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--history", choices=sorted(bench_import.HISTORIES), default="2.1.197")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", default="0be4de5", help="git revision of the search without word forms")
    parser.add_argument("--postgres", metavar="URL", help="measure this (empty) PostgreSQL database instead")
    args = parser.parse_args()
    bench_import.SOURCES = bench_import.HISTORIES[args.history]
    work = Path(tempfile.mkdtemp(prefix="kapacitor-bench-"))
    files, megabytes = bench_import.make_data(work / "data", args.mb)
    url = args.postgres or f"sqlite://{work / 'store.db'}"
    store = open_store(url)
    import_paths(store, [work / "data"])
    db = open_read_db(store)
    runner = ProjectionRunner(store, db, [p for p in PROJECTIONS if p.name != search_index.PROJECTION.name])
    runner.catch_up()  # the others once: search reads ownership and joins the timeline's table
    events = store.count_after(0)
    print(f"{url.split(':')[0]} store: {files} files, {megabytes / 1e6:.0f} MB of {args.history} transcripts,"
          f" {events} events; load average {os.getloadavg()[0]:.1f}")
    old_index = from_git(args.baseline, "src/kapacitor/projections/search_index.py", "search_index_before")
    old_search = from_git(args.baseline, "src/kapacitor/memory/search.py", "search_before")
    sides = {"before": (old_index.PROJECTION, old_search), "after": (search_index.PROJECTION, search)}
    walls: dict[str, list[float]] = {side: [] for side in sides}
    cpus: dict[str, list[float]] = {side: [] for side in sides}
    sizes, latency = {}, {}
    for _ in range(args.repeat):
        for side, (projection, searcher) in sides.items():
            wall, cpu = build(store, db, projection)
            walls[side].append(wall)
            cpus[side].append(cpu)
            sizes[side], latency[side] = size(db), queries(db, searcher)
            print(f"  {side:6} build {wall:6.2f} s wall {cpu:6.2f} s cpu | index {sizes[side] / 1e6:6.1f} MB"
                  f" | search median {latency[side] * 1000:6.1f} ms", flush=True)
    for name, figures in (("wall", walls), ("cpu", cpus)):
        before, after = figures["before"], figures["after"]
        print(f"build {name}: before median {statistics.median(before):.2f} s, after {statistics.median(after):.2f} s,"
              f" ratio of medians {statistics.median(after) / statistics.median(before):.2f}x,"
              f" of fastest {min(after) / min(before):.2f}x ({events / statistics.median(after):,.0f} events/s after)")
    print(f"index size: before {sizes['before'] / 1e6:.1f} MB, after {sizes['after'] / 1e6:.1f} MB"
          f" ({sizes['after'] / sizes['before']:.2f}x); search median: before {latency['before'] * 1000:.1f} ms,"
          f" after {latency['after'] * 1000:.1f} ms")
    db.close()
    store.close()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
