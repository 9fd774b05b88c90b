"""Two ``kapacitor serve`` processes on one PostgreSQL store: a hook sent to one
appears on a page open on the other (real Chromium), live. The latency itself is
measured by ``bench/live.py --postgres`` (docs/benchmarks.md), not timed here."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from browser import start_server
from capture_helpers import WIDGETS, LiveSession, run_hook
from conftest import RECORDED
from kapacitor.capture.importer import import_paths
from kapacitor.store import open_store
from test_store_postgres import admin_url, pg_url  # noqa: F401  (fixtures)


def test_a_hook_sent_to_one_server_shows_live_on_the_other(tmp_path, pg_url, page):  # noqa: F811
    store = open_store(pg_url)
    import_paths(store, [RECORDED / "projects" / "-home-dev-notes"])  # something to serve
    store.close()
    first, second = start_server(pg_url, tmp_path / "a"), start_server(pg_url, tmp_path / "b")
    try:
        page.goto(second.url + "/")
        expect(page.locator("#live-indicator.connected")).to_be_visible()
        live = LiveSession(tmp_path / "projects")
        live.write_main(0, 12)
        started = time.monotonic()
        assert run_hook("UserPromptSubmit", live.payload("UserPromptSubmit"), KAPACITOR_SERVER=first.url).returncode == 0
        delivered = time.monotonic()
        expect(page.locator(f'tr[data-session="{WIDGETS}"]')).to_be_visible()
        shown = time.monotonic()
        print(f"\ntwo servers on PostgreSQL: hook delivered to A in {delivered - started:.2f} s,"
              f" on B's page {shown - delivered:.2f} s later")
    finally:
        for server in (first, second):
            assert "Traceback" not in server.stop()
