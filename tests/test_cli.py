"""The CLI as a user runs it: a real subprocess, the real store file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import RECORDED, SAMPLE_DIRS

ALL_COMMANDS = [[], ["import"], ["sessions"]]


def kapacitor(*args, env=None, check=True):
    return subprocess.run(
        [sys.executable, "-m", "kapacitor", *args],
        capture_output=True,
        text=True,
        check=check,
        env=env,
    )


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_every_command_has_help(command):
    out = kapacitor(*command, "--help").stdout
    assert "Usage: kapacitor" in out and len(out.splitlines()) > 5


def test_import_then_sessions_json(tmp_path):
    store = f"sqlite://{tmp_path / 'k.db'}"
    first = json.loads(
        kapacitor("--store", store, "import", *map(str, SAMPLE_DIRS), "--json").stdout
    )
    assert {"files", "events_added", "events_skipped", "errors"} <= set(first)
    assert first["files"] == 7 and first["events_added"] > 0 and first["errors"] == 0
    second = json.loads(
        kapacitor("--store", store, "import", *map(str, SAMPLE_DIRS), "--json").stdout
    )
    assert second["events_added"] == 0
    rows = json.loads(kapacitor("--store", store, "sessions", "--json").stdout)
    assert len(rows) == 5
    assert [r["started"] for r in rows] == sorted((r["started"] for r in rows), reverse=True)
    row = next(r for r in rows if r["session_id"].startswith("e3ace814"))
    assert row["tool_calls_by_tool"] == {"Bash": 2, "Edit": 2, "Read": 1}
    assert row["files_changed"] == ["/home/dev/src/api-server/app.py"]
    assert row["tokens"]["claude-sonnet-4-5"]["output_tokens"] == 372
    assert row["cost_usd"] > 0 and row["price_source"].startswith("genai-prices")


def test_sessions_table_and_limit(tmp_path):
    store = f"sqlite://{tmp_path / 'k.db'}"
    kapacitor("--store", store, "import", str(SAMPLE_DIRS[0]))
    table = kapacitor("--store", store, "sessions", "--limit", "2", env=None).stdout
    assert "genai-prices" in table
    assert (
        len(json.loads(kapacitor("--store", store, "sessions", "--json", "--limit", "2").stdout))
        == 2
    )


def test_default_source_is_claude_config_dir(tmp_path, monkeypatch):
    config = tmp_path / "claude-a"
    shutil.copytree(RECORDED / "projects", config / "projects")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{tmp_path / 'missing'},{config}")
    out = json.loads(kapacitor("import", "--json").stdout)
    assert out["files"] == 6 and out["events_added"] > 0


def test_default_store_lives_in_the_user_data_dir(isolated_home):
    kapacitor("import", str(SAMPLE_DIRS[1]))
    assert (isolated_home / ".local" / "share" / "kapacitor" / "kapacitor.db").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--store", "mysql://nope", "sessions"], "unsupported store URL"),
        (["--store", "sqlite:///proc/nope/x.db", "sessions"], "no store at /proc/nope/x.db"),
        (["import", "/does/not/exist"], "no such file or directory: /does/not/exist"),
    ],
)
def test_bad_input_is_a_one_line_error_not_a_traceback(args, message):
    result = kapacitor(*args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
