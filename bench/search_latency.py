"""Search as people and scripts meet it: ``/api/search``, the ``/search`` page and
``kapacitor search``, on a store of about ``--mb`` megabytes of transcripts (the
recorded ones replicated under fresh ids, as bench/import.py) or ``--store``,
its read models brought up to date once first.

  server  ``/api/search`` for each query of ``QUERIES`` (bench/search_index.py's:
          on the replicated store each matches 2,676 to 49,506 texts, more than
          a search ranks: broad) and of ``NARROW`` (fewer matches than that),
          served by the search code of ``--before`` (a git revision, loaded
          from git: every match ranked) and by today's (the newest
          ``search.RANKED_WITHIN`` ranked), alternately, ``--requests`` times
          each, in-process (httpx over the ASGI app, no network): p50 and p95
          server time in ms, per query and over the broad and narrow ones;
          the narrow queries' hits are checked to be the same for both. Then
          the ``/search`` page (today's code only)
  viewer  (``--viewers``; writes owners into the store: a bench store only)
          the search function, before and after, for a signed-in viewer of a
          team server who may see a tenth of the sessions (each owned by one
          of ten users, private) and for one who may see all of them (``org``)
  CLI     the whole ``kapacitor search QUERY`` process (and ``--json``), each
          query ``--runs`` times: medians of wall-clock and CPU (user + sys, the
          figure to trust on a shared machine), beside ``kapacitor --version``

Issue 14 (search) names no time; the one the dashboard's pages are held to
(issue 4) is p95 < 100 ms of server time. ``bench/search_index.py`` measures
the queries before and after word forms, in-process.

    python bench/search_latency.py [--mb 200] [--store PATH.db] [--requests 20] [--runs 3]
                                   [--before 0746a78] [--viewers]
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
from urllib.parse import urlencode

import httpx

from kapacitor.access import accounts
from kapacitor.access.viewer import Viewer
from kapacitor.memory import search
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.server import memory_api
from kapacitor.server.app import create_app
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db

sys.path.insert(0, str(Path(__file__).resolve().parent))
built_store = __import__("sessions_json").built_store
search_index = __import__("search_index")
QUERIES = search_index.QUERIES
NARROW = ['"File has not been read yet"', "rejected"]
"""Queries with fewer matches than a search ranks on the replicated store (1,338
and none), beside ``hello.py`` within one session (``narrow_queries``)."""


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of ``samples``."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def narrow_queries(path: Path) -> list[dict[str, str]]:
    """``NARROW``, and ``hello.py`` within the newest session that holds it."""
    conn = open_read_db(open_store(f"sqlite://{path}"))
    session = conn.execute("SELECT session_id FROM search_text WHERE search_text MATCH 'stems : \"hello py\"'"
                           " ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    conn.close()
    return [{"q": q} for q in NARROW] + [{"q": "hello.py", "session": session}]


async def server_times(app, route: str, queries: list[dict[str, str]], requests: int,  # type: ignore[no-untyped-def]
                       versions: dict[str, object]) -> dict[str, dict[str, list[float]]]:
    """Milliseconds of each request of ``route`` for each query, by each version of
    the search module (``memory_api.search`` swapped), alternately."""
    out: dict[str, dict[str, list[float]]] = {name: {} for name in versions}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for params in queries:
            url, key = f"{route}?{urlencode(params)}", " ".join(params.values())
            answers = {}
            for name, module in versions.items():  # warm: templates, connections, caches
                memory_api.search = module  # type: ignore[assignment]
                response = await client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                answers[name] = [{k: v for k, v in hit.items() if k != "ranked_within"} for hit in response.json()] \
                    if route == "/api/search" else None
                out[name][key] = []
            if len(versions) > 1 and params not in [{"q": q} for q in QUERIES]:
                assert len({str(a) for a in answers.values()}) == 1, f"{key}: narrow hits differ"
            for _ in range(requests):
                for name, module in versions.items():
                    memory_api.search = module  # type: ignore[assignment]
                    started = time.perf_counter()
                    response = await client.get(url)
                    out[name][key].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (url, response.status_code)
    memory_api.search = search  # type: ignore[assignment]
    return out


def report(label: str, times: dict[str, list[float]]) -> None:
    """p50 and p95 over all of ``times``' queries, then each query's."""
    every = [t for ts in times.values() for t in ts]
    p50, p95 = percentiles(every)
    print(f"  {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms (max {max(every):.1f} ms)")
    for query, ts in times.items():
        q50, q95 = percentiles(ts)
        print(f"    {query[:60]!r:62} p50 {q50:7.1f} ms  p95 {q95:7.1f} ms")


def viewer_times(path: Path, versions: dict[str, object], queries: list[dict[str, str]], requests: int) -> None:
    """The search function, each version alternately, for a viewer who may see a
    tenth of the sessions and for one who may see all (``org``), in-process."""
    conn = accounts.open_accounts(path)
    ids = [sid for (sid,) in conn.execute("SELECT session_id FROM repository_sessions ORDER BY session_id")]
    for who, visibility in (("a tenth (own, private)", None), ("all (org)", "org")):
        with conn.transaction():
            conn.execute("DELETE FROM session_access")
            conn.executemany("INSERT INTO session_access (session_id, owner, visibility, changed_at) VALUES (?, ?, ?, '')",
                             [(sid, f"user{i % 10}", visibility) for i, sid in enumerate(ids)])
        print(f"\nsearch() for a viewer who may see {who} of {len(ids):,} sessions; load average {os.getloadavg()[0]:.1f}:")
        for params in queries:
            kw = {"session_id": params["session"]} if "session" in params else {}
            times: dict[str, list[float]] = {name: [] for name in versions}
            hits: dict[str, int] = {}
            for _ in range(requests):
                for name, module in versions.items():
                    started = time.perf_counter()
                    hits[name] = len(module.search(conn, Viewer("user3"), params["q"], limit=50, **kw))  # type: ignore[attr-defined]
                    times[name].append((time.perf_counter() - started) * 1000)
            print(f"  {' '.join(params.values())[:40]!r:42}" + "".join(
                f"  {name} p50 {percentiles(ts)[0]:7.1f} ms, {hits[name]:2} hits" for name, ts in times.items()))
    conn.execute("DELETE FROM session_access")
    conn.close()


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
    parser.add_argument("--before", default="0746a78", help="the git revision whose search code is 'before'")
    parser.add_argument("--viewers", action="store_true", help="also time a team server's viewers (writes owners into the store)")
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

    before = search_index.from_git(args.before, "src/kapacitor/memory/search.py", "search_before")
    versions = {"before": before, "after": search}
    narrow = narrow_queries(path)
    app = create_app(f"sqlite://{path}", run_projections=False)
    times = asyncio.run(server_times(app, "/api/search", [{"q": q} for q in QUERIES] + narrow, args.requests, versions))
    print(f"\n/api/search, before ({args.before}: every match ranked) and after (the newest {search.RANKED_WITHIN:,}"
          f" ranked), alternately; load average {os.getloadavg()[0]:.1f}")
    for name, by_query in times.items():
        broad = {q: ts for q, ts in by_query.items() if q in QUERIES}
        report(f"{name}, broad", broad)
        report(f"{name}, narrow", {q: ts for q, ts in by_query.items() if q not in broad})
    page = asyncio.run(server_times(app, "/search", [{"q": q} for q in QUERIES] + narrow, args.requests, {"after": search}))
    print(f"\n/search (page, today's code); load average {os.getloadavg()[0]:.1f}")
    report("all queries", page["after"])
    app.state.runner.close()
    app.state.store.close()
    if args.viewers:
        viewer_times(path, versions, [{"q": q} for q in ("hello.py", "the", "permission")] + narrow, args.requests)

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
