"""Dashboard at scale: a synthetic store of --sessions sessions (~--events
events), made by replaying the real recorded transcripts under fresh ids, then:

  rebuild     every read model from the whole log (events/s)
  list        GET /sessions.json and GET / (first page, and a filtered page)
  overview    GET /overview.json, /overview and a repository's page (every session in range)
  chat        GET /sessions/{id} (first slice of the chat) for sampled sessions
  trace       GET /sessions/{id}/trace
  stats       GET /sessions/{id}/stats

Server time is measured in-process (httpx over the ASGI app, no network): p50
and p95 over --requests requests each. Sessions are lengthened to reach the
event target: each one concatenates several fresh-id copies of a real session
under one session id.

    python bench/dashboard.py [--sessions 10000] [--events 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

from kapacitor.capture.importer import import_paths
from kapacitor.capture.synthetic import copy_text, fresh_id
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner, reset
from kapacitor.server.app import create_app
from kapacitor.store import open_store

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT.parent / "shared" / "claude-code" / "recorded"
SOURCES = [RECORDED / "projects", RECORDED / "interactive" / "projects"]
EVENTS_PER_COPY = 30.13  # events a copy of a sample session adds, on average (measured)


def make_transcripts(target: Path, sessions: int, copies: float) -> int:
    """``sessions`` transcripts, each about ``copies`` fresh-id copies of a real
    session (with its subagents) joined under the first copy's session id."""
    mains = sorted(p for s in SOURCES for p in s.glob("*/*.jsonl"))
    written = 0
    for n in range(sessions):
        first = int(n * copies)  # this session's copies are first, first + 1, ...: never another's
        repeat = int((n + 1) * copies) - first  # averages to ``copies``
        main = mains[n % len(mains)]
        sid = main.stem.encode()
        new_sid = fresh_id(sid, first)
        group = [main, *sorted((main.parent / main.stem / "subagents").glob("agent-*"))]
        for path in group:
            rel = path.relative_to(main.parent)
            chunks = []
            for r in range(repeat):
                copy = first + r
                chunks.append(copy_text(path.read_bytes(), copy).replace(fresh_id(sid, copy), new_sid))
            out = target / main.parent.name / copy_text(str(rel).encode(), first).decode()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(b"".join(chunks))
            written += 1
    return written


def _timed(name, apply, spent):  # type: ignore[no-untyped-def]
    """``apply`` that adds the CPU time it takes to ``spent[name]`` (CPU, not wall:
    the machine may be shared)."""
    def timed_apply(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.process_time()
        try:
            return apply(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.process_time() - started
    return timed_apply


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def timed(client: httpx.AsyncClient, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        response = await client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


async def measure_pages(app, session_ids: list[str], requests: int) -> dict[str, tuple[float, float]]:  # type: ignore[no-untyped-def]
    rng = random.Random(1)
    picks = [rng.choice(session_ids) for _ in range(requests)]
    repo = (await httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1").get("/repos.json")).json()[0]["key"]
    pages = {
        "session list JSON (/sessions.json)": ["/sessions.json"] * requests,
        "session list page (/)": ["/"] * requests,
        "filtered list page (/?repo=…&q=…)": [f"/?repo={repo}&q=fix"] * requests,
        "overview JSON (/overview.json, 30 days)": ["/overview.json"] * requests,
        "overview page (/overview, 30 days)": ["/overview"] * requests,
        "repository page (/repos/{key})": [f"/repos/{repo}"] * requests,
        "chat page (/sessions/{id})": [f"/sessions/{s}" for s in picks],
        "trace page (/sessions/{id}/trace)": [f"/sessions/{s}/trace" for s in picks],
        "stats page (/sessions/{id}/stats)": [f"/sessions/{s}/stats" for s in picks],
    }
    out = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
        for name, urls in pages.items():
            await timed(client, urls[:3])  # warm up
            out[name] = percentiles(await timed(client, urls))
    return out


def report_pages(db: Path, sessions: list[str], requests: int) -> None:
    app = create_app(f"sqlite://{db}", run_projections=False)
    results = asyncio.run(measure_pages(app, sessions, requests))
    print(f"\n| page ({requests} requests) | p50 ms | p95 ms |\n|---|---|---|")
    for name, (p50, p95) in results.items():
        print(f"| {name} | {p50:.1f} | {p95:.1f} |")
    app.state.runner.close()
    app.state.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--batch-size", type=int, help="events per projection batch (default: the runner's)")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store in this dir and keep it")
    parser.add_argument("--rebuild-only", action="store_true", help="measure the rebuild, not the pages")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="kapacitor-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "events.db"
    store = open_store(f"sqlite://{db}")
    if store.head_position() == 0:
        copies = max(1.0, args.events / args.sessions / EVENTS_PER_COPY)
        started = time.perf_counter()
        files = make_transcripts(work / "projects", args.sessions, copies)
        print(f"transcripts: {files:,} files ({copies:.2f} copies per session) in {time.perf_counter() - started:.1f} s", flush=True)
        summary = import_paths(store, [work / "projects"])
        print(f"import: {summary.events_added:,} events in {summary.seconds:.1f} s", flush=True)
    head = store.head_position()
    spent: dict[str, float] = {}
    timed_projections = [replace(p, apply=_timed(p.name, p.apply, spent)) for p in PROJECTIONS]
    runner = ProjectionRunner(store, db, timed_projections, **({"batch_size": args.batch_size} if args.batch_size else {}))
    for projection in timed_projections:
        reset(runner.conn, projection)  # as `kapacitor projections rebuild`
    store.read_all = _timed("reading and decoding the log", store.read_all, spent)  # type: ignore[method-assign]
    started, cpu_started = time.perf_counter(), time.process_time()
    runner.catch_up()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    assert not runner.failures, runner.failures
    sessions = [sid for (sid,) in runner.conn.execute("SELECT session_id FROM sessions")]
    runner.close()
    store.close()
    print(f"store: {len(sessions):,} sessions, {head:,} events, {db.stat().st_size / 1e9:.2f} GB")
    print(f"rebuild of all read models: {seconds:.1f} s = {head / seconds:,.0f} events/s"
          f" (CPU {cpu:.1f} s = {head / cpu:,.0f} events/s)", flush=True)
    parts = ", ".join(f"{n} {t:.1f} s" for n, t in spent.items())
    print(f"  CPU: {parts}, the runner (checkpoints, commits, freeing batches) {cpu - sum(spent.values()):.1f} s", flush=True)
    if not args.rebuild_only:
        report_pages(db, sessions, args.requests)
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
