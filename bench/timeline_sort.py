"""Timeline sorting at team scale: every sort key, both ways, with and without
filters, on the first page and a deep one, at --sessions sessions (default
10,000 and 100,000) on SQLite and PostgreSQL.

The store is the timeline's read model only: the read models are set up by
their own ``setup`` (every index the app makes), then ``repository_sessions``
is filled with synthetic rows through the repositories read model's own
columns (``_LISTED``): 40 repositories and 25 users (the busiest of each holds
over half the sessions; the "small repo" filter is one with about 2%), titles of 3 to 8 words (one in ten has "fix"), tokens, tool calls
and files with many ties (a third of sessions change no file), no price for
5% of sessions, no end for 2%, an eval for 10% (scores 1 to 5). Building
100,000 sessions from transcripts would take an hour; the queries read only
this table, so its rows are what matters.

A deep page is read twice: by its number (``?page=N``, old links: an OFFSET)
and by cursor (``?after=``, the Next link of the page before it: the same
sessions, read by seeking in the sort's index, ``server/paging.py``); a table
gives each as a multiple of the same sort's first page.

Each case is ``queries.session_list`` (what ``/``, ``/sessions.json`` and
``kapacitor sessions`` call: the count, the page, its live status, eval scores
and marks), median of --repeat runs after one warm-up, in ms, and its ratio to
the default order (newest first) with the same filter and page, measured in
the same rounds (every sort of a case timed in turns). ``--before`` drops the
sort indexes (the store as it was before they were added) for comparison.
PostgreSQL tables are vacuumed and analyzed after the bulk load (autovacuum
does it in service; index-only scans need the visibility map it sets).

    python bench/timeline_sort.py [--sessions 10000 100000] [--backend sqlite postgresql]
        [--postgres URL] [--repeat 5] [--before] [--best] [--cpu]

``--postgres`` (or KAPACITOR_TEST_POSTGRES_URL) is a server URL: a scratch
database is made there and dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kapacitor.access.viewer import LOCAL
from kapacitor.projections import repositories
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import open_read_models, reset
from kapacitor.server import queries
from kapacitor.server.queries import Filters
from kapacitor.store.readdb import ReadDb

WORDS = ("add fix refactor test docs update remove rename parser server client cache index query page "
         "timeline sort filter bug crash slow memory token cost eval chat trace hook spool import export").split()


def rows(n: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """``n`` synthetic ``repository_sessions`` rows in ``repositories._LISTED`` order."""
    rng = random.Random(seed)
    repos = [f"acme/repo-{i:02d}" for i in range(40)]
    users = [f"dev{i:02d}" for i in range(25)]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        sid = f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-8{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}"
        started = start + timedelta(seconds=rng.randrange(365 * 86400), milliseconds=rng.randrange(1000))
        key = repos[min(int(rng.paretovariate(1.2)) - 1, 39)]
        user = users[min(int(rng.paretovariate(1.1)) - 1, 24)]
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
        title = title[0].upper() + title[1:]
        calls = int(rng.expovariate(1 / 30))
        files = 0 if rng.random() < 1 / 3 else rng.randint(1, 30)
        tokens = {k: int(rng.lognormvariate(9, 2)) for k in repositories.TOKEN_KINDS}
        cost = None if rng.random() < 0.05 else round(rng.lognormvariate(-1, 1.5), 6)
        duration = None if rng.random() < 0.02 else round(rng.expovariate(1 / 1800), 3)
        score = rng.randint(1, 5) if rng.random() < 0.1 else None
        listed = {"session_id": sid, "title": title, "repo": key, "repo_kind": "github", "branch": "main", "user": user,
                  "started": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "duration_seconds": duration,
                  "tokens": sum(tokens.values()), "cost_usd": cost, "files_changed": files, "tool_calls": calls,
                  "tool_errors": calls // 10, "active_seconds": (duration or 0) / 2, **tokens}
        ended = (started + timedelta(seconds=duration or 0)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        out.append((sid, key, listed["tokens"], calls, files, ended, listed["started"], user, title, json.dumps(listed),
                    *(listed[name] for name in repositories.FIGURES), duration, score))
    return out


def fill(conn: ReadDb, n: int, before: bool) -> None:
    for projection in PROJECTIONS:
        reset(conn, projection)
    if before:
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'repository_sessions_by%' OR name = 'repository_sessions_newest'"
            if conn.dialect == "sqlite" else
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'repository_sessions_by%' OR indexname = 'repository_sessions_newest'"
        ).fetchall():
            conn.execute(f"DROP INDEX {name}")
    data = rows(n)
    sql = conn.upsert("repository_sessions", repositories._LISTED, ("session_id",))
    with conn.transaction():
        for at in range(0, len(data), 5000):
            conn.executemany(sql, data[at: at + 5000])
        conn.executemany(
            "INSERT INTO evals (eval_id, session_id, completed_at, overall, data) VALUES (?, ?, ?, ?, '{}')",
            [(f"e{r[0]}", r[0], r[5], r[-1]) for r in data if r[-1] is not None],
        )
    if conn.dialect == "postgresql":
        conn.execute("VACUUM ANALYZE")


def measure(conn: ReadDb, repeat: int, pick: Any = statistics.median, clock: Any = time.perf_counter) -> tuple[list[str], dict[str, dict[str, tuple[float, float]]]]:
    """{sort: {case: (ms, ratio to the default order's ms in that case)}}. The
    sorts of a case are timed in turns (each round times every sort once), so
    a change in the machine's load falls on all of them alike. ``pick``: the
    rounds' figure (median; ``min``, the least disturbed, on a loaded machine);
    ``clock``: wall time, or ``time.process_time`` (SQLite's queries run in this
    process: its CPU time leaves out the waits for a core of a loaded machine)."""
    top_repo, top_user = conn.execute(
        'SELECT (SELECT key FROM repository_sessions GROUP BY key ORDER BY count(*) DESC LIMIT 1),'
        ' (SELECT "user" FROM repository_sessions GROUP BY "user" ORDER BY count(*) DESC LIMIT 1)'
    ).fetchone()
    (everyone,) = conn.execute("SELECT count(*) FROM repository_sessions").fetchone()
    (small_repo,) = conn.execute(  # about 2% of the sessions
        "SELECT key FROM repository_sessions GROUP BY key ORDER BY abs(count(*) - ?), key LIMIT 1", (everyone // 50,)
    ).fetchone()
    filters = {"all": Filters(), "repo": Filters(repo=top_repo), "small repo": Filters(repo=small_repo),
               "user": Filters(user=top_user), "text": Filters(q="fix")}
    sorts = ["", *(s for key in queries.SORTS for s in (f"-{key}", key) if s != "-started")]
    cases, results = [], {}
    for fname, base in filters.items():
        total = queries.session_list(conn, base, LOCAL)["total"]
        deep = max(1, -(-total // queries.PAGE_SIZE) // 2)
        for page_name, page in (("first", 1), (f"page {deep}", deep), (f"page {deep} by cursor", deep)):
            case = f"{fname}, {page_name}"
            cases.append(case)
            if page_name.endswith("cursor"):  # the Next link of the page before: the same sessions, read by seeking
                chosen = [Filters(**{**base.__dict__, "sort": sort, "after": _next_of(conn, base, sort, deep - 1)})
                          if deep > 1 else Filters(**{**base.__dict__, "sort": sort}) for sort in sorts]
            else:
                chosen = [Filters(**{**base.__dict__, "sort": sort, "page": page}) for sort in sorts]
            spent: list[list[float]] = [[] for _ in sorts]
            for round_ in range(repeat + 1):  # the first round warms up
                for n, filters_ in enumerate(chosen):
                    started = clock()
                    queries.session_list(conn, filters_, LOCAL)
                    if round_:
                        spent[n].append((clock() - started) * 1000)
            baseline = pick(spent[0])
            for sort, times_ in zip(sorts, spent, strict=True):
                ms = pick(times_)
                results.setdefault(sort or "-started (default)", {})[case] = (ms, ms / baseline)
    return cases, results


def _next_of(conn: ReadDb, base: Filters, sort: str, page: int) -> str:
    """The ``next`` cursor of page ``page`` of ``base`` sorted by ``sort``."""
    return queries.session_list(conn, Filters(**{**base.__dict__, "sort": sort, "page": page}), LOCAL)["next"]


def report_deep(cases: list[str], results: dict[str, dict[str, tuple[float, float]]]) -> None:
    """Each filter's deep page by offset and by cursor, as a multiple of the same
    sort's first page (same filter, same run)."""
    filters = [c.removesuffix(", first") for c in cases if c.endswith(", first")]
    print("\nDeep page ÷ first page of the same sort (by offset → by cursor):\n")
    print("| sort | " + " | ".join(filters) + " |")
    print("|---|" + "---|" * len(filters))
    worst = {f: [0.0, 0.0] for f in filters}
    for sort, by_case in results.items():
        cells = []
        for f in filters:
            first = by_case[f"{f}, first"][0]
            offset, cursor = (next(v[0] for c, v in by_case.items() if c.startswith(f"{f}, page") and c.endswith(end))
                              for end in (tuple("0123456789"), "cursor"))
            cells.append(f"{offset / first:.2f}× → {cursor / first:.2f}×")
            worst[f] = [max(worst[f][0], offset / first), max(worst[f][1], cursor / first)]
        print(f"| `{sort}` | " + " | ".join(cells) + " |")
    print("| worst | " + " | ".join(f"{o:.2f}× → {c:.2f}×" for o, c in worst.values()) + " |", flush=True)


def report(label: str, cases: list[str], results: dict[str, dict[str, tuple[float, float]]]) -> None:
    print(f"\n### {label}\n")
    print("| sort | " + " | ".join(cases) + " |")
    print("|---|" + "---|" * len(cases))
    for sort, by_case in results.items():
        print(f"| `{sort}` | " + " | ".join(f"{by_case[c][0]:.1f} ({by_case[c][1]:.2f}×)" for c in cases) + " |")
    worst = max((r[1], s, c) for s, by in results.items() for c, r in by.items() if c.endswith("first"))
    print(f"\nworst first page: `{worst[1]}` {worst[2]}: {worst[0]:.2f}× the default order", flush=True)
    report_deep(cases, results)


def postgres_db(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres_db(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backend", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=os.environ.get("KAPACITOR_TEST_POSTGRES_URL", ""))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", action="store_true", help="without the sort indexes (as before they were added)")
    parser.add_argument("--best", action="store_true", help="each case's fastest round, not the median (a loaded machine)")
    parser.add_argument("--cpu", action="store_true", help="this process's CPU time, not wall time (SQLite only: PostgreSQL works in its server)")
    args = parser.parse_args()
    if args.before:
        queries._in_sort_order = lambda *_: ""  # no sort index to name
    for backend in args.backend:
        for n in args.sessions:
            name = f"kapacitor_bench_sort_{n}"
            with tempfile.TemporaryDirectory(prefix="kapacitor-bench-") as work:
                if backend == "sqlite":
                    target = str(Path(work) / "read.db")
                else:
                    if not args.postgres:
                        raise SystemExit("PostgreSQL: give --postgres URL or set KAPACITOR_TEST_POSTGRES_URL")
                    target = postgres_db(args.postgres, name)
                conn = open_read_models(target)
                started = time.perf_counter()
                fill(conn, n, args.before)
                print(f"{backend}, {n:,} sessions: filled in {time.perf_counter() - started:.1f} s"
                      f" (load average {os.getloadavg()[0]:.1f})", flush=True)
                clock = time.process_time if args.cpu and backend == "sqlite" else time.perf_counter
                cases, results = measure(conn, args.repeat, min if args.best else statistics.median, clock)
                conn.close()
                if backend == "postgresql":
                    drop_postgres_db(args.postgres, name)
            unit = "CPU ms" if args.cpu and backend == "sqlite" else "ms"
            report(f"{backend}, {n:,} sessions{' (before: no sort indexes)' if args.before else ''}, {unit} (× default order)", cases, results)


if __name__ == "__main__":
    main()
