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
config file (``"redaction": {"enabled": false}``), alternated with the
redacted one ``--repeat`` times (ratio of the medians and of the fastest runs,
import / import without redaction; target <= 1.10).

``--history 2.1.332`` replicates the Claude Code 2.1.332 recordings instead
(../shared/claude-code/recorded-2.1.332: new record types, ~6.5x larger lines)
instead. Either way the bench also measures, in the same run, the stored bytes
per event with long strings kept inline (the store before content-addressed
chunks: a second import into another fresh store) and as chunks stored once per
store (``kapacitor.store.blobs``).

    python bench/import.py [--mb 200] [--history 2.1.197|2.1.332] [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

from kapacitor.capture.importer import import_paths
from kapacitor.capture.synthetic import replicate
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
    from kapacitor.capture.transcripts import find_transcripts
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
    redact.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="size of the replicated data set (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the data and store afterwards")
    parser.add_argument("--repeat", type=int, default=3, help="imports with and without redaction, alternated (default 3)")
    parser.add_argument("--history", choices=sorted(HISTORIES), default="2.1.197", help="which client's recordings to replicate")
    args = parser.parse_args()
    global SOURCES
    SOURCES = HISTORIES[args.history]
    work = Path(tempfile.mkdtemp(prefix="kapacitor-bench-"))
    try:
        data = work / "data"
        files, nbytes = make_data(data, args.mb)
        mb = nbytes / 1e6
        print(f"data: {files:,} files, {mb:,.1f} MB (replicated from {', '.join(str(s) for s in SOURCES)})")
        parse_only(data)  # warm the page cache so both runs read from memory
        with Timer() as parse:
            lines = parse_only(data)
        with Timer() as normalize:
            normalize_only(data)
        plains, redacted = [], []
        for attempt in range(args.repeat):  # alternated, either first in turn: machine noise hits both alike
            for p in work.glob("*.db*"):
                p.unlink()
            for enabled in (False, True) if attempt % 2 == 0 else (True, False):
                redaction(work, enabled=enabled)
                store = open_store(f"sqlite://{work / ('bench.db' if enabled else 'plain.db')}")
                with Timer() as timer:
                    result = import_paths(store, [data])
                (redacted if enabled else plains).append(timer)
                if enabled:
                    imported, summary, kept = timer, result, store
                else:
                    plain = timer
                    store.close()
            if attempt < args.repeat - 1:
                kept.close()
        store = kept
        redaction(work, enabled=True)
        with Timer() as again:
            rerun = import_paths(store, [data])
        db_mb = sum(p.stat().st_size for p in work.glob("bench.db*")) / 1e6
        store.close()
        assert summary.errors == 0 and rerun.events_added == 0
        print(f"parse only : {parse.wall:6.2f} s  cpu {parse.cpu:6.2f} s  {lines / parse.wall:10,.0f} lines/s  {mb / parse.wall:6.1f} MB/s")
        print(f"normalize  : {normalize.wall:6.2f} s  cpu {normalize.cpu:6.2f} s  (read + redact + parse + map to events, not stored)")
        print(
            f"import     : {imported.wall:6.2f} s  cpu {imported.cpu:6.2f} s  {summary.events_added / imported.wall:10,.0f} events/s"
            f"  {mb / imported.wall:6.1f} MB/s  ({summary.events_added:,} events, store {db_mb:,.0f} MB)"
        )
        print(f"rerun      : {again.wall:6.2f} s  cpu {again.cpu:6.2f} s  (adds {rerun.events_added} events)")
        print(f"unredacted : {plain.wall:6.2f} s  cpu {plain.cpu:6.2f} s  (the same import, redaction off in the config)")
        for label, pick in (("medians", statistics.median), ("fastest", min)):
            on, off = pick(t.cpu for t in redacted), pick(t.cpu for t in plains)
            on_wall, off_wall = pick(t.wall for t in redacted), pick(t.wall for t in plains)
            print(f"ratio import / import without redaction, {label} of {args.repeat}: {on_wall / off_wall:.3f}x wall-clock,"
                  f" {on / off:.3f}x CPU ({on:.2f} / {off:.2f} s)  (target <= 1.10x)")
        paired = statistics.median(r.cpu - p.cpu for p, r in zip(plains, redacted, strict=True))
        print("  CPU s, without / with, run by run: " + ", ".join(f"{p.cpu:.2f} / {r.cpu:.2f}" for p, r in zip(plains, redacted, strict=True))
              + f"; median of the paired differences {paired:+.2f} s = {1 + paired / statistics.median(p.cpu for p in plains):.3f}x")
        storage(work, data, imported, mb)
        print(
            f"ratio import / parse-only: {imported.wall / parse.wall:.2f}x wall-clock,"
            f" {imported.cpu / parse.cpu:.2f}x CPU  (target <= 3x)"
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
