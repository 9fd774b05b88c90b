"""The bundled demo set (scripts/make-demo, docs/demo.md) looks like real work
and nothing in it gives away how it was made: no 'fake' string, no scratch or
harness path, and its sessions have what a team's real week has (tool calls,
a subagent, a compaction, errors and an interrupt, several people,
repositories, models and days)."""

from __future__ import annotations

import json
import tarfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kapacitor.capture.importer import import_paths
from kapacitor.demo import ARCHIVE, STAMP, extracted, session_of, stamp_time
from kapacitor.projections.session_summary import SessionSummaries
from kapacitor.store import open_store

GIVEAWAYS = [b"fake", b"/tmp/", b"tests/e2e", b"e2e_", b"kapacitor-make-demo", b"/work/", b".tooling", b".venv",
             b"127.0.0.1", b"sk-ant-", b"harness/", b"scenarios/"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    store = open_store(f"sqlite://{db}")
    with extracted(now=datetime(2026, 12, 1, 18, tzinfo=UTC)) as (projects, resolve):
        summary = import_paths(store, [projects], resolve_context=resolve)
    events = store.read_all()
    store.close()
    sessions = SessionSummaries()
    for event in events:
        sessions.apply(event)
    return summary, events, sessions.sessions


@pytest.fixture
def machine_zone(monkeypatch):
    """Set the process's local zone (``TZ``) for a test; the machine's is back after it."""
    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def spans(transcripts: dict[Path, bytes]) -> dict[str, tuple[datetime, datetime]]:
    """Each session's first and last timestamp (its subagents' included)."""
    stamps: dict[str, list[datetime]] = {}
    for path, data in transcripts.items():
        stamps.setdefault(session_of(path), []).extend(stamp_time(m.group(1)) for m in STAMP.finditer(data))
    return {sid: (min(s), max(s)) for sid, s in stamps.items()}


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Tokyo", "Pacific/Kiritimati"])
def test_the_demo_keeps_one_session_a_day_at_its_time_in_the_machines_zone(zone, machine_zone):
    """docs/demo.md's "fourteen sessions on fourteen days": whatever the hour the demo
    is dated at and the zone it is served in, each session starts on its own day
    (the days between them as recorded), at the clock time the script gave it, in
    that zone; the newest today (yesterday when it would not have ended yet) and
    none after the moment the demo is made."""
    machine_zone(zone)
    here = ZoneInfo(zone)
    with tarfile.open(ARCHIVE) as tar:  # as recorded, each at its day before the set's moment and its time (UTC)
        recorded = spans({Path(m.name): tar.extractfile(m).read() for m in tar.getmembers()  # type: ignore[union-attr]
                          if m.name.endswith(".jsonl")})
        made_for = datetime.fromisoformat(json.loads(tar.extractfile("demo.json").read())["now"]).date()  # type: ignore[union-attr]
    for hour in range(0, 24, 2):
        now = datetime(2026, 11, 30, hour, 43, tzinfo=here)
        with extracted(now=now) as (projects, _):
            dated = spans({path: path.read_bytes() for path in projects.rglob("*.jsonl")})
        starts = {sid: start.astimezone(here) for sid, (start, _) in dated.items()}
        assert len({start.date() for start in starts.values()}) == len(starts) == 14, (hour, sorted(starts.values()))
        newest = max(start.date() for start in starts.values())
        assert newest in (now.date(), now.date() - timedelta(days=1)) and max(end for _, end in dated.values()) <= now
        for sid in starts:
            first = recorded[sid][0]
            assert starts[sid].time() == first.time(), (sid, hour)  # the script's HH:MM, here
            assert (newest - starts[sid].date()).days == (made_for - first.date()).days, (sid, hour)


def test_the_archive_gives_nothing_away_and_is_small():
    assert ARCHIVE.stat().st_size < 2_000_000
    with tarfile.open(ARCHIVE) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        assert members
        for member in members:
            data = tar.extractfile(member).read().lower()  # type: ignore[union-attr]
            for word in GIVEAWAYS:
                assert word.lower() not in data and word.lower() not in member.name.encode().lower(), (member.name, word)


def test_every_record_imports_cleanly(imported):
    summary, events, _ = imported
    assert summary.warnings == [] and summary.files >= 14
    assert not [e for e in events if e.type == "UnknownRecordReceived"]


def test_the_sessions_look_like_a_teams_weeks(imported):
    _, events, sessions = imported
    mains = [s for s in sessions.values() if s.started]
    assert len(mains) >= 14
    assert len({s.user for s in mains}) >= 5
    github = {s.repository for s in mains if s.repository and "/" in s.repository and not s.repository.startswith("/")}
    assert len(github) >= 5
    assert any(not s.repository or s.repository.startswith("/") for s in mains)  # a plain directory too
    days = {s.started[:10] for s in mains}
    assert len(days) >= 12 and (max(days) > min(days))
    assert {m for s in mains for m in s.tokens()} >= {"claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5"}
    assert all(s.cost() for s in mains)  # every model is priced
    assert sum(sum(s.tool_calls.values()) for s in mains) >= 60
    assert {"Bash", "Read", "Edit", "Write", "Agent", "TaskCreate", "TaskUpdate"} <= {t for s in mains for t in s.tool_calls}
    assert any(s.subagents for s in mains)
    assert sum(s.tool_errors for s in mains) >= 5
    assert sum(1 for s in mains if s.prompts >= 2) >= 4  # multi-turn conversations
    durations = sorted(s.duration_seconds() or 0 for s in mains)  # at a person's pace
    assert durations[len(durations) // 2] > 30 and durations[-1] > 10 * 60
    types = Counter(e.type for e in events)
    assert types["ContextCompacted"] >= 1 and types["ApiErrorOccurred"] >= 1
    assert any(e.type == "InterruptIssued" and e.data.get("kind") == "user_interrupt" for e in events)


def test_token_usage_is_varied_and_cached(imported):
    _, _, sessions = imported
    usage = [call.usage for s in sessions.values() for call in s.calls.values()]
    assert len(usage) >= 80
    assert sum(u.get("cache_read_input_tokens", 0) for u in usage) > 10 * sum(u.get("input_tokens", 0) for u in usage)
    assert sum(1 for u in usage if u.get("cache_read_input_tokens")) > len(usage) // 2
    assert len({u.get("output_tokens") for u in usage}) > len(usage) // 3


def test_the_served_demo_has_facts_comments_and_marks_by_its_team(tmp_path):
    """``serve --demo`` adds the team's memory facts, comments (one on a chat item)
    and marks; the memory and marked pages and the session's comments show them,
    attributed to the demo's developers."""
    from browser import start_server

    bug_fix = "4785b5fc-e65a-539e-81f5-913d613cfc11"
    server = start_server(None, tmp_path, "--demo", env={"TZ": "Asia/Tokyo"})  # served far from UTC
    try:
        facts = server.get_json("/api/memory/facts")
        marked = server.get_json("/marked.json")
        comments = server.get_json(f"/api/sessions/{bug_fix}/comments")
        memory_page = _page(server.url + "/memory") + _page(server.url + "/memory/acme/payments")
        marked_page = _page(server.url + "/marked")
        evals = server.get_json("/evals.json")
        evals_page = _page(server.url + "/evals")
        listing = server.get_json("/sessions.json")
        evaluated = {s: server.get_json(f"/sessions/{s}/eval.json")[0] for s in EVALUATED}
        eval_tab = _page(f"{server.url}/sessions/{bug_fix}/eval")
    finally:
        server.stop()
    days = {datetime.fromisoformat(s["started"].replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Tokyo")).date()
            for s in listing["sessions"]}
    assert len(days) == len(listing["sessions"]) == 14  # one session a day in the server's zone (docs/demo.md)
    texts = " ".join(f["text"] for f in facts)
    assert len(facts) >= 5 and "ROUND_HALF_UP" in texts and {f["user"] for f in facts if f["by"] != "judge"} <= {f"{n}@acme.dev" for n in ("alice", "bilal", "chen", "dana", "emeka")}
    assert {f["session_id"] for f in facts} >= {bug_fix}
    marked_ids = [m["session_id"] for m in marked["sessions"]]
    assert bug_fix in marked_ids and len(marked_ids) >= 2
    comments = comments["comments"]
    assert {c["author"] for c in comments} == {"bilal@acme.dev", "dana@acme.dev"}
    assert any(c["target"]["kind"] == "chat" and c["target"]["anchor"] for c in comments)
    assert evals and "acme/payments" in json.dumps(evals) and "acme/infra" in json.dumps(evals)
    assert "acme/payments" in evals_page and "acme/api-server" in evals_page
    scored = {s["session_id"]: s for s in listing["sessions"] if s.get("eval_score") is not None}
    assert scored[bug_fix]["eval_score"] > scored["833ab0b6-48db-52db-a111-9a5dc3621b38"]["eval_score"]  # the fix beats goes-wrong
    for ev in evaluated.values():  # every scripted answer cites events the chat and trace show
        cited = [e for v in ev["scores"] for e in v["evidence"]]
        assert all(v["evidence"] for v in ev["scores"]) and len(cited) >= 4
        assert all(e["chat_index"] is not None and e["anchor"] and e["trace_node"] and e["note"] for e in cited)
    assert "4 passed in 8.68s" in eval_tab or "The whole suite passes after the fix" in eval_tab
    assert "Promote images" in memory_page and "Decimal" in memory_page and "clean bug fix" in marked_page


EVALUATED = ("4785b5fc-e65a-539e-81f5-913d613cfc11", "833ab0b6-48db-52db-a111-9a5dc3621b38",
             "79384b8e-9eee-5143-be6f-7a4dd23ad8ac")


def _page(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()
