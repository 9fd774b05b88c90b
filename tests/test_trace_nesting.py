"""The trace's bars nest: every node's span lies within its parent's, for every
session of every recording (../shared/claude-code/recorded and recorded-2.1.332:
synchronous and background subagents), imported into a real store and served by
the real server, in ``trace.json`` and in the page's waterfall bars.

A subagent's node spans its own records (``SessionSummary.subagent_figures``),
which may run past its last chat item and past its Agent call's result (client
bookkeeping written after the answer); the call's bar then runs to the
subagent's last record, and so does every bar above it
(``TraceModel.time_subagents``).
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import datetime

import pytest

from browser import serve_imported
from test_subagent_figures import HELLO_TODO, SOURCES, TRUTH, walk, with_a_late_record


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def outside(node: dict, parent: dict | None = None) -> list[str]:
    """Every node (as ``kind id``) whose span is not within its parent's."""
    bad = []
    if parent is not None and node["started"]:
        if not (parent["started"] and when(parent["started"]) <= when(node["started"])
                and when(node["ended"]) <= when(parent["ended"])):
            bad.append(f"{node['kind']} {node['id']}: {node['started']}..{node['ended']} in {parent['kind']} "
                       f"{parent['id']}: {parent['started']}..{parent['ended']}")
    for child in node["children"]:
        bad += outside(child, node)
    return bad


def bars(page: str) -> dict[str, tuple[float, float]]:
    """Each node's bar on the page, by node id: (offset, width) in per cent."""
    found = re.findall(r'data-id="([^"]*)">(?:(?!</summary>|</div>).)*?<span class="tbar"[^>]*><span style="left: ([\d.-]+)%; width: ([\d.]+)%"',
                       page, re.S)
    return {node: (float(left), float(width)) for node, left, width in found}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    server = serve_imported(SOURCES, tmp_path_factory.mktemp("recorded"))
    yield server
    server.stop()


def sessions_of(server) -> list[str]:  # noqa: ANN001
    ids = {json.loads(line)["sessionId"] for source in SOURCES for path in source.rglob("*.jsonl")
           for line in path.read_text().splitlines()[:50] if '"sessionId"' in line}
    listed = [s for s in ids if server.get_json(f"/sessions/{s}.json").get("session_id") == s]
    assert len(listed) == len(ids) >= 8
    return sorted(listed)


def test_every_bar_of_every_recorded_session_lies_within_its_parents(recorded):
    subagents = set()
    for session in sessions_of(recorded):
        tree = recorded.get_json(f"/sessions/{session}/trace.json")
        assert outside(tree) == [], session
        subagents |= {(session, node["id"]) for node in walk(tree) if node["kind"] == "subagent"}
    assert subagents == set(TRUTH)  # every subagent of every recording: synchronous and background, both clients


def test_a_subagents_records_past_its_result_widen_its_calls_bar(tmp_path):
    """The hello-todo recording with one more subagent record, 2 s after the agent's
    answer and after its task notification: the subagent's bar ends there, and the
    Agent call's and every bar above it reach it too, on the JSON and on the page."""
    copy, late = with_a_late_record(tmp_path)
    server = serve_imported([copy], tmp_path)
    try:
        tree = server.get_json(f"/sessions/{HELLO_TODO}/trace.json")
        with urllib.request.urlopen(f"{server.url}/sessions/{HELLO_TODO}/trace", timeout=30) as response:
            page = response.read().decode()
    finally:
        server.stop()
    path_to = chain(tree, "subagent")
    subagent, call = path_to[-1], path_to[-2]
    assert when(subagent["ended"]) == when(late["timestamp"]) == when(call["ended"])
    assert call["kind"] == "tool" and call["detail"]["tool"] == "Agent"
    assert when(call["ended"]) > when(call["detail"]["background"]["finished"])  # past the notification: its records' end
    assert outside(tree) == []
    drawn = bars(page)
    for parent, child in zip(path_to[1:], path_to[2:], strict=False):
        (p_left, p_width), (c_left, c_width) = drawn[parent["id"]], drawn[child["id"]]
        assert p_left <= c_left + 0.006 and c_left + c_width <= p_left + p_width + 0.011, (parent["kind"], child["kind"])  # 2 places


def chain(node: dict, kind: str) -> list[dict]:
    """The nodes from ``node`` down to the first of ``kind``."""
    if node["kind"] == kind:
        return [node]
    for child in node["children"]:
        found = chain(child, kind)
        if found:
            return [node, *found]
    return []
