"""Read model ``evals``: every session eval and every human review of a verdict.

- ``evals``: one row per ``SessionEvalCompleted``: session, time, overall score,
  judge, catalog version, and the event's data (``data``) for the tab;
- ``eval_verdicts``: one row per answered question of an eval (for the
  per-question and per-repository overviews);
- ``eval_reviews``: a reviewer's latest agree/disagree (and comment) on one
  verdict, from ``EvalVerdictReviewed``.

Both event types live on a session's eval stream (``SessionEval-{session}``),
never on its agent streams, so evals do not count as session activity.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kapacitor.events import RecordedEvent
from kapacitor.projections.runner import Projection
from kapacitor.store.readdb import ReadDb

PREFIX = "SessionEval-"


EVAL_COLUMNS = ("eval_id", "session_id", "completed_at", "overall", "backend", "model", "catalog_version", "data")
VERDICT_COLUMNS = ("eval_id", "question_id", "category", "score", "verdict")


def setup(conn: ReadDb) -> None:
    conn.execute(
        "CREATE TABLE evals (eval_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, completed_at TEXT NOT NULL,"
        " overall INTEGER, backend TEXT, model TEXT, catalog_version TEXT, data TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX evals_session ON evals (session_id, completed_at)")
    conn.execute(
        "CREATE TABLE eval_verdicts (eval_id TEXT NOT NULL, question_id TEXT NOT NULL, category TEXT,"
        " score INTEGER NOT NULL, verdict TEXT NOT NULL, PRIMARY KEY (eval_id, question_id))"
    )
    conn.execute(
        "CREATE TABLE eval_reviews (eval_id TEXT NOT NULL, question_id TEXT NOT NULL, reviewer TEXT NOT NULL,"
        " agree INTEGER NOT NULL, comment TEXT, reviewed_at TEXT NOT NULL, session_id TEXT NOT NULL,"
        " PRIMARY KEY (eval_id, question_id, reviewer))"
    )


def apply(conn: ReadDb, events: Sequence[RecordedEvent]) -> None:
    for event in events:
        if not event.stream.startswith(PREFIX):
            continue
        session_id = event.stream.removeprefix(PREFIX)
        data = event.data
        if event.type == "SessionEvalCompleted":
            summary = data.get("summary") or {}
            judge = summary.get("judge") or {}
            conn.execute(
                conn.upsert("evals", EVAL_COLUMNS, ("eval_id",)),
                (data["eval_id"], session_id, data.get("timestamp", ""), summary.get("overall"), judge.get("backend"),
                 judge.get("model"), summary.get("catalog_version"), json.dumps(data)),
            )
            conn.executemany(
                conn.upsert("eval_verdicts", VERDICT_COLUMNS, ("eval_id", "question_id")),
                [(data["eval_id"], s["question_id"], s.get("category"), s["score"], s["verdict"])
                 for s in data.get("scores") or []],
            )
        elif event.type == "EvalVerdictReviewed":
            conn.execute(
                "INSERT INTO eval_reviews VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (eval_id, question_id, reviewer)"
                " DO UPDATE SET agree = excluded.agree, comment = excluded.comment, reviewed_at = excluded.reviewed_at"
                " WHERE excluded.reviewed_at >= eval_reviews.reviewed_at",
                (data["eval_id"], data["question_id"], data.get("reviewer", ""), int(bool(data.get("agree"))),
                 data.get("comment", ""), data.get("timestamp", ""), session_id),
            )


def session_evals(conn: ReadDb, session_id: str) -> list[dict[str, Any]]:
    """The session's evals, newest first (``SessionEvalCompleted`` data), each
    verdict with its ``reviews`` (reviewer, agree, comment, reviewed_at)."""
    rows = conn.execute("SELECT data FROM evals WHERE session_id = ? ORDER BY completed_at DESC", (session_id,))
    evals = [json.loads(data) for (data,) in rows]
    reviews: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for eval_id, question_id, reviewer, agree, comment, at in conn.execute(
        "SELECT eval_id, question_id, reviewer, agree, comment, reviewed_at FROM eval_reviews"
        " WHERE session_id = ? ORDER BY reviewed_at", (session_id,)
    ):
        reviews.setdefault((eval_id, question_id), []).append(
            {"reviewer": reviewer, "agree": bool(agree), "comment": comment, "reviewed_at": at})
    for e in evals:
        for s in e.get("scores") or []:
            s["reviews"] = reviews.get((e["eval_id"], s["question_id"]), [])
    return evals


def latest_scores(conn: ReadDb, session_ids: Sequence[str]) -> dict[str, int | None]:
    """Each session's latest eval's overall score (sessions without an eval are left out)."""
    out: dict[str, int | None] = {}
    for start in range(0, len(session_ids), 500):
        chunk = list(session_ids[start: start + 500])
        marks = ",".join("?" * len(chunk))
        for sid, overall in conn.execute(
            f"SELECT session_id, overall FROM evals e WHERE session_id IN ({marks}) AND completed_at ="
            " (SELECT max(completed_at) FROM evals WHERE session_id = e.session_id)", chunk
        ):
            out[sid] = overall
    return out


def overview(conn: ReadDb, only: set[str] | None = None) -> dict[str, Any]:
    """Scores per repository, per question (with how often reviewers agree with
    the judge), per repository and week, and per question and week; over the
    sessions in ``only`` (all when None). Means are floats (PostgreSQL's are numeric).
    An eval counts in the ISO week (UTC) its session started, not the week it was
    run: the rule ``/overview``'s scores by day follow too (``docs/eval.md``)."""
    week = conn.week("r.started")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS eval_scope (session_id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM eval_scope")
    if only is None:
        conn.execute("INSERT INTO eval_scope SELECT DISTINCT session_id FROM evals")
    else:
        conn.executemany("INSERT INTO eval_scope VALUES (?)", [(s,) for s in only])
    repos = [
        {"repository": key, "evals": n, "sessions": sessions, "mean_overall": _real(mean)}
        for key, n, sessions, mean in conn.execute(
            "SELECT r.key, count(*), count(DISTINCT e.session_id), round(avg(e.overall), 2) FROM evals e"
            " JOIN eval_scope USING (session_id) JOIN repository_sessions r USING (session_id)"
            " GROUP BY r.key ORDER BY r.key"
        )
    ]
    questions = []
    for qid, category, answers, mean, fails in conn.execute(
        "SELECT question_id, category, count(*), round(avg(score), 2), sum(CASE WHEN verdict = 'fail' THEN 1 ELSE 0 END) FROM eval_verdicts"
        " JOIN evals USING (eval_id) JOIN eval_scope USING (session_id)"
        " GROUP BY question_id, category ORDER BY category, question_id"
    ):
        reviewed, agreed = conn.execute(
            "SELECT count(*), coalesce(sum(agree), 0) FROM eval_reviews JOIN eval_scope USING (session_id)"
            " WHERE question_id = ?", (qid,)
        ).fetchone()
        questions.append({"question_id": qid, "category": category, "answers": answers, "mean_score": _real(mean),
                          "fails": fails, "reviews": reviewed,
                          "agreement": round(agreed / reviewed, 3) if reviewed else None})
    weeks = [
        {"repository": key, "week": wk, "evals": n, "mean_overall": _real(mean)}
        for key, wk, n, mean in conn.execute(
            f"SELECT r.key, {week}, count(*), round(avg(e.overall), 2) FROM evals e"
            " JOIN eval_scope USING (session_id) JOIN repository_sessions r USING (session_id)"
            " GROUP BY 1, 2 ORDER BY 2, 1"
        )
    ]
    question_weeks = [
        {"question_id": qid, "week": wk, "answers": n, "mean_score": _real(mean)}
        for qid, wk, n, mean in conn.execute(
            f"SELECT v.question_id, {week}, count(*), round(avg(v.score), 2)"
            " FROM eval_verdicts v JOIN evals e USING (eval_id) JOIN eval_scope USING (session_id)"
            " JOIN repository_sessions r USING (session_id) GROUP BY 1, 2 ORDER BY 2, 1"
        )
    ]
    return {"repositories": repos, "questions": questions, "weeks": weeks, "question_weeks": question_weeks}


def _real(value: Any) -> float | None:
    return None if value is None else float(value)


PROJECTION = Projection("evals", 1, ("evals", "eval_verdicts", "eval_reviews"), setup, apply)
