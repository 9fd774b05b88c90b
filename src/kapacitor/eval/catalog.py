"""The question catalog: data (``catalog.toml`` in the package), merged with a
team's own file, versioned by a hash of its content.

A team file has the same shape as ``catalog.toml``: ``[[categories]]`` and
``[[questions]]`` tables. An entry whose ``id`` is known replaces the fields it
gives; ``disabled = true`` drops it; an unknown id adds it (a new question must
name its ``category`` and ``question``).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any


class CatalogError(ValueError):
    """A catalog file is unreadable or inconsistent (one line, for the user)."""


@dataclass(frozen=True)
class Category:
    id: str
    title: str


@dataclass(frozen=True)
class Question:
    id: str
    category: str
    question: str
    needs_tools: bool = False


@dataclass(frozen=True)
class Catalog:
    """Categories in display order, questions in catalog order, and ``version``:
    the first 12 hex digits of the SHA-256 of the merged catalog's JSON."""

    categories: tuple[Category, ...]
    questions: tuple[Question, ...]
    version: str

    def question(self, question_id: str) -> Question:
        return next(q for q in self.questions if q.id == question_id)

    def select(self, only: list[str] | None = None, skip: list[str] | None = None) -> list[Question]:
        """The questions named (by id or category) in ``only`` (all when empty),
        minus those named in ``skip``. An unknown name is a ``CatalogError``."""
        known = {q.id for q in self.questions} | {c.id for c in self.categories}
        for name in (only or []) + (skip or []):
            if name not in known:
                raise CatalogError(f"no question or category {name!r} (see --list-questions)")
        chosen = [q for q in self.questions if not only or q.id in only or q.category in only]
        return [q for q in chosen if not skip or (q.id not in skip and q.category not in skip)]


def load(path: Path | None = None) -> Catalog:
    """The package catalog, merged with the team file at ``path`` if given."""
    base = tomllib.loads(files("kapacitor.eval").joinpath("catalog.toml").read_text())
    if path is not None:
        try:
            team = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc}") from None
        for key in ("categories", "questions"):
            base[key] = _merged(base.get(key, []), team.get(key, []), key)
    return _built(base)


def _merged(base: list[dict[str, Any]], team: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    out = {entry["id"]: dict(entry) for entry in base}
    for entry in team:
        if not isinstance(entry, dict) or not entry.get("id"):
            raise CatalogError(f"every entry of {what} needs an id")
        if entry.get("disabled"):
            out.pop(entry["id"], None)
            continue
        out[entry["id"]] = out.get(entry["id"], {}) | {k: v for k, v in entry.items() if k != "disabled"}
    return list(out.values())


def _built(data: dict[str, Any]) -> Catalog:
    try:
        categories = tuple(Category(str(c["id"]), str(c.get("title") or c["id"])) for c in data["categories"])
        questions = tuple(
            Question(str(q["id"]), str(q["category"]), str(q["question"]), bool(q.get("needs_tools", False)))
            for q in data["questions"]
        )
    except KeyError as exc:
        raise CatalogError(f"catalog entry without {exc.args[0]!r}") from None
    names = {c.id for c in categories}
    for q in questions:
        if q.category not in names:
            raise CatalogError(f"question {q.id!r} names an unknown category {q.category!r}")
    used = {q.category for q in questions}
    categories = tuple(c for c in categories if c.id in used)
    content = json.dumps([[asdict(c) for c in categories], [asdict(q) for q in questions]], sort_keys=True)
    return Catalog(categories, questions, hashlib.sha256(content.encode()).hexdigest()[:12])
