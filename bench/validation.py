"""What the validation boundary (``normalize/validate.py``) costs: the
normalizer over the same replicated recordings (``bench/import.py``'s data),
alternately with the boundary and with it switched off (the envelope, the
per-line facts and the per-event check replaced by no-ops), in one run. CPU
seconds (steadier than wall-clock on a shared machine), median of ``--repeat``;
the ratio is the boundary's cost on top of normalizing.

    python bench/validation.py [--mb 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
bench_import = importlib.import_module("import")

from kapacitor.normalize import validate  # noqa: E402

CHECKS = ("envelope", "line_facts", "checked")
OFF = {
    "envelope": lambda record: (record, {}),
    "line_facts": lambda *args: validate.LineFacts({}, False, False),
    "checked": lambda event, facts=None: event,
}


def cpu_seconds(target: Path) -> float:
    started = time.process_time()
    bench_import.normalize_only(target)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=20, help="megabytes of transcripts")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (median)")
    args = parser.parse_args()
    on = {name: getattr(validate, name) for name in CHECKS}
    with tempfile.TemporaryDirectory() as tmp:
        files, size = bench_import.make_data(Path(tmp), args.mb)
        runs: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(args.repeat):
            for label, functions in (("without", OFF), ("with", on)):
                for name, function in functions.items():
                    setattr(validate, name, function)
                runs[label].append(cpu_seconds(Path(tmp)))
    without, with_ = statistics.median(runs["without"]), statistics.median(runs["with"])
    print(f"{files} files, {size / 1e6:.1f} MB; normalize CPU s (median of {args.repeat})")
    print(f"without the boundary {without:.3f}   with {with_:.3f}   ratio {with_ / without:.2f}")
    print("runs without", [round(t, 2) for t in runs["without"]], "with", [round(t, 2) for t in runs["with"]])


if __name__ == "__main__":
    main()
