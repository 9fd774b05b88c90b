"""Search as people and scripts meet it: ``/api/search``, the ``/search`` page and
``kapacitor search``, on a store of about ``--mb`` megabytes of transcripts (the
recorded ones replicated under fresh ids, as bench/import.py) or ``--store``,
its read models brought up to date once first.

  server  each query of ``QUERIES`` (bench/search_index.py's) ``--requests``
          times, in-process (httpx over the ASGI app, no network): p50 and p95
          server time in ms, per route and over all queries
  CLI     the whole ``kapacitor search QUERY`` process (and ``--json``), each
          query ``--runs`` times: medians of wall-clock and CPU (user + sys, the
          figure to trust on a shared machine), beside ``kapacitor --version``

Issue 14 (search) names no time; the one the dashboard's pages are held to
(issue 4) is p95 < 100 ms of server time. ``bench/search_index.py`` measures
the queries before and after word forms, in-process.

    python bench/search_latency.py [--mb 200] [--store PATH.db] [--requests 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.server.app import create_app
from kapacitor.store import open_store

sys.path.insert(0, str(Path(__file__).resolve().parent))
built_store = __import__("sessions_json").built_store
QUERIES = __import__("search_index").QUERIES


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples``."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def server_times(app, route: str, requests: int) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    """Milliseconds of each request of ``route`` for each query."""
    out: dict[str, list[float]] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for query in QUERIES:
            url = f"{route}?q={quote(query)}"
            assert (await client.get(url)).status_code == 200  # warm: templates, connections, caches
            out[query] = []
            for _ in range(requests):
                started = time.perf_counter()
                response = await client.get(url)
                out[query].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code)
    return out


def process(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + sys) of one process."""
    started, before = time.perf_counter(), os.times()
    subprocess.run(argv, capture_output=True, check=True, env=env)
    after = os.times()
    return time.perf_counter() - started, after[2] + after[3] - before[2] - before[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--store", type=Path, help="an existing store file to measure (else one is built)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    path = built_store(args.store, args.mb)
    store = open_store(f"sqlite://{path}")
    runner = ProjectionRunner(store, path, list(PROJECTIONS))
    started = time.perf_counter()
    runner.catch_up()
    print(f"read models brought up to date in {time.perf_counter() - started:.1f} s (once); {store.count_after(0):,} events,"
          f" store {path.stat().st_size / 1e6:.0f} MB")
    runner.close()
    store.close()

    app = create_app(f"sqlite://{path}", run_projections=False)
    for route in ("/api/search", "/search"):
        times = asyncio.run(server_times(app, route, args.requests))
        every = [t for ts in times.values() for t in ts]
        p50, p95 = percentiles(every)
        print(f"\n{route}: all queries p50 {p50:.1f} ms, p95 {p95:.1f} ms (max {max(every):.1f} ms);"
              f" load average {os.getloadavg()[0]:.1f}")
        for query, ts in times.items():
            q50, q95 = percentiles(ts)
            print(f"  {query!r:32} p50 {q50:7.1f} ms  p95 {q95:7.1f} ms")
    app.state.runner.close()
    app.state.store.close()

    # As an installed package runs: bytecode cached (see bench/sessions_json.py).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base = [sys.executable, "-m", "kapacitor", "--store", f"sqlite://{path}"]
    process([*base, "search", "warm"], env)
    print(f"\nkapacitor search (whole process, medians of {args.runs}; load average {os.getloadavg()[0]:.1f}):")
    walls, cpus = [], []
    for query in QUERIES:
        for extra in ([], ["--json"]):
            runs = [process([*base, "search", query, *extra], env) for _ in range(args.runs)]
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            walls.append(wall)
            cpus.append(cpu)
            print(f"  {query!r:32} {' '.join(extra):6} wall {wall:.3f} s  cpu {cpu:.3f} s")
    version = [process([sys.executable, "-m", "kapacitor", "--version"], env) for _ in range(args.runs)]
    print(f"  all: wall median {statistics.median(walls):.3f} s (max {max(walls):.3f}), cpu median {statistics.median(cpus):.3f} s"
          f" (max {max(cpus):.3f}); kapacitor --version: wall {statistics.median(v[0] for v in version):.3f} s,"
          f" cpu {statistics.median(v[1] for v in version):.3f} s")


if __name__ == "__main__":
    main()
