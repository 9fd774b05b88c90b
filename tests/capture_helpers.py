"""Helpers for the live-capture tests: a session's transcripts replayed line by line
into a fresh ``projects`` dir (as a running client writes them), and the real
``kapacitor hook`` command run on a payload."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
