"""Import throughput against its limit: merely parsing the same JSON lines.

Replicates the real recorded transcripts (../shared/claude-code/recorded) under
fresh ids until they reach --mb megabytes, then measures, in the same run:

  parse only  reading every line and orjson.loads() on it (the floor)
  normalize   reading, redacting, parsing and mapping to events, not stored
  import      `kapacitor import` into a fresh SQLite store (normalize, redact,
              keep the raw line, append with idempotency checks, checkpoints)

and prints events/s, MB/s and the ratio import / parse-only, by wall-clock time
(the acceptance figure) and by CPU time (steadier on a machine shared with other
work: waiting for a core or the disk is not counted). Also measures a second,
no-op import of the same files (what a rerun costs), and what redaction costs:
the same import into another fresh store with redaction switched off in the
config file (``"redaction": {"enabled": false}``), alternated with redacted
ones ``--repeat`` times (10 rounds by default), each import in a fresh Python
process (``--isolate gc``: in this one, after ``gc.collect()``). Each round
has, in turn, the import without redaction and with it masked each way
``--masking`` names: ``inline`` (in the importer's process: the import before
the masking worker), ``auto`` (in a worker process beside it when the import
is large enough and the machine has a core to spare: what `kapacitor import`
does now; see ``capture/masking.py``) and ``worker`` (in a worker whatever
the size and the load); all three by default, so before and after are measured in
the same run. Each import first counts the bytes it will read, as `kapacitor
import` does for its progress bar (the worker starts from that count). Per
way it prints the ratio of the medians and of the fastest runs, the median of
the paired ratios (with / without, round by round) with their quartiles and
range, by wall-clock time and by CPU time of the importer's process alone and
with the worker's added (the worker's own count of its CPU, start-up
included: the worker saves wall time on a free core, never CPU), and,
measured inside each redacted import by timers wrapped around the redactor's
entry points, the redactor's own CPU time in the importer's process and
import CPU / (import CPU - the redactor's); for the worker, when it was ready,
how long the importer waited for its answers and the share of bytes it
masked. Target: <= 1.10. ``--worker-from MB`` moves the size from which
``auto`` uses a worker (0: always, to measure its break-even).

``--history 2.1.332`` replicates the Claude Code 2.1.332 recordings instead
(../shared/claude-code/recorded-2.1.332: new record types, ~6.5x larger lines)
instead. Either way the bench also measures, in the same run, the stored bytes
per event with long strings kept inline (the store before content-addressed
chunks: a second import into another fresh store) and as chunks stored once per
store (``kapacitor.store.blobs``).

    python bench/import.py [--mb 200] [--history 2.1.197|2.1.332] [--repeat 10] [--isolate process|gc]
                           [--masking inline,auto,worker] [--worker-from MB] [--keep]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from kapacitor.capture.importer import import_paths, pending_bytes
from kapacitor.capture import masking
from kapacitor.capture.masking import Masker
from kapacitor.capture.synthetic import replicate
from kapacitor.capture.transcripts import find_transcripts
from kapacitor.normalize import redact
from kapacitor.store import blobs, open_store

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT.parent / "shared" / "claude-code" / "recorded"
RECORDED_332 = ROOT.parent / "shared" / "claude-code" / "recorded-2.1.332"
HISTORIES = {
    "2.1.197": [RECORDED / "projects", RECORDED / "interactive" / "projects"],
    "2.1.332": sorted(RECORDED_332.glob("*/projects")),
}
SOURCES = HISTORIES["2.1.197"]


def make_data(target: Path, megabytes: int) -> tuple[int, int]:
    sample_bytes = sum(p.stat().st_size for d in SOURCES for p in d.rglob("*.jsonl"))
    copies = max(1, -(-megabytes * 1_000_000 // sample_bytes))
    for source in SOURCES:
        for _ in replicate(source, target / source.parent.name, copies):
            pass
    files = list(target.rglob("*.jsonl"))
    return len(files), sum(p.stat().st_size for p in files)


class Timer:
    """Wall-clock and CPU seconds of a block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def parse_only(target: Path) -> int:
    lines = 0
    for path in sorted(target.rglob("*.jsonl")):
        with path.open("rb") as handle:
            for line in handle:
                orjson.loads(line)
                lines += 1
    return lines


def normalize_only(target: Path) -> int:
    """Read, redact, parse and map every line to events, without storing them."""
    from kapacitor.normalize.claude_code import Normalizer

    events = 0
    for tf in find_transcripts([target]):
        normalizer = Normalizer(tf.source)
        offset = 0
        with tf.path.open("rb") as handle:
            for number, line in enumerate(handle):
                events += len(normalizer.feed(line.rstrip(b"\n"), offset, number))
                offset += len(line)
    return events


def redaction(work: Path, enabled: bool) -> None:
    """Switch redaction on or off the way a user does: the config file."""
    config = work / "config"
    (config / "kapacitor").mkdir(parents=True, exist_ok=True)
    (config / "kapacitor" / "client.json").write_text(json.dumps({"redaction": {"enabled": enabled}}))
    os.environ["XDG_CONFIG_HOME"] = str(config)
    os.environ["XDG_STATE_HOME"] = str(work / "state")
    redact.reset()


class RedactionClock:
    """CPU seconds spent inside the redactor during an import: its entry points
    (loading the rule set, choosing it for a file, masking lines, JSON and text)
    wrapped with a timer, outermost calls only. A bench may do this; a test may not."""

    METHODS = ("for_location", "masked_lines", "redact_bytes", "redact_json", "redact", "mask")

    def __init__(self) -> None:
        self.cpu = 0.0
        self.calls = 0
        self._depth = 0
        redact.default = self._timed(redact.default)
        for name in self.METHODS:
            setattr(redact.Redactor, name, self._timed(getattr(redact.Redactor, name)))

    def _timed(self, function):  # type: ignore[no-untyped-def]
        def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
            if self._depth:
                return function(*args, **kwargs)
            self._depth += 1
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.cpu += time.process_time() - started
                self.calls += 1
                self._depth -= 1

        return timed


def one_import(work: Path, data: Path, how: str, clock: RedactionClock) -> dict:
    """One import into a fresh store (``how``: ``off``, redaction switched off,
    into ``plain.db``; ``inline`` or ``auto``, redacted with that masking mode,
    into ``bench.db``): wall and CPU seconds, the redactor's CPU seconds inside
    the importer's process, the masking worker's CPU seconds and bytes, and the
    import's summary."""
    enabled = how != "off"
    db = work / ("bench.db" if enabled else "plain.db")
    for p in work.glob(db.name + "*"):
        p.unlink()
    redaction(work, enabled=enabled)
    store = open_store(f"sqlite://{db}")
    gc.collect()  # no garbage of an earlier run to collect during this one
    before = clock.cpu
    with Timer() as timer:  # as `kapacitor import` does: the bytes to read (its progress bar's total) first
        masker = Masker("inline" if how == "off" else how, expected_bytes=pending_bytes(store, find_transcripts([data])))  # type: ignore[arg-type]
        summary = import_paths(store, [data], masker=masker)
    store.close()
    return {"how": how, "wall": timer.wall, "cpu": timer.cpu, "redaction_cpu": clock.cpu - before,
            "worker_cpu": masker.worker_cpu, "worker_bytes": masker.worker_bytes, "inline_bytes": masker.inline_bytes,
            "ready_after": masker.ready_after, "waited": masker.waited, "mode": masker.mode, "load": os.getloadavg()[0],
            "events_added": summary.events_added, "errors": summary.errors}


def import_rounds(work: Path, data: Path, rounds: int, isolate: str, ways: tuple[str, ...]) -> list[dict[str, dict]]:
    """``rounds`` rounds of imports without redaction (``off``) and with it,
    masked each way of ``ways`` (``inline``: in the importer's process,
    ``auto``: in a worker process beside it when that pays), in turn (each
    first in its turn: machine noise hits all alike). ``isolate``: ``process``
    runs each in a fresh Python process (nothing of an earlier run in its heap
    or caches: what one ``kapacitor import`` costs), ``gc`` in this one after a
    full collection."""
    runs: list[dict[str, dict]] = []
    clock = RedactionClock() if isolate == "gc" else None
    kinds = ("off", *ways)
    for attempt in range(rounds):
        order = kinds[attempt % len(kinds):] + kinds[:attempt % len(kinds)]
        if attempt % 2:
            order = order[::-1]
        done = {}
        for how in order:
            if clock is not None:
                done[how] = one_import(work, data, how, clock)
            else:
                worker_from = ["--worker-from", str(masking.WORKER_FROM / 1e6)]
                out = subprocess.run([sys.executable, __file__, *worker_from, "--one-import", str(work), str(data), how],
                                     check=True, capture_output=True, text=True).stdout
                done[how] = json.loads(out.splitlines()[-1])
        runs.append(done)
        off = done["off"]
        print(f"  round {attempt + 1}/{rounds}: without redaction CPU {off['cpu']:.2f} s, wall {off['wall']:.2f} s;"
              + "; ".join(f" {how}: CPU {r['cpu']:.2f} s (+ worker {r['worker_cpu']:.2f} s), wall {r['wall']:.2f} s,"
                          f" ratio CPU {r['cpu'] / off['cpu']:.3f}, wall {r['wall'] / off['wall']:.3f}"
                          for how in ways for r in [done[how]]), flush=True)
    return runs


def spread(values: list[float]) -> str:
    """Median, quartiles and range of ``values``."""
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return f"median {statistics.median(values):.3f} (quartiles {q1:.3f}-{q3:.3f}, range {min(values):.3f}-{max(values):.3f})"


WAYS = {"inline": "in the importer's process: the import before the masking worker",
        "auto": "in a worker when it pays: what `kapacitor import` does",
        "worker": "in a worker whatever the size and load"}


def report_redaction(runs: list[dict[str, dict]], isolate: str, ways: tuple[str, ...]) -> None:
    plains = [r["off"] for r in runs]
    print(f"redaction's cost: {len(runs)} rounds, each import {'in a fresh process' if isolate == 'process' else 'in this process after gc.collect()'}"
          f"  (target <= 1.10x); load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for how in ways:
        pairs = [(r["off"], r[how]) for r in runs]
        redacted = [r for _, r in pairs]
        chose = f"; a worker in {sum(r['mode'] == 'worker' or r['mode'] == 'auto' for r in redacted)} of {len(redacted)} imports" if how == "auto" else ""
        print(f" masking {how} ({WAYS[how]}{chose}; load {spread([r['load'] for r in redacted])}):")
        for label, pick in (("medians", statistics.median), ("fastest", min)):
            on, off = pick(r["cpu"] for r in redacted), pick(p["cpu"] for p in plains)
            on_wall, off_wall = pick(r["wall"] for r in redacted), pick(p["wall"] for p in plains)
            print(f"  ratio of the {label}: {on / off:.3f}x CPU ({on:.2f} / {off:.2f} s), {on_wall / off_wall:.3f}x wall-clock")
        print(f"  paired ratios, with / without, wall: {spread([r['wall'] / p['wall'] for p, r in pairs])}")
        print(f"  paired ratios, with / without, CPU of the importer's process: {spread([r['cpu'] / p['cpu'] for p, r in pairs])}")
        print(f"  paired ratios, with / without, CPU with the worker's: {spread([(r['cpu'] + r['worker_cpu']) / p['cpu'] for p, r in pairs])}")
        inside = [r["redaction_cpu"] for r in redacted]
        print(f"  the redactor's own CPU inside the importer's process: {spread(inside)} s"
              f" (without redaction: {statistics.median(p['redaction_cpu'] for p in plains):.3f} s)")
        print(f"  importer CPU / (importer CPU - the redactor's): {spread([r['cpu'] / (r['cpu'] - r['redaction_cpu']) for r in redacted])}")
        if any(r["worker_bytes"] for r in redacted):
            ready = [r["ready_after"] for r in redacted if r["ready_after"] is not None]
            print(f"  the worker's CPU (start-up included): {spread([r['worker_cpu'] for r in redacted])} s;"
                  f" ready after {spread(ready)} s; the importer waited for its answers {spread([r['waited'] for r in redacted])} s;"
                  f" bytes masked in it"
                  f" {spread([r['worker_bytes'] / (r['worker_bytes'] + r['inline_bytes']) for r in redacted])} of all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="size of the replicated data set (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the data and store afterwards")
    parser.add_argument("--repeat", type=int, default=10, help="rounds of imports without and with redaction, alternated (default 10)")
    parser.add_argument("--masking", default="inline,auto,worker",
                        help="with redaction, each in turn: mask in the importer's process (inline), in a worker when it pays"
                             " (auto: what `kapacitor import` does), in a worker whatever the size and load (worker);"
                             " default inline,auto,worker")
    parser.add_argument("--isolate", choices=("process", "gc"), default="process",
                        help="each import of a pair in a fresh Python process (default), or in this one after gc.collect()")
    parser.add_argument("--history", choices=sorted(HISTORIES), default="2.1.197", help="which client's recordings to replicate")
    parser.add_argument("--worker-from", type=float, default=None, metavar="MB",
                        help=f"auto masking: the import size from which a worker is used (default {masking.WORKER_FROM / 1e6:.1f};"
                             " 0 to measure the worker's break-even on small imports)")
    parser.add_argument("--one-import", nargs=3, metavar=("WORK", "DATA", "OFF|INLINE|AUTO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_from is not None:
        masking.WORKER_FROM = int(args.worker_from * 1e6)
    if args.one_import:  # one import of a pair, in a fresh process: its figures as JSON
        work, data, how = args.one_import
        print(json.dumps(one_import(Path(work), Path(data), how, RedactionClock())))
        return
    global SOURCES
    SOURCES = HISTORIES[args.history]
    work = Path(tempfile.mkdtemp(prefix="kapacitor-bench-"))
    try:
        data = work / "data"
        files, nbytes = make_data(data, args.mb)
        mb = nbytes / 1e6
        print(f"data: {files:,} files, {mb:,.1f} MB (replicated from {', '.join(str(s) for s in SOURCES)})")
        print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        parse_only(data)  # warm the page cache so every run reads from memory
        with Timer() as parse:
            lines = parse_only(data)
        with Timer() as normalize:
            normalize_only(data)
        ways = tuple(args.masking.split(","))
        assert set(ways) <= {"inline", "auto", "worker"}, ways
        runs = import_rounds(work, data, args.repeat, args.isolate, ways)
        imported = runs[-1][ways[-1]]
        redaction(work, enabled=True)
        store = open_store(f"sqlite://{work / 'bench.db'}")  # the last import with redaction
        with Timer() as again:
            rerun = import_paths(store, [data])
        db_mb = sum(p.stat().st_size for p in work.glob("bench.db*")) / 1e6
        store.close()
        assert all(r["errors"] == 0 for done in runs for r in done.values()) and rerun.events_added == 0
        print(f"parse only : {parse.wall:6.2f} s  cpu {parse.cpu:6.2f} s  {lines / parse.wall:10,.0f} lines/s  {mb / parse.wall:6.1f} MB/s")
        print(f"normalize  : {normalize.wall:6.2f} s  cpu {normalize.cpu:6.2f} s  (read + redact + parse + map to events, not stored)")
        print(
            f"import     : {imported['wall']:6.2f} s  cpu {imported['cpu']:6.2f} s  {imported['events_added'] / imported['wall']:10,.0f} events/s"
            f"  {mb / imported['wall']:6.1f} MB/s  ({imported['events_added']:,} events, store {db_mb:,.0f} MB)"
        )
        print(f"rerun      : {again.wall:6.2f} s  cpu {again.cpu:6.2f} s  (adds {rerun.events_added} events)")
        report_redaction(runs, args.isolate, ways)
        chunked = Timer()
        chunked.wall, chunked.cpu = imported["wall"], imported["cpu"]
        storage(work, data, chunked, mb)
        print(
            f"ratio import / parse-only: {imported['wall'] / parse.wall:.2f}x wall-clock,"
            f" {imported['cpu'] / parse.cpu:.2f}x CPU  (target <= 3x)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)


def storage(work: Path, data: Path, chunked: Timer, mb: float) -> None:
    """Stored bytes per event: long strings inline (the baseline, this run) vs chunked."""
    store = open_store(f"sqlite://{work / 'bench.db'}")
    after = store.storage()
    store.close()
    inline = open_store(f"sqlite://{work / 'inline.db'}")
    default, blobs.MIN_CHARS = blobs.MIN_CHARS, sys.maxsize
    try:
        with Timer() as timer:
            import_paths(inline, [data])
    finally:
        blobs.MIN_CHARS = default
    before = inline.storage()
    inline.close()
    for name, s, t in (("inline ", before, timer), ("chunked", after, chunked)):
        stored = s["event_bytes"] + s["chunk_bytes"]
        print(f"storage {name}: {stored / 1e6:8.1f} MB for {s['events']:,} events = {stored / s['events']:8,.0f} bytes/event"
              f"  ({s['chunks']:,} chunks, {s['chunk_bytes'] / 1e6:.1f} MB; import cpu {t.cpu:.2f} s, {mb / t.wall:.1f} MB/s)")
    ratio = (after["event_bytes"] + after["chunk_bytes"]) / (before["event_bytes"] + before["chunk_bytes"])
    print(f"ratio chunked / inline stored bytes: {ratio:.3f}")


if __name__ == "__main__":
    main()
