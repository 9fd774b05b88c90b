"""What a new session is told: the facts of its repository and the team's.

``recall`` picks the active facts of the repository and of the ``org`` scope the
viewer may see, merges duplicates (the same text, ignoring case, spacing and end
punctuation: their uses add up), and orders them most relevant first (the
repository's before the team's), then most used, then newest. ``render`` writes
them as the context Claude Code adds at session start, within ``MAX_CHARS``
characters: what does not fit is left out whole, never cut mid-fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kapacitor.memory import gate
from kapacitor.memory.facts import ORG, normalized, rows
from kapacitor.store.readdb import ReadDb

MAX_CHARS = 2000
"""About 500 tokens: enough for a dozen facts, small beside the session's context."""


@dataclass
class Recalled:
    """One fact as recalled: its text and the ids of the duplicates merged into it."""

    text: str
    scope: str
    category: str
    uses: int
    fact_ids: list[str] = field(default_factory=list)


def recall(conn: ReadDb, viewer: gate.Viewer, repo: str) -> list[Recalled]:
    """Active facts of ``repo`` (``owner/repo``; empty for none) and of the org, best first."""
    scopes = [s for s in (repo, ORG) if s]
    marks = ",".join("?" * len(scopes))
    facts = gate.visible(conn, viewer, rows(conn, f"status = 'active' AND scope IN ({marks})", scopes,
                                            order="retained_at DESC"), lambda f: f.session_id)
    merged: dict[str, Recalled] = {}
    for fact in facts:  # newest first: a merged fact shows its newest wording
        found = merged.get(normalized(fact.text))
        if found is None:
            merged[normalized(fact.text)] = Recalled(fact.text, fact.scope, fact.category, fact.uses, [fact.fact_id])
            continue
        found.uses += fact.uses
        found.fact_ids.append(fact.fact_id)
        if fact.scope == repo:
            found.scope = repo
    return sorted(merged.values(), key=lambda r: (r.scope != repo, -r.uses))  # stable: newest first among equals


def render(repo: str, recalled: list[Recalled], limit: int = MAX_CHARS) -> tuple[str, list[Recalled]]:
    """The context text and the facts that fit in ``limit`` characters."""
    if not recalled:
        return "", []
    head = f"Kapacitor memory: facts earlier sessions kept about {repo or 'this team'} and the team (use them; they may be out of date):"
    lines, used, size = [head], [], len(head)
    for fact in recalled:
        tag = f"[{fact.category}{'' if fact.scope == repo else ', team'}] "
        line = f"- {tag}{fact.text}"
        if size + 1 + len(line) > limit:
            continue
        lines.append(line)
        used.append(fact)
        size += 1 + len(line)
    return ("\n".join(lines), used) if used else ("", [])
