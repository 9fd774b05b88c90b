"""``kapacitor projections`` as a user runs it: a subprocess on a real store file."""

from __future__ import annotations

import json
import sqlite3

import pytest
from test_cli import kapacitor

from conftest import SAMPLE_DIRS


@pytest.fixture
def store_url(tmp_path):
    url = f"sqlite://{tmp_path / 'k.db'}"
    kapacitor("--store", url, "import", *map(str, SAMPLE_DIRS))
    return url


def status(store_url) -> dict[str, dict]:
    rows = json.loads(kapacitor("--store", store_url, "projections", "status", "--json").stdout)
    return {row["name"]: row for row in rows}


@pytest.mark.parametrize(
    "command", [["projections"], ["projections", "rebuild"], ["projections", "status"]]
)
def test_every_projections_command_has_help(command):
    out = kapacitor(*command, "--help").stdout
    assert "Usage: kapacitor projections" in out and len(out.splitlines()) > 5


def test_projections_help_names_every_read_model_of_the_registry():
    from kapacitor.projections.catalog import PROJECTIONS

    out = " ".join(kapacitor("projections", "--help").stdout.split())
    names = ", ".join(p.name for p in PROJECTIONS)
    assert f"The {len(PROJECTIONS)} read models, in the order they run: {names}." in out


def test_status_before_and_after_rebuild(store_url):
    before = status(store_url)
    assert list(before) == [
        "ownership",
        "sessions",
        "tool_calls",
        "token_usage",
        "files_changed",
        "evals",
        "repositories",
        "live_status",
        "facts",
        "search_index",
        "comments",
        "marks",
    ]
    head = before["sessions"]["head"]
    assert head > 0 and all(r["checkpoint"] == 0 and r["lag"] == head for r in before.values())
    out = kapacitor("--store", store_url, "projections", "rebuild")
    assert f"up to position {head}" in out.stdout and "Traceback" not in out.stderr
    assert all(r["checkpoint"] == head and r["lag"] == 0 for r in status(store_url).values())
    table = kapacitor("--store", store_url, "projections", "status").stdout
    assert "token_usage" in table and "lag" in table


def test_rebuild_one_projection_leaves_the_others(store_url):
    kapacitor("--store", store_url, "projections", "rebuild", "tool_calls")
    lags = {name: row["lag"] for name, row in status(store_url).items()}
    assert lags["tool_calls"] == 0
    assert (
        lags["sessions"] == lags["token_usage"] == lags["files_changed"] == lags["repositories"] > 0
    )
    conn = sqlite3.connect(store_url.removeprefix("sqlite://"))
    try:
        assert conn.execute("SELECT sum(count) FROM tool_calls").fetchone()[0] > 0
    finally:
        conn.close()


def test_rebuild_is_repeatable(store_url):
    path = store_url.removeprefix("sqlite://")
    tables = []
    for _ in range(2):
        kapacitor("--store", store_url, "projections", "rebuild")
        conn = sqlite3.connect(path)
        try:
            tables.append(sorted(conn.execute("SELECT * FROM token_usage")))
        finally:
            conn.close()
    assert tables[0] == tables[1] and tables[0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["projections", "rebuild", "nope"], "'nope' is not one of"),
        (["--store", "mysql://nope", "projections", "status"], "unsupported store URL"),
        (["--store", "sqlite:///proc/nope/x.db", "projections", "rebuild"], "no store at /proc/nope/x.db"),
        (["--store", "sqlite:///proc/nope/x.db", "import", "/etc/hostname"], "cannot open store"),
    ],
)
def test_bad_input_is_a_one_line_error_not_a_traceback(args, message):
    result = kapacitor(*args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_rebuild_that_skips_an_event_names_it_in_one_line_and_status_lists_it(tmp_path):
    from kapacitor.events import NewEvent
    from kapacitor.store import open_store

    url = f"sqlite://{tmp_path / 'k.db'}"
    store = open_store(url)
    bad = NewEvent(
        id="00000000-0000-0000-0000-0000000000bd",
        type="AssistantToolCallsGenerated",
        data={"timestamp": "2026-01-01T00:00:00Z", "tool_calls": "not a list"},
    )
    store.append("AgentSession-x", [bad])
    store.close()
    result = kapacitor("--store", url, "projections", "rebuild", "tool_calls", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "1 event(s) skipped" in line and "read model 'tool_calls' skipped the event at position 1" in line
    assert bad.id in line and "AssistantToolCallsGenerated" in line
    tool_calls = status(url)["tool_calls"]
    assert tool_calls["checkpoint"] == 1 and tool_calls["lag"] == 0  # it went on past the event
    [row] = tool_calls["skipped"]
    assert (row["position"], row["event_id"], row["event_type"]) == (1, bad.id, "AssistantToolCallsGenerated")
    assert row["error"].startswith("AttributeError")
    table = kapacitor("--store", url, "projections", "status").stdout
    assert f"read model 'tool_calls' skipped the event at position 1 (id {bad.id}" in table


def test_every_read_model_table_and_command_is_documented():
    from conftest import ROOT
    from kapacitor.projections.catalog import PROJECTIONS

    doc = (ROOT / "docs" / "projections.md").read_text()
    names = [p.name for p in PROJECTIONS] + [t for p in PROJECTIONS for t in p.tables]
    assert [n for n in names if f"`{n}`" not in doc] == []
    assert "kapacitor projections status" in doc and "kapacitor projections rebuild" in doc
