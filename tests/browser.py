"""The real server and real headless Chromium, for the browser tests.

``start_server`` runs ``python -m kapacitor --store URL serve --port P`` as a
subprocess on 127.0.0.1 and waits until its read models have caught up with the
log; ``launch`` starts Debian's Chromium through Playwright with a fresh profile.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import expect

EXPECT_TIMEOUT = 30_000
"""Milliseconds an ``expect`` waits for its condition (Playwright's default is 5 s):
a guard against a hang, not a timing; a loaded CI machine needs more than 5 s."""
expect.set_options(timeout=EXPECT_TIMEOUT)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@dataclass
class Server:
    url: str
    store_url: str
    process: subprocess.Popen[bytes]

    def get_json(self, path: str):  # type: ignore[no-untyped-def]
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def wait_caught_up(self, timeout: float = 120) -> None:
        """Until ``/healthz`` says every read model has read the whole log (a guard
        against a hang, not a timing: a loaded machine takes tens of seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                health = self.get_json("/healthz")
                if health["lag"] == 0 and health["head"] > 0:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.process.stdout.read().decode()}")  # type: ignore[union-attr]
            time.sleep(0.1)
        raise TimeoutError("server did not catch up")

    def stop(self) -> str:
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        return out.decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(store_url: str | None, home: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """The server on a free port, HOME and the data dir under ``home``; no
    ``--store`` when ``store_url`` is None (the default store)."""
    port = free_port()
    full_env = os.environ | {"HOME": str(home), "XDG_DATA_HOME": str(home / "share")} | (env or {})
    full_env.pop("KAPACITOR_STORE", None)
    store = ["--store", store_url] if store_url else []
    process = subprocess.Popen(
        [sys.executable, "-m", "kapacitor", *store, "serve", "--port", str(port), *extra],
        env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", store_url or "", process)
    try:
        server.wait_caught_up()
    except BaseException:  # no server is left running behind a failed start
        server.stop()
        raise
    return server


def serve_imported(sources: list[Path], root: Path) -> Server:
    """``sources`` (transcript folders) imported into a new SQLite store under
    ``root``, served as ``start_server`` serves it (HOME ``root/home``)."""
    from kapacitor.capture.importer import import_paths
    from kapacitor.store import open_store

    url = f"sqlite://{root / 'store.db'}"
    store = open_store(url)
    try:
        import_paths(store, sources)
    finally:
        store.close()
    return start_server(url, root / "home")


def launch(playwright, profile: Path, **options):  # type: ignore[no-untyped-def]
    """A browser context on a fresh profile dir (``options``: Playwright's, e.g. ``timezone_id``)."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 900}, **options,
    )
