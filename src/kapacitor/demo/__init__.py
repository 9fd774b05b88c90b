"""The bundled demo set: a small team's sessions across several repositories,
recorded by ``scripts/make-demo`` from the real Claude Code client working in
small real git repositories (see that script and docs/demo.md).

The archive holds transcripts in Claude Code's own layout (``projects/...``),
``context.json``: what the team's machines would have told the importer about
each working directory (GitHub repository, remote, user), and ``demo.json``:
the moment the set was made for. ``kapacitor serve --demo`` moves each session
by whole days to the same day before today as it had before that moment, at
the same time of day in the machine's zone (``day_moves``), so the demo always
looks like the last three weeks, one session a day as docs/demo.md says, and
imports it through the ordinary importer with that context.

A store remembers which archive it was filled from (``DEMO_CHECKPOINT``: the
archive's SHA-256, the moment it was dated for and how), so serving the demo
again reuses it as it is, and a new archive is dated for the same moment: the
same transcripts get the same event ids and nothing is imported twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kapacitor.normalize.claude_code import ContextResolver
from kapacitor.envelope import agent_session_stream
from kapacitor.events import event_id
from kapacitor.store.base import EventStore, utc_now

ARCHIVE = Path(__file__).with_name("demo.tar.xz")
EXTRAS = Path(__file__).with_name("extras.json")
"""What the demo team added to its sessions after the fact (evals, facts,
comments, marks): appended by ``add_extras`` through the memory and collab packages."""
STAMP = re.compile(rb'"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"')
"""A record's ``timestamp`` field in a transcript line; group 1 is the time."""
DEMO_CHECKPOINT = "demo-archive"
"""The store checkpoint naming the archive a store's demo came from:
``{"sha256": hex digest, "now": ISO time the demo was dated for, "dated": "by day"}``
(no ``dated``: a store dated before ``day_moves``, whose every timestamp moved by
the same time, as a new archive for it still is)."""
BY_DAY = "by day"


def archive_digest(archive: Path = ARCHIVE) -> str:
    """The archive's SHA-256 (hex): which demo a store holds."""
    return hashlib.sha256(archive.read_bytes()).hexdigest()


def demo_record(store: EventStore) -> dict[str, Any]:
    """What ``record_demo`` saved in ``store`` (``{}``: no demo was imported there)."""
    return store.get_checkpoint(DEMO_CHECKPOINT)


def record_demo(store: EventStore, digest: str, now: datetime, by_day: bool = True) -> None:
    """Note in ``store`` that the archive ``digest`` was imported, dated for ``now``
    (``by_day``: by ``day_moves``)."""
    record = {"sha256": digest, "now": now.isoformat()} | ({"dated": BY_DAY} if by_day else {})
    store.append_many([], checkpoints={DEMO_CHECKPOINT: record})


def stamp_time(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode().replace("Z", "+00:00"))


def retimed(data: bytes, move: Callable[[datetime], datetime]) -> bytes:
    """Every record ``timestamp`` in a transcript replaced by ``move(timestamp)``."""

    def moved(m: re.Match[bytes]) -> bytes:
        return b'"timestamp":"' + move(stamp_time(m.group(1))).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].encode() + b'Z"'

    return STAMP.sub(moved, data)


def shift_timestamps(data: bytes, delta: timedelta) -> bytes:
    """Every record ``timestamp`` in a transcript moved by ``delta``."""
    return retimed(data, lambda when: when + delta)


def day_moves(spans: dict[str, tuple[datetime, datetime]], made_for: datetime, now: datetime) -> dict[str, timedelta]:
    """How far to move each session (id -> its first and last timestamp, UTC) of a
    set made for ``made_for`` (UTC) so that it happens by ``now``: a session that
    started ``n`` days before ``made_for`` at ``HH:MM`` (UTC: ``scripts/make-demo``
    places each at its day and time there) starts ``n`` days before today at
    ``HH:MM`` in the machine's zone (``TZ``; its DST rules included). So sessions on
    different days stay on different days and keep a person's working hours
    wherever the demo is served. When the newest would not have ended by ``now``
    yet (early in the morning), every session moves a day less: nothing happens
    in the future."""
    today = now.astimezone().date()
    while True:
        moves = {sid: datetime.combine(today - (made_for.date() - start.date()), start.time()).astimezone() - start
                 for sid, (start, _) in spans.items()}
        if all(end + moves[sid] <= now for sid, (_, end) in spans.items()):
            return moves
        today -= timedelta(days=1)


def add_extras(store: EventStore, extras: Path = EXTRAS) -> dict[str, int]:
    """Append the demo's memory facts, comments and marks (``extras.json``) to
    ``store``, which holds the demo's sessions, through the same functions the
    server and the MCP tools use, attributed to the demo's developers. Returns
    how many of each were added (facts: what the Memory page will list, the
    evals' retained facts and their retrospectives' guidance too). Not idempotent (new ids): call it once per store."""
    from kapacitor.collab import comments, marks
    from kapacitor.eval.record import record_eval
    from kapacitor.memory import facts, guidance

    data = json.loads(extras.read_text())
    head = store.head_position()
    for fact in data["facts"]:
        provenance = facts.Provenance(by=fact["by"], user=fact["user"], session_id=fact["session"])
        facts.retain(store, fact["text"], fact["scope"], provenance, fact["category"])
    for comment in data["comments"]:
        anchor = chat_item_with(store, comment["session"], comment["on"]) if comment.get("on") else ""
        target = comments.check_target("chat", anchor) if anchor else comments.check_target("session")
        comments.add(store, comment["session"], comment["author"], comment["text"], target)
    for mark in data["marks"]:
        marks.mark(store, mark["session"], mark["author"], mark["reason"])
    for evaluation in data["evals"]:
        record_eval(store, demo_eval(evaluation, store), {"repository": evaluation["repository"], "user": evaluation["user"]})
    added = {kind: len(data[kind]) for kind in ("evals", "facts", "comments", "marks")}
    appended = store.read_all(head)
    added["facts"] = sum(e.type == "FactRetained" for e in appended) + sum(
        len(guidance.entries(e)) for e in appended if e.type == "SessionEvalCompleted")
    return added


def demo_eval(evaluation: dict[str, Any], store: EventStore | None = None) -> Any:
    """An ``EvalResult`` from the demo's scripted answers, built as the eval
    runner builds one: each answer a ``Verdict`` of the catalog's question,
    scores aggregated per category by ``runner.aggregate``, the retrospective
    validated by ``answers.validate_retrospective``. With ``store`` (holding the
    session), an answer's ``evidence`` (``{"text", "note"}`` items) cites the first
    event whose data holds ``text``, placed in the chat and trace as a judge's
    citation is (``eval.session``); a text the session lacks is an error."""
    from kapacitor.eval import answers, runner, session
    from kapacitor.eval.catalog import load

    catalog = load()
    view = session.load(store, evaluation["session"]) if store is not None else None

    def cited(item: dict[str, str]) -> dict[str, Any]:
        assert view is not None and store is not None
        event_id = chat_item_with(store, evaluation["session"], item["text"])
        if not event_id:
            raise ValueError(f"demo eval of {evaluation['session']}: no event holds {item['text']!r}")
        return {"event_id": event_id, "note": item["note"]} | view.position(event_id)

    verdicts = [
        answers.Verdict(question_id, catalog.question(question_id).category, a["score"], answers.verdict_of(a["score"]),
                        a["finding"], [cited(e) for e in a.get("evidence", [])] if view is not None else [],
                        a.get("recommendation", ""), a.get("retain_fact", ""))
        for question_id, a in evaluation["answers"].items()
    ]
    categories, overall = runner.aggregate(catalog, verdicts)
    return runner.EvalResult(
        eval_id=event_id("demo-eval", evaluation["session"]), session_id=evaluation["session"], backend="anthropic",
        model=evaluation["model"], catalog_version=catalog.version, verdicts=verdicts, failed=[],
        categories=categories, overall=overall, retrospective=answers.validate_retrospective(evaluation["retrospective"]),
        usage={}, cost_usd=None, started=utc_now(), duration_seconds=evaluation["seconds"], threshold=runner.DEFAULT_THRESHOLD,
    )


def session_of(transcript: Path) -> str:
    """The session a demo transcript belongs to: its own (``<project>/<session>.jsonl``)
    or, a subagent's (``<project>/<session>/subagents/agent-*.jsonl``), its parent's."""
    return transcript.stem if transcript.parent.name != "subagents" else transcript.parent.parent.name


def chat_item_with(store: EventStore, session_id: str, text: str) -> str:
    """The id of the session's first event whose data holds ``text`` ("" if none):
    the anchor of a comment on that chat item."""
    for event in store.read_stream(agent_session_stream(session_id)):
        if text in json.dumps(event.data):
            return event.id
    return ""


@contextmanager
def extracted(archive: Path = ARCHIVE, now: datetime | None = None, by_day: bool = True) -> Iterator[tuple[Path, ContextResolver]]:
    """The demo transcripts unpacked in a temporary dir, dated for ``now`` (default:
    this moment) by ``day_moves``; or, not
    ``by_day``, every timestamp moved by the time from the set's moment to ``now``
    (how a store dated before ``day_moves`` was). And their context resolver."""
    with tempfile.TemporaryDirectory(prefix="kapacitor-demo-") as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
        made_for = datetime.fromisoformat(json.loads((Path(tmp) / "demo.json").read_text())["now"])
        now = now or datetime.now(UTC)
        files = {path: path.read_bytes() for path in (Path(tmp) / "projects").rglob("*.jsonl")}
        stamps: dict[str, list[datetime]] = {}
        for path, data in files.items():
            stamps.setdefault(session_of(path), []).extend(stamp_time(m.group(1)) for m in STAMP.finditer(data))
        spans = {sid: (min(times), max(times)) for sid, times in stamps.items() if times}
        moves = day_moves(spans, made_for, now) if by_day else dict.fromkeys(spans, now - made_for)
        for path, data in files.items():
            path.write_bytes(shift_timestamps(data, moves.get(session_of(path), now - made_for)))
        context: dict[str, dict[str, Any]] = json.loads((Path(tmp) / "context.json").read_text())

        def resolve(cwd: str) -> dict[str, Any]:
            return dict(context.get(cwd, {}))

        yield Path(tmp) / "projects", resolve
