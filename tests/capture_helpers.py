"""Helpers for the live-capture tests: a session's transcripts replayed line by line
into a fresh ``projects`` dir (as a running client writes them), and the real
``kapacitor hook`` command run on a payload."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import RECORDED

KAPACITOR = str(Path(sys.executable).parent / "kapacitor")
WIDGETS = "708f24f2-dc3e-4588-a43d-59d69a508ed0"  # tool calls, a subagent, /compact
WIDGETS_DIR = RECORDED / "projects" / "-home-dev-src-widgets"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveSession:
    """A recorded session written out gradually under ``root``, like a live client."""

    def __init__(self, root: Path, session_id: str = WIDGETS, source_dir: Path = WIDGETS_DIR):
        self.session_id = session_id
        self.dir = root / source_dir.name
        self.main = self.dir / f"{session_id}.jsonl"
        self.source_main = (source_dir / f"{session_id}.jsonl").read_bytes().splitlines(keepends=True)
        self.source_subs = {
            p.name: p.read_bytes().splitlines(keepends=True) for p in sorted((source_dir / session_id / "subagents").glob("*.jsonl"))
        }
        self.source_metas = {p.name: p.read_bytes() for p in (source_dir / session_id / "subagents").glob("*.meta.json")}
        self.dir.mkdir(parents=True, exist_ok=True)
        self.main.touch()

    def write_main(self, start: int, stop: int | None = None) -> None:
        with self.main.open("ab") as handle:
            handle.writelines(self.source_main[start:stop])

    def write_subagents(self) -> None:
        folder = self.main.with_suffix("") / "subagents"
        folder.mkdir(parents=True, exist_ok=True)
        for name, meta in self.source_metas.items():
            (folder / name).write_bytes(meta)
        for name, lines in self.source_subs.items():
            (folder / name).write_bytes(b"".join(lines))

    def write_all(self) -> None:
        self.write_main(0)
        self.write_subagents()

    def payload(self, event: str, **extra: object) -> dict[str, object]:
        return {"session_id": self.session_id, "transcript_path": str(self.main), "cwd": "/home/dev/src/widgets",
                "hook_event_name": event, **extra}


def run_hook(event: str, payload: object, **env: str) -> subprocess.CompletedProcess[bytes]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return subprocess.run([KAPACITOR, "hook", event], input=data, capture_output=True, timeout=30,
                          env={**os.environ, "KAPACITOR_FOLLOW": "0", **env})


def state_dir() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "kapacitor"


def spooled(session_id: str) -> list[dict]:
    path = state_dir() / "sessions" / f"{session_id}.spool"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def capture_log() -> list[str]:
    path = state_dir() / "capture.log"
    return path.read_text().splitlines() if path.exists() else []


START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
"""Seconds a test server gets to answer, or to exit on a signal: guards against a
hang, not timings (a loaded CI machine takes tens of seconds to start one)."""


class Server:
    """The real ``kapacitor serve`` on a 127.0.0.1 port, as a subprocess that can be
    stopped (even with kill -9) and started again on the same store and port."""

    def __init__(self, store_path: Path, port: int | None = None, *args: str, **env: str):
        self.store_path, self.port, self.env, self.args = store_path, port or free_port(), env, args
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        url = str(self.store_path) if "://" in str(self.store_path) else f"sqlite://{self.store_path}"
        cmd = [KAPACITOR, "--store", url, "serve", "--port", str(self.port), *self.args]
        self.stderr = tempfile.TemporaryFile("a+b")  # noqa: SIM115 — closed by stop; appended to, whatever is read meanwhile
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr, env={**os.environ, **self.env})
        try:
            wait_for(self._answers, timeout=START_TIMEOUT)
        except BaseException:  # no server is left running behind a failed start
            self.stop(signal.SIGKILL)
            raise
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5):
                return True
        except OSError:
            assert self.proc is not None and self.proc.poll() is None, "kapacitor serve exited"
            return False

    def caught_up(self, timeout: float = START_TIMEOUT, token: str = "") -> Server:
        """Wait until every read model has read the whole log (``/healthz`` lag 0):
        a server answers before it has caught up with a store imported beforehand.
        ``token``: a user's, for a server with ``--auth`` (it tells an anonymous
        caller only whether it is ok)."""
        wait_for(lambda: self.get("/healthz", token)["lag"] == 0, timeout=timeout)  # type: ignore[index]
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server with ``sig``. AssertionError when it has not exited within
        ``STOP_TIMEOUT`` (it is killed: nothing is left running), or when it printed
        a traceback while stopping (Ctrl-C or a SIGTERM must end it quietly). What it
        printed while stopping is kept in ``stopping``."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        said = self.stderr.seek(0, os.SEEK_END)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"kapacitor serve did not stop within {STOP_TIMEOUT}s of signal {sig}") from None
        self.stderr.seek(said)
        self.stopping = stopping = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        assert "Traceback" not in stopping, f"kapacitor serve printed a traceback as it stopped:\n{stopping[-4000:]}"

    def get(self, path: str, token: str = "") -> object:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers), timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def interruptible() -> None:
    """``preexec_fn`` for a command a test stops with Ctrl-C (SIGINT): a test run
    started in the background (``cmd &``) inherits SIGINT ignored, and so would
    the command (POSIX keeps ignored signals across exec); from a terminal it
    has the default action, which is what the test is about."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(condition, timeout: float = 60.0, interval: float = 0.05):  # noqa: ANN001
    """Poll ``condition`` until it returns something truthy; that value, or an
    AssertionError after ``timeout`` seconds: a guard against a hang, not a timing
    (a loaded CI machine takes seconds for what takes milliseconds here)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {condition.__name__}")
        time.sleep(interval)


LIVE_ONLY = frozenset({"HookReceived", "SessionEnded"})
"""Events only live capture makes: the rest must equal an import of the transcripts."""


def events_by_id(store, *, skip=frozenset()) -> dict:  # noqa: ANN001
    return {e.id: (e.stream, e.type, e.data, e.metadata) for e in store.read_all() if e.type not in skip}


def imported_events(paths: list[Path], db: Path) -> dict:
    """The events ``kapacitor import`` makes of ``paths``, in a store of their own."""
    from kapacitor.capture.importer import import_paths
    from kapacitor.store import open_store

    store = open_store(f"sqlite://{db}")
    try:
        import_paths(store, paths)
        return events_by_id(store)
    finally:
        store.close()


def live_events(db: Path) -> dict:
    """The transcript-derived events of a store written by live capture."""
    from kapacitor.store import open_store

    store = open_store(f"sqlite://{db}")
    try:
        return events_by_id(store, skip=LIVE_ONLY)
    finally:
        store.close()


def line_positions(path: Path) -> list[tuple[int, int]]:
    """(byte offset, line number) of every non-blank line of a file, as the client reads them."""
    out, offset = [], 0
    for number, line in enumerate(path.read_bytes().splitlines(keepends=True)):
        if line.strip():
            out.append((offset, number))
        offset += len(line)
    return out
