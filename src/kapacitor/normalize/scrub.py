"""Secrets already stored: re-apply the current rules to the events in the store.

Events are immutable, with this one logged exception. ``scrub`` reads the whole
log, masks what today's rules find in each event's data and metadata (the raw
line included) exactly as an import would, rewrites the events that changed
(``EventStore.rewrite``: id, stream, type and position stay) and appends one
``SecretsScrubbed`` event to the ``KapacitorScrub`` stream naming the events
and the kinds of secret, never a value. The read models are then rebuilt by
the caller (``kapacitor scrub``). Running it again changes nothing: markers are
never masked twice.

Beyond what an import does, a secret found anywhere in a session is masked
wherever else that session mentions it, before or after: one the rules find
now, and one masked when the session was stored, recognised by the keyed hash
its marker holds (a second pass over the log, for the sessions that need it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kapacitor.events import (
    RecordedEvent,
    SecretsScrubbed,
    event_id,
    scrub_log_stream,
    to_new_event,
)
from kapacitor.normalize import redact
from kapacitor.store.base import EventStore, Rewrite, utc_now

PAGE = 1000
"""Events read (and rewritten) per transaction."""


@dataclass
class Change:
    """One event the rules would change, and the kinds of secret found in it."""

    id: str
    stream: str
    type: str
    position: int
    kinds: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "stream": self.stream, "type": self.type, "position": self.position, "kinds": self.kinds}


@dataclass
class ScrubReport:
    """What a scrub found (``dry_run``: and left alone) and the event that logs it."""

    scanned: int = 0
    changes: list[Change] = field(default_factory=list)
    rewritten: int = 0
    dry_run: bool = False
    log_event: str | None = None

    @property
    def kinds(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for change in self.changes:
            total.update(change.kinds)
        return dict(total.most_common())

    def as_json(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "changed": len(self.changes), "rewritten": self.rewritten,
                "dry_run": self.dry_run, "kinds": self.kinds, "log_event": self.log_event,
                "events": [c.as_json() for c in self.changes]}


def scrub(store: EventStore, *, dry_run: bool = False, redactor: redact.Redactor | None = None,
          progress: Callable[[int], None] | None = None) -> ScrubReport:
    """Mask every stored secret the rules find; ``progress`` gets each page's number of events."""
    rules = redactor or redact.default(accelerate=True)
    report = ScrubReport(dry_run=dry_run)
    per_session: dict[str, redact.Redactor] = {}
    mentioned: dict[str, dict[str, str]] = {}  # session -> secret -> kind: what the rules found in it
    hashes: dict[str, dict[str, str]] = {}  # session -> marker hash -> kind: what was masked in it before
    for page in _pages(store):
        rewrites = []
        for event in page:
            report.scanned += 1
            if event.type == SecretsScrubbed.__name__:
                continue
            session = _session_of(event)
            if event.type == "SessionStarted":  # where the session ran: redaction may be off there
                started = (event.data.get("extensions") or {}).get("claude_code", {})
                per_session[session] = rules.for_location(str(started.get("cwd") or ""), repository=started.get("repository"))
            known = mentioned.setdefault(session, {}) if session else None
            if session:
                _note_markers(event, hashes.setdefault(session, {}))
            rewrite, kinds = scrub_event(event, per_session.get(session, rules), known)
            if rewrite is not None:
                report.changes.append(Change(event.id, event.stream, event.type, event.position, dict(kinds)))
                rewrites.append(rewrite)
        if rewrites and not dry_run:
            report.rewritten += store.rewrite(rewrites)
        if progress:
            progress(len(page))
    if any(mentioned.values()) or any(hashes.values()):
        _earlier_mentions(store, report, mentioned, hashes, per_session, rules)
    if report.changes and not dry_run:
        report.log_event = _log(store, report, rules)
    return report


def _pages(store: EventStore) -> Iterator[list[RecordedEvent]]:
    """The whole log, ``PAGE`` events at a time (read after the page before is rewritten)."""
    position = 0
    while page := store.read_all(position, limit=PAGE):
        yield page
        position = page[-1].position


def _session_of(event: RecordedEvent) -> str:
    return str((event.metadata.get("source") or {}).get("session_id") or "")


def _note_markers(event: RecordedEvent, hashes: dict[str, str]) -> None:
    """Add the markers ``event`` holds to ``hashes`` (marker hash -> kind)."""
    text = json.dumps([event.data, event.metadata.get("raw")], ensure_ascii=False)
    if "[REDACTED " in text:
        hashes.update((m.group(2), m.group(1)) for m in redact.marker_pattern().finditer(text))


_TOKEN = re.compile(r"[^\s\"'`<>()\[\]{},;]{%d,}" % redact.KNOWN_MIN)


def _masked_before(rules: redact.Redactor, event: RecordedEvent, hashes: dict[str, str],
                   digests: dict[str, str]) -> dict[str, str]:
    """The words of ``event`` (secret -> kind) whose keyed hash is that of a
    marker its session holds (``hashes``): a secret masked where a rule found
    it when the session was stored, mentioned in clear elsewhere. ``digests``
    caches each word's hash for the session."""
    text = redact.view_of(json.dumps([event.data, event.metadata.get("raw")], ensure_ascii=False))
    found = {}
    for match in _TOKEN.finditer(text):
        word = match.group()
        for candidate in {word, word.rstrip(".:!?")}:
            if len(candidate) < redact.KNOWN_MIN:
                continue
            digest = digests.get(candidate)
            if digest is None:
                digest = digests[candidate] = rules.marker("", candidate)[-7:-1]
            if digest in hashes:
                found[candidate] = hashes[digest]
    return found


def _earlier_mentions(store: EventStore, report: ScrubReport, mentioned: dict[str, dict[str, str]],
                      hashes: dict[str, dict[str, str]], per_session: dict[str, redact.Redactor],
                      rules: redact.Redactor) -> None:
    """A second pass: in each session's events, the mentions of a secret the
    rules found in a later event of it (``mentioned``: session -> secret ->
    kind), or found and masked when it was stored (a word whose keyed hash is
    one of the session's markers' ``hashes``)."""
    changes = {c.id: c for c in report.changes}
    digests: dict[str, dict[str, str]] = {}
    for page in _pages(store):
        rewrites = []
        for event in page:
            session = _session_of(event)
            if not session or event.type == SecretsScrubbed.__name__:
                continue
            session_rules = per_session.get(session, rules)
            if not session_rules.enabled:
                continue
            known = dict(mentioned.get(session) or {})
            if hashes.get(session):
                known.update(_masked_before(session_rules, event, hashes[session], digests.setdefault(session, {})))
            if not known:
                continue
            text = json.dumps([event.data, event.metadata], ensure_ascii=False)
            if not any(value in text for value in known):
                continue
            rewrite, kinds = scrub_event(event, session_rules, known)
            if rewrite is None:
                continue
            if event.id in changes:
                if not report.dry_run:
                    changes[event.id].kinds = dict(Counter(changes[event.id].kinds) + kinds)
                else:  # nothing was written: this pass saw the event as stored, and found all of it
                    changes[event.id].kinds = dict(kinds)
            else:
                changes[event.id] = Change(event.id, event.stream, event.type, event.position, dict(kinds))
                report.changes.append(changes[event.id])
            rewrites.append(rewrite)
        if rewrites and not report.dry_run:
            report.rewritten += store.rewrite(rewrites)


def scrub_event(event: RecordedEvent, rules: redact.Redactor,
                known: dict[str, str] | None = None) -> tuple[Rewrite | None, Counter[str]]:
    """The event's data and metadata masked by ``rules`` (None when nothing changes),
    and the kinds of secret found. ``known`` (secret -> kind): the secrets found so
    far in the event's session, masked wherever they occur too, and added to."""
    kinds: Counter[str] = Counter()
    data = _masked_json(rules, event.data, kinds, known)
    metadata = dict(event.metadata)
    raw, raw_b64 = metadata.pop("raw", None), metadata.pop("raw_b64", None)
    metadata = _masked_json(rules, metadata, kinds, known)
    if isinstance(raw, str):
        metadata["raw"] = _masked(rules, raw, kinds, known)
    if isinstance(raw_b64, str):
        original = base64.b64decode(raw_b64).decode("utf-8", "surrogateescape")
        masked_text = _masked(rules, original, kinds, known)
        changed = masked_text is not original
        metadata["raw_b64"] = base64.b64encode(masked_text.encode("utf-8", "surrogateescape")).decode("ascii") if changed else raw_b64
    if not kinds:
        return None, kinds
    return Rewrite(event.id, data, metadata), kinds


def _masked(rules: redact.Redactor, text: str, kinds: Counter[str], known: dict[str, str] | None) -> str:
    """``text`` masked by ``rules``, and the ``known`` secrets' other mentions (``text``
    itself when nothing changes); what the rules found is added to ``known``."""
    masked, found = rules.mask(text)
    kinds.update(f.rule for f in found)
    if known is None or not rules.enabled:
        return masked
    known.update((f.secret, f.rule) for f in found if len(f.secret) >= redact.KNOWN_MIN)
    if not known or not any(value in masked for value in known):
        return masked
    markers = [m.span() for m in redact.marker_pattern().finditer(masked)]
    mentions = redact.other_mentions(masked, [], markers, known)
    if not mentions:
        return masked
    kinds.update(f.rule for f in mentions)
    parts, last = [], 0
    for f in mentions:
        parts += [masked[last : f.start], rules.marker(f.rule, f.secret)]
        last = f.end
    parts.append(masked[last:])
    return "".join(parts)


def _masked_json(rules: redact.Redactor, value: dict[str, Any], kinds: Counter[str],
                 known: dict[str, str] | None = None) -> dict[str, Any]:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    masked = _masked(rules, text, kinds, known)
    if masked is text:
        return value
    try:
        return json.loads(masked)
    except ValueError:  # a known value that ended inside an escape: the rules' masking alone
        return json.loads(rules.redact(text))


def _log(store: EventStore, report: ScrubReport, rules: redact.Redactor) -> str:
    ids = [c.id for c in report.changes]
    now = utc_now()
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]
    payload = SecretsScrubbed(timestamp=now, events=ids, kinds=report.kinds, rules=rules.describe())
    new = to_new_event(payload, event_id("kapacitor", "scrub", now, digest), {"tool": "kapacitor scrub"})
    store.append(scrub_log_stream(), [new])
    return new.id
