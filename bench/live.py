"""Live update latency: from an event appended to the store to the open page
showing it, in headless Chromium against the real server (the sample sessions).

For --trials rounds: append a prompt to a session whose chat page is open, and
time until the page shows it, with the stages on the way: every read model has
applied it (the checkpoints, polled from here every 10 ms), the page has the
SSE `change` message (a second EventSource in the page, on the browser's clock),
the text is on the page (a MutationObserver's time, on the browser's clock;
also as Playwright sees it, which adds its own polling under load).
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
from kapacitor.projections.runner import checkpoints
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser import launch, start_server  # noqa: E402
from conftest import SAMPLE_DIRS  # noqa: E402

SESSION = "708f24f2-dc3e-4588-a43d-59d69a508ed0"
WATCH = """() => {
  window.changes = [];
  new EventSource('/events').addEventListener('change', () => window.changes.push(performance.now()));
  window.watchFor = t => {
    const shows = () => document.querySelector('.chat').textContent.includes(t);
    const observer = new MutationObserver(() => {
      if (shows()) { observer.disconnect(); window.shown = performance.now(); }
    });
    observer.observe(document.body, {childList: true, subtree: true, characterData: true});
  };
}"""


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
        db = open_read_db(store)
        times, seen, applied, announced = [], [], [], []
        try:
            with sync_playwright() as playwright:
                context = launch(playwright, Path(tmp) / "profile")
                page = context.new_page()
                page.goto(f"{viewed.url}/sessions/{SESSION}")
                page.wait_for_selector("#live-indicator.connected")
                page.evaluate(WATCH)
                time.sleep(1)
                for n in range(args.trials):
                    text = f"live prompt number {n}"
                    page_started = page.evaluate("t => { window.shown = null; watchFor(t); return performance.now(); }", text)
                    started = time.perf_counter()
                    position = store.append(f"AgentSession-{SESSION}", [NewEvent(f"bench-live-{n}", "UserMessageReceived", {
                        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "content": text,
                        "extensions": {"claude_code": {"kind": "prompt"}}})]).position
                    while min(c.position for c in checkpoints(db).values()) < position:
                        time.sleep(0.01)
                    applied.append((time.perf_counter() - started) * 1000)
                    page.wait_for_function("t => document.querySelector('.chat').textContent.includes(t)", arg=text, polling=10)
                    seen.append((time.perf_counter() - started) * 1000)
                    page.wait_for_function("() => window.shown !== null")
                    times.append(page.evaluate("window.shown") - page_started)
                    announced.append(page.evaluate("window.changes.pop()") - page_started)
                    time.sleep(0.2)
                context.close()
        finally:
            server.stop()
            if viewed is not server:
                viewed.stop()
            db.close()
            store.close()
    ordered = sorted(times)
    where = "on the other server's page (PostgreSQL)" if args.postgres else "in the open chat"
    print(f"append -> visible {where}, {len(times)} trials: p50 {statistics.median(ordered):.0f} ms,"
          f" p95 {ordered[int(len(ordered) * 0.95) - 1]:.0f} ms, max {ordered[-1]:.0f} ms")
    print(f"  medians: read models applied {statistics.median(applied):.0f} ms, SSE change on the page"
          f" {statistics.median(announced):.0f} ms, text on the page {statistics.median(times):.0f} ms;"
          f" trials over 1 s: {sum(t >= 1000 for t in times)}")
    print(f"  as Playwright sees it (its polling included): p50 {statistics.median(seen):.0f} ms, max {max(seen):.0f} ms")


if __name__ == "__main__":
    main()
