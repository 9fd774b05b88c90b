"""Live update latency: from an event appended to the store to the open page
showing it, in headless Chromium against the real server (the sample sessions).

For --trials rounds: append a prompt to a session whose chat page is open, and
time until the page shows it (the browser's own clock around the append).
With --postgres URL (an empty database): two servers on that PostgreSQL store,
the page open on the second while the first follows the log too, as a team's
two dashboard processes would.

    python bench/live.py [--trials 20] [--postgres postgresql://host/empty_db]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import sync_playwright

from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent
from kapacitor.store import open_store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser import launch, start_server  # noqa: E402
from conftest import SAMPLE_DIRS  # noqa: E402

SESSION = "708f24f2-dc3e-4588-a43d-59d69a508ed0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database: two servers on it, the page on the second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite://{Path(tmp) / 'events.db'}"
        store = open_store(url)
        import_paths(store, SAMPLE_DIRS)
        server = start_server(url, Path(tmp) / "a")
        viewed = start_server(url, Path(tmp) / "b") if args.postgres else server
        times = []
        try:
            with sync_playwright() as playwright:
                context = launch(playwright, Path(tmp) / "profile")
                page = context.new_page()
                page.goto(f"{viewed.url}/sessions/{SESSION}")
                page.wait_for_selector("#live-indicator.connected")
                for n in range(args.trials):
                    text = f"live prompt number {n}"
                    started = time.perf_counter()
                    store.append(f"AgentSession-{SESSION}", [NewEvent(f"bench-live-{n}", "UserMessageReceived", {
                        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "content": text,
                        "extensions": {"claude_code": {"kind": "prompt"}}})])
                    page.wait_for_function("t => document.querySelector('.chat').textContent.includes(t)", arg=text, polling=10)
                    times.append((time.perf_counter() - started) * 1000)
                context.close()
        finally:
            server.stop()
            if viewed is not server:
                viewed.stop()
            store.close()
    ordered = sorted(times)
    where = "on the other server's page (PostgreSQL)" if args.postgres else "in the open chat"
    print(f"append -> visible {where}, {len(times)} trials: p50 {statistics.median(ordered):.0f} ms,"
          f" p95 {ordered[int(len(ordered) * 0.95) - 1]:.0f} ms, max {ordered[-1]:.0f} ms")


if __name__ == "__main__":
    main()
