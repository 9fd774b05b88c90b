"""Facts as events in a real SQLite store, folded by the facts read model:
lifecycle, provenance, judges' facts, guidance from eval retrospectives, and
what recall picks (relevance, uses, duplicates merged, the size bound)."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_DIRS
from kapacitor.capture.importer import import_paths
from kapacitor.events import NewEvent, event_id
from kapacitor.memory import facts, recall
from kapacitor.memory.facts import FactError, Provenance
from kapacitor.projections.catalog import PROJECTIONS
from kapacitor.projections.runner import ProjectionRunner

API_FIX = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"
AGENT = Provenance("agent", "dev@example.com", API_FIX, ("ev-1",))
PERSON = Provenance("person", "lead@example.com")


@pytest.fixture
def models(store, store_path):
    runner = ProjectionRunner(store, store_path, PROJECTIONS)

    def caught_up():
        runner.catch_up()
        assert not runner.failures
        return runner.conn

    yield caught_up
    runner.close()


def test_lifecycle_is_events_and_nothing_is_mutated(store, models):
    first = facts.retain(store, "Run the billing tests with `make check-billing`.", "acme/api", AGENT, "testing")
    conn = models()
    [fact] = facts.rows(conn)
    assert (fact.fact_id, fact.scope, fact.category, fact.status, fact.by, fact.user, fact.session_id, fact.event_ids) == (
        first, "acme/api", "testing", "active", "agent", "dev@example.com", API_FIX, ["ev-1"])
    assert fact.stream == "AgentMemory-acme/api-dev@example.com"
    second = facts.supersede(store, conn, first[:6], "Run the billing tests with `make check-billing V=1`.", PERSON)
    conn = models()
    old, new = facts.find(conn, first), facts.find(conn, second)
    assert (old.status, old.superseded_by, new.status, new.category, new.by) == ("superseded", second, "active", "testing", "person")
    facts.retire(store, conn, second, "lead@example.com", "moved to the Makefile docs")
    conn = models()
    assert [f.status for f in facts.rows(conn, order="position")] == ["superseded", "retired"]
    types = [e.type for e in store.read_all()]
    assert types == ["FactRetained", "FactRetained", "FactSuperseded", "FactRetired"]
    assert store.read_all()[0].data["fact"] == "Run the billing tests with `make check-billing`."  # the original, untouched
    with pytest.raises(FactError, match="already retired"):
        facts.retire(store, conn, second, "x")


@pytest.mark.parametrize(("text", "scope", "category", "message"), [
    ("", "acme/api", "", "needs some text"),
    ("x" * 1001, "acme/api", "", "at most 1000 characters"),
    ("ok", "not a repo", "", "scope must be OWNER/REPO .*absolute path"),
    ("ok", "relative/dir/too", "", "scope must be OWNER/REPO"),
    ("ok", "/tab\tin/path", "", "scope must be OWNER/REPO"),
    ("ok", "org", "Two Words", "one lowercase word"),
])
def test_bad_facts_are_refused_with_a_reason(store, text, scope, category, message):
    with pytest.raises(FactError, match=message):
        facts.retain(store, text, scope, PERSON, category)
    assert store.head_position() == 0


def test_ids_resolve_by_unique_prefix(store, models):
    fact_id = facts.retain(store, "a", "org", PERSON)
    conn = models()
    assert facts.find(conn, fact_id[:4]).fact_id == fact_id
    with pytest.raises(FactError, match="too short"):
        facts.find(conn, fact_id[:3])
    with pytest.raises(FactError, match="no fact"):
        facts.find(conn, "ffffffffffff")


def test_judge_facts_and_retrospective_guidance_land_in_the_sessions_repository(store, models, tmp_path):
    """The shapes ``kapacitor eval`` writes: a judge's ``retain_fact`` and a
    ``SessionEvalCompleted`` whose retrospective has suggestions."""
    import_paths(store, SAMPLE_DIRS)
    store.append("AgentMemory-kapacitor-dev@example.com", [NewEvent(event_id("fact", "ev1", "q1"), "FactRetained", {
        "fact": "app.py has no type hints", "retained_at": "2026-11-25T21:00:00Z", "extensions": {"kapacitor": {
            "source": "eval", "session_id": API_FIX, "eval_id": "ev1", "question_id": "q1", "judge": "fake/judge-1",
            "repository": "acme/api-server", "evidence": ["e-9"]}}})])
    store.append(f"SessionEval-{API_FIX}", [NewEvent("ev1", "SessionEvalCompleted", {
        "timestamp": "2026-11-25T21:00:00Z", "eval_id": "ev1", "scores": [],
        "summary": {"session_id": API_FIX, "judge": {"backend": "fake", "model": "judge-1"},
                    "retrospective": {"assessment": "fine", "suggestions": ["Run the tests before editing.", "  "]}}},
        {"eval": {"session_id": API_FIX}})])
    conn = models()
    judged, guidance = facts.rows(conn, order="category DESC")
    assert (judged.by, judged.user, judged.scope, judged.session_id, judged.eval_id, judged.event_ids) == (
        "judge", "fake/judge-1", "acme/api-server", API_FIX, "ev1", ["e-9"])
    where = "/home/dev/src/api-server"  # the recorded session's directory: it has no GitHub remote on this machine
    assert (guidance.category, guidance.text, guidance.scope, guidance.by, guidance.eval_id, guidance.session_id) == (
        "guidance", "Run the tests before editing.", where, "judge", "ev1", API_FIX)
    text, _ = recall.render(where, recall.recall(conn, None, where))
    assert "[guidance] Run the tests before editing." in text
    facts.retire(store, conn, guidance.fact_id, "lead")  # guidance is a fact like any other
    assert facts.find(models(), guidance.fact_id).status == "retired"


def test_recall_puts_the_repository_first_then_uses_merges_duplicates_and_stays_bounded(store, models):
    facts.retain(store, "Team: squash merges only.", "org", PERSON)
    used = facts.retain(store, "use make check", "acme/api", PERSON)
    facts.retain(store, "Use  make CHECK.", "acme/api", AGENT)  # a duplicate, newer wording
    facts.retain(store, "newest repo fact", "acme/api", PERSON)
    facts.retain(store, "another repository's fact", "acme/web", PERSON)
    facts.record_use(store, [used], "acme/api")
    facts.record_use(store, [used], "acme/api")
    conn = models()
    found = recall.recall(conn, None, "acme/api")
    assert [(r.text, r.uses, len(r.fact_ids)) for r in found] == [
        ("Use make CHECK.", 2, 2), ("newest repo fact", 0, 1), ("Team: squash merges only.", 0, 1)]
    text, shown = recall.render("acme/api", found)
    assert text.splitlines()[1:] == ["- [note] Use make CHECK.", "- [note] newest repo fact", "- [note, team] Team: squash merges only."]
    for i in range(40):
        facts.retain(store, f"fact number {i} " + "x" * 80, "acme/api", PERSON)
    text, shown = recall.render("acme/api", recall.recall(models(), None, "acme/api"))
    assert len(text) <= recall.MAX_CHARS and 10 < len(shown) < 40
    assert all(line.startswith("- [") for line in text.splitlines()[1:])  # whole facts only


def test_recall_counts_each_use(store, models):
    fact_id = facts.retain(store, "a", "acme/api", PERSON)
    facts.record_use(store, [fact_id], "acme/api", session_id="s1", via="session_start")
    [fact] = facts.rows(models())
    assert fact.uses == 1 and fact.last_used
