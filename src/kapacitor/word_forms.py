"""Words and their forms, as full-text search sees them on every backend.

Search matches word forms: "rate limit" finds "rate limiting", "test failed"
finds "tests failing". Each word of a text is cut to its stem by the Snowball
English stemmer (Porter2, through PyStemmer) here, in Python, for both the
SQLite and the PostgreSQL index and for the query, so both backends index the
very same stems and answer the same (FTS5's ``porter`` tokenizer and
PostgreSQL's ``english`` configuration are different stemmers, and ``english``
also drops stop words).

A word is a run of letters and digits (FTS5's ``unicode61`` tokenizer splits
alike: ``foo_bar``, ``src/app.py`` and ``x.y`` are several words each),
lowercased, with its accents taken off (``café`` is ``cafe``, as ``unicode61``
folds it), cut to ``MAX_WORD`` characters, then stemmed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

import Stemmer

WORD = re.compile(r"[^\W_]+")
"""A word: a run of letters and digits (``unicode61``'s token characters)."""

MAX_WORD = 500
"""Longer words (hashes, base64 runs) are cut here: PostgreSQL refuses a
``tsvector`` lexeme over 2,047 bytes, and 500 characters are at most 2,000."""

_stemmer = Stemmer.Stemmer("english")


def spans(text: str) -> Iterator[re.Match[str]]:
    """Each word of ``text`` with its place (``start()``, ``end()``)."""
    return WORD.finditer(text)


@lru_cache(maxsize=65_536)  # a store's common words stay in it
def form(word: str) -> str:
    """The indexed form of one word: folded (lowercase, no accents) and stemmed."""
    folded = word[:MAX_WORD].lower()
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFD", folded)
        folded = unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))
    return _stemmer.stemWord(folded)


def forms(text: str) -> list[str]:
    """The forms of the words of ``text``, in order (a phrase matches a run of them)."""
    return [form(w) for w in WORD.findall(text)]


TSVECTOR_MAX_POSITION = 16383
"""PostgreSQL keeps word positions up to 16,383 (later ones are counted there)."""


def tsvector(found: list[str]) -> str:
    """``found`` (``forms(text)``) as a PostgreSQL ``tsvector`` literal: each form
    once with its positions (1-based). Forms are letters and digits only, so they
    need no escaping."""
    at: dict[str, list[int]] = {}
    for position, word in enumerate(found, 1):
        at.setdefault(word, []).append(min(position, TSVECTOR_MAX_POSITION))
    return " ".join(f"'{word}':{','.join(map(str, dict.fromkeys(places)))}" for word, places in at.items())
