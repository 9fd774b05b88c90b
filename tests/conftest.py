"""Shared fixtures: a private HOME and data dir per test, the real sample
transcripts from ../shared, and a real SQLite store file in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kapacitor.normalize import redact
from kapacitor.store import open_store

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KAPACITOR_SHARED", ROOT.parent / "shared"))
RECORDED = SHARED / "claude-code" / "recorded"
SAMPLE_DIRS = [RECORDED / "projects", RECORDED / "interactive" / "projects"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    for var in ("KAPACITOR_SERVER", "KAPACITOR_TOKEN", "KAPACITOR_FOLLOW"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("KAPACITOR_STORE", raising=False)
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    redact.reset()  # the rule set and its key come from this HOME's config
    yield home


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "events.db"


@pytest.fixture
def store(store_path):
    store = open_store(f"sqlite://{store_path}")
    yield store
    store.close()


def transcript_files() -> list[Path]:
    files = sorted(p for d in SAMPLE_DIRS for p in d.rglob("*.jsonl"))
    assert files, f"no sample transcripts under {SHARED}"
    return files


@pytest.fixture
def live_server(tmp_path, monkeypatch):
    """The real ``kapacitor serve`` on a free 127.0.0.1 port over ``tmp_path/live.db``,
    and the capture client pointed at it."""
    from capture_helpers import Server

    server = Server(tmp_path / "live.db").start()
    monkeypatch.setenv("KAPACITOR_SERVER", server.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """Headless Chromium (Playwright) on a fresh profile, for a module's browser tests."""
    from playwright.sync_api import sync_playwright

    from browser import launch

    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("profile"))
        yield context
        context.close()


@pytest.fixture
def page(context):
    """A fresh tab; ``page.dialogs`` collects every alert/confirm (dismissed), which must stay empty."""
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    yield page
    page.close()
