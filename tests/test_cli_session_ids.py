"""Every command that takes a session id takes what ``kapacitor sessions`` prints
(a prefix only one session has) and says "give more of it" when several share
it: the real CLI in a subprocess over a real store of recorded sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import SAMPLE_DIRS
from fake_judge import FakeJudge
from kapacitor.capture.importer import import_paths
from kapacitor.eval.record import evals_of

NOTES = "97617f62-6fd5-442d-bb39-3ca75bd8c3e3"
WIDGETS = "922a15d3-3e4d-471a-9a7e-754f15615295"  # shares the "9" with NOTES

COMMANDS = [["eval"], ["recap"], ["errors"], ["validate-plan"], ["mcp", "judge", "--session"]]


@pytest.fixture
def filled(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    return f"sqlite://{store_path}"


def kapacitor(store_url: str, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kapacitor", "--store", store_url, *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, **kwargs)


def test_the_short_id_sessions_prints_is_the_one_given_to_the_others(filled):
    listed = kapacitor(filled, "sessions").stdout
    assert NOTES[:8] in listed and NOTES not in listed


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_an_ambiguous_prefix_asks_for_more_of_it(filled, command):
    done = kapacitor(filled, *command, "9")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr == f"Error: session id '9' is ambiguous ({WIDGETS}, {NOTES}): give more of it\n"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_prefix_no_session_has_is_one_line(filled, command):
    done = kapacitor(filled, *command, "0000")
    assert done.returncode == 1
    assert done.stderr == "Error: no session '0000' in the store (`kapacitor sessions` lists them)\n"


@pytest.mark.parametrize("command", [["recap", "--json"], ["errors", "--json"], ["validate-plan", "--json"]])
def test_read_commands_resolve_a_short_id(filled, command):
    whole, short = kapacitor(filled, *command, NOTES), kapacitor(filled, *command, NOTES[:8])
    assert short.returncode == whole.returncode and short.stdout == whole.stdout and NOTES in short.stdout


def test_mcp_judge_resolves_a_short_id(filled):
    done = kapacitor(filled, "mcp", "judge", "--session", NOTES[:8])  # stdin closed: serves, then ends
    assert done.returncode == 0, done.stderr


def test_eval_of_a_short_id_stores_the_eval_under_the_whole_id(filled, store):
    judge = FakeJudge()
    try:
        env = {**os.environ, "ANTHROPIC_BASE_URL": judge.url, "ANTHROPIC_API_KEY": "sk-ant-fake"}
        done = kapacitor(filled, "eval", NOTES[:8], "--questions", "sensitive_files", "--json", env=env)
    finally:
        judge.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["session_id"] == NOTES
    assert [e["eval_id"] for e in evals_of(store, NOTES)] == [json.loads(done.stdout)["eval_id"]]
