"""What each read model holds for the real samples, checked against the API's
ground truth and against ``session_summary``'s fold of the same log."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest

from conftest import RECORDED, SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.json_times import time_places
from kapacitor.pricing import price_source
from kapacitor.projections import sessions
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.files_changed import changed_lines
from kapacitor.projections.runner import ProjectionRunner
from kapacitor.projections.session_summary import TOKEN_FIELDS, SessionSummaries


@pytest.fixture
def built(store, store_path):
    import_paths(store, SAMPLE_DIRS)
    runner = ProjectionRunner(store, store_path, PROJECTIONS, batch_size=16)
    runner.catch_up()
    assert not runner.failures
    yield runner.conn
    runner.close()


@pytest.fixture
def folded(store):
    summaries = SessionSummaries()
    for event in store.read_all():
        summaries.apply(event)
    return summaries.sessions


@pytest.mark.parametrize(
    "truth_file", [RECORDED / "truth.json", RECORDED / "interactive" / "truth.json"]
)
def test_token_usage_equals_what_the_api_reported(built, truth_file):
    columns = ", ".join(f"sum({name})" for name in TOKEN_FIELDS)
    rows = built.execute(
        f"SELECT session_id, model, {columns}, sum(requests) FROM token_usage GROUP BY session_id, model"
    )
    tokens: dict[str, dict] = defaultdict(dict)
    for sid, model, *numbers in rows:
        tokens[sid][model] = dict(zip((*TOKEN_FIELDS, "requests"), numbers, strict=True))
    truth = json.loads(truth_file.read_text())
    assert {sid: tokens[sid] for sid in truth} == truth


def test_token_usage_keeps_subagents_apart(built, folded):
    rows = built.execute("SELECT session_id, subagent, model, requests FROM token_usage")
    for sid, subagent, model, requests in rows:
        assert folded[sid].tokens(subagent or None)[model]["requests"] == requests
    assert {
        r[0] for r in built.execute("SELECT subagent FROM token_usage WHERE subagent != ''")
    } == {agent for s in folded.values() for agent in s.subagents}


def test_sessions_rows_are_the_fold_of_the_whole_log(built, folded):
    rows = {
        sid: (started, repo, user, cwd, json.loads(row))
        for sid, started, repo, user, cwd, row in built.execute(
            'SELECT session_id, started, repository, "user", cwd, row FROM sessions'
        )
    }
    assert set(rows) == set(folded)
    for sid, summary in folded.items():
        assert rows[sid] == (
            summary.started,
            summary.repository,
            summary.user,
            summary.cwd,
            summary.as_json(),
        )


def test_sessions_rows_keep_their_time_places_and_a_row_priced_by_another_database_is_priced_again(built, folded):
    """Beside each row: where its times lie (what ``sessions --json`` rewrites) and
    the price database that priced it. A row priced by another (an upgrade of
    ``genai-prices``) is read priced again from its state, its places found anew."""
    stored = {sid: (places, row, source) for sid, places, row, source in built.execute(
        "SELECT session_id, times, row, price_source FROM sessions")}
    for places, row, source in stored.values():
        assert places and places == time_places(row) and source == json.loads(row)["price_source"] == price_source()
    sid = next(s for s in stored if folded[s].as_json()["cost_usd"])
    old = json.loads(stored[sid][1]) | {"title": "ünïcode before the times", "cost_usd": 0.0, "price_source": "genai-prices 0.0.1"}
    built.execute("UPDATE sessions SET row = ?, price_source = ? WHERE session_id = ?",
                  (json.dumps(old, ensure_ascii=False, separators=(",", ":")), old["price_source"], sid))
    read = {json.loads(row)["session_id"]: (places, row) for places, row in sessions.newest_json(built)}
    assert set(read) == set(stored) and json.loads(read[sid][1]) == folded[sid].as_json()
    assert read[sid][0] == time_places(read[sid][1]) and all(read[s][1] == stored[s][1] for s in stored if s != sid)


def test_tool_calls_count_calls_and_errors_per_tool(built, folded):
    counts: dict[str, Counter] = defaultdict(Counter)
    errors: Counter = Counter()
    for sid, tool, count, failed in built.execute(
        "SELECT session_id, tool_name, count, errors FROM tool_calls"
    ):
        counts[sid][tool] += count
        errors[sid] += failed
    assert counts == {sid: s.tool_calls for sid, s in folded.items() if s.tool_calls}
    assert errors == Counter({sid: s.tool_errors for sid, s in folded.items() if s.tool_errors})
    denied = built.execute(
        "SELECT tool_name, count, errors FROM tool_calls WHERE session_id = '97617f62-6fd5-442d-bb39-3ca75bd8c3e3' ORDER BY tool_name"
    ).fetchall()
    assert denied == [("Bash", 1, 1), ("Write", 1, 1)]  # both calls were denied permission


def test_files_changed_from_the_structured_results(built, folded):
    rows = built.execute(
        "SELECT session_id, path, kind, tool_name, lines_added, lines_removed FROM files_changed ORDER BY timestamp"
    ).fetchall()
    assert rows == [
        (
            "708f24f2-dc3e-4588-a43d-59d69a508ed0",
            "/home/dev/src/widgets/hello.py",
            "create",
            "Write",
            1,
            0,
        ),
        (
            "e3ace814-42a0-4b79-a8f9-2db1e6c908e0",
            "/home/dev/src/api-server/app.py",
            "edit",
            "Edit",
            1,
            1,
        ),
        (
            "e3ace814-42a0-4b79-a8f9-2db1e6c908e0",
            "/home/dev/src/api-server/app.py",
            "edit",
            "Edit",
            1,
            0,
        ),
        (
            "56d0e3a4-49a6-4882-8732-25313eede8cc",
            "/home/sam/work/repo/app.py",
            "edit",
            "Edit",
            1,
            1,
        ),
    ]
    paths = defaultdict(set)
    for sid, path, *_ in rows:
        paths[sid].add(path)
    assert paths == {sid: s.files_changed for sid, s in folded.items() if s.files_changed}


@pytest.mark.parametrize(
    "structured,expected",
    [
        ({"type": "create", "content": "a\nb\nc\n", "structuredPatch": []}, (3, 0)),
        (
            {
                "type": "update",
                "structuredPatch": [{"lines": [" a", "-b", "+c", "+d"]}, {"lines": ["-e"]}],
            },
            (2, 2),
        ),
        (
            {"new_source": "x = 1", "cell_id": "c1", "edit_mode": "replace"},
            (None, None),
        ),  # NotebookEdit: unknown
        ({}, (None, None)),
    ],
)
def test_changed_lines(structured, expected):
    assert changed_lines(structured) == expected
