"""Facts: short statements about a repository or the team, kept as events.

A fact has a scope (a GitHub ``owner/repo``; for a project without a GitHub
remote, its directory; or ``org`` for the whole team), a
category (``note`` unless told; ``guidance`` for what eval retrospectives tell
agents), its text, and its provenance: who retained it (``agent``, ``judge`` or
``person``), as which user, and the session and events it came from.

Its lifecycle is events on the memory stream ``AgentMemory-{scope}-{user}`` of
whoever retained it: ``FactRetained`` (the canonical schema's type; our fields in
``extensions["kapacitor"]``), then ``FactSuperseded`` (a newer fact replaces it:
that is how a fact is edited) or ``FactRetired``. ``FactsRecalled`` counts uses.
No event is ever changed. The ``facts`` read model (``projections/facts.py``)
folds them into what recall, the pages and the tools read.
"""

from __future__ import annotations

import json
import posixpath
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from kapacitor import authored
from kapacitor.events import (
    FactRetained,
    FactRetired,
    FactsRecalled,
    FactSuperseded,
    agent_memory_stream,
    event_id,
    to_new_event,
)
from kapacitor.store.base import EventStore, utc_now
from kapacitor.store.readdb import ReadDb

ORG = "org"
"""The scope of facts about the whole team rather than one repository."""
DEFAULT_CATEGORY = "note"
GUIDANCE = "guidance"
MAX_FACT_CHARS = 1000
"""A fact is a sentence or two; longer text belongs in the repository's docs."""
SOURCES = ("agent", "judge", "person")
MAX_DIRECTORY_CHARS = 4096
"""The longest directory scope (PATH_MAX on Linux)."""
_SCOPE = re.compile(r"^[A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_\-]{0,31}$")


class FactError(ValueError):
    """A fact that cannot be kept or changed; the message says why, for people."""


@dataclass(frozen=True)
class Provenance:
    """Who retained a fact and from where: ``by`` is agent, judge or person;
    ``session_id`` and ``event_ids`` the session and events it came from."""

    by: str
    user: str = ""
    session_id: str = ""
    event_ids: tuple[str, ...] = ()
    eval_id: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "user": self.user, "session_id": self.session_id,
                "event_ids": list(self.event_ids), "eval_id": self.eval_id}


@dataclass
class Fact:
    """A row of the ``facts`` read model."""

    fact_id: str
    scope: str
    category: str
    text: str
    status: str  # active, superseded, retired
    retained_at: str
    by: str
    user: str
    session_id: str = ""
    event_ids: list[str] = field(default_factory=list)
    eval_id: str = ""
    superseded_by: str = ""
    ended_at: str = ""
    uses: int = 0
    last_used: str = ""
    stream: str = ""
    position: int = 0

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def check_scope(scope: str) -> str:
    """``scope`` checked: ``org``, a GitHub ``owner/repo``, or the directory of a
    project without a GitHub remote (an absolute path, as its sessions' cwd: the
    group the session list shows them under; a trailing ``/`` dropped)."""
    scope = scope.strip()
    if scope.startswith("/") and scope.isprintable() and len(scope) <= MAX_DIRECTORY_CHARS:
        return posixpath.normpath(scope) if scope != "/" else scope
    if scope != ORG and not _SCOPE.match(scope):
        raise FactError(f"scope must be OWNER/REPO (a GitHub repository), a project's directory (an absolute path, for a"
                        f" project without a GitHub remote) or {ORG!r} (the team), not {scope!r}")
    return scope


def check_text(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise FactError("a fact needs some text")
    if len(text) > MAX_FACT_CHARS:
        raise FactError(f"a fact is at most {MAX_FACT_CHARS} characters (this one has {len(text)}): keep it short")
    return text


def check_category(category: str) -> str:
    category = (category or DEFAULT_CATEGORY).strip().lower()
    if not _CATEGORY.match(category):
        raise FactError(f"a category is one lowercase word (letters, digits, - or _), not {category!r}")
    return category


def normalized(text: str) -> str:
    """The text as duplicates compare: case, spacing and end punctuation ignored."""
    return " ".join(re.sub(r"[^\w\s`]", " ", text.lower()).split())


def new_fact_id() -> str:
    return uuid.uuid4().hex[:12]


def retain(store: EventStore, text: str, scope: str, provenance: Provenance, category: str = "") -> str:
    """Append a ``FactRetained``; returns the new fact's id. Raises ``FactError``."""
    if provenance.by not in SOURCES:
        raise FactError(f"a fact is retained by one of {', '.join(SOURCES)}, not {provenance.by!r}")
    text, scope, category = check_text(text), check_scope(scope), check_category(category)
    fact_id = new_fact_id()
    payload = FactRetained(fact=text, retained_at=utc_now(), extensions={"kapacitor": {
        "fact_id": fact_id, "scope": scope, "category": category, "provenance": provenance.as_json()}})
    authored.append(store, agent_memory_stream(scope, provenance.user or provenance.by), [to_new_event(payload, event_id("fact", fact_id))])
    return fact_id


def find(conn: ReadDb, fact_id: str) -> Fact:
    """The fact with this id, or with this unique id prefix (at least 4 characters)."""
    fact_id = fact_id.strip()
    if len(fact_id) < 4:
        raise FactError(f"fact id {fact_id!r} is too short (give at least 4 characters)")
    found = rows(conn, "substr(fact_id, 1, ?) = ?", [len(fact_id), fact_id])
    if not found:
        raise FactError(f"no fact {fact_id!r}")
    if len(found) > 1:
        raise FactError(f"fact id {fact_id!r} is ambiguous ({', '.join(f.fact_id for f in found[:5])})")
    return found[0]


COLUMNS = tuple(Fact.__dataclass_fields__)
_SELECTED = ", ".join(f'"{c}"' for c in COLUMNS)  # quoted: "by" and "user" are SQL keywords


def rows(conn: ReadDb, where: str = "1 = 1", params: list[Any] | None = None, order: str = "retained_at DESC") -> list[Fact]:
    """Facts of the read model matching an SQL condition (trusted SQL, bound params)."""
    cursor = conn.execute(f"SELECT {_SELECTED} FROM facts WHERE {where} ORDER BY {order}", params or [])
    found = []
    for row in cursor:
        fact = Fact(*row)
        fact.event_ids = json.loads(row[COLUMNS.index("event_ids")] or "[]")
        found.append(fact)
    return found


def _must_be_active(fact: Fact) -> None:
    if fact.status != "active":
        detail = f" by {fact.superseded_by}" if fact.superseded_by else ""
        raise FactError(f"fact {fact.fact_id} is already {fact.status}{detail}")


def supersede(store: EventStore, conn: ReadDb, fact_id: str, text: str, provenance: Provenance) -> str:
    """Replace a fact with a new one (same scope and category): the edit of a fact.
    Returns the new fact's id."""
    old = find(conn, fact_id)
    _must_be_active(old)
    new_id = retain(store, text, old.scope, provenance, old.category)
    payload = FactSuperseded(fact_id=old.fact_id, superseded_by=new_id, superseded_at=utc_now(),
                             extensions={"kapacitor": {"user": provenance.user}})
    authored.append(store, agent_memory_stream(old.scope, provenance.user or provenance.by), [to_new_event(payload, event_id("superseded", old.fact_id))])
    return new_id


def retire(store: EventStore, conn: ReadDb, fact_id: str, user: str, reason: str = "") -> Fact:
    """Stop recalling a fact. Returns the fact as it was."""
    old = find(conn, fact_id)
    _must_be_active(old)
    payload = FactRetired(fact_id=old.fact_id, retired_at=utc_now(), reason=reason, extensions={"kapacitor": {"user": user}})
    authored.append(store, agent_memory_stream(old.scope, user or "person"), [to_new_event(payload, event_id("retired", old.fact_id))])
    return old


def record_use(store: EventStore, fact_ids: list[str], scope: str, session_id: str = "", via: str = "", user: str = "") -> None:
    """Count one use of each fact (a ``FactsRecalled`` on the recalling user's memory stream)."""
    if not fact_ids:
        return
    payload = FactsRecalled(fact_ids=list(fact_ids), recalled_at=utc_now(), session_id=session_id, via=via)
    authored.append(store, agent_memory_stream(scope, user or "agent"), [to_new_event(payload, str(uuid.uuid4()))])
