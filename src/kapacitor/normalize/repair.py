"""Damaged transcript lines: the complete records hiding inside them.

A crash or a concurrent writer can leave a physical line that is not one JSON
object: NUL bytes where a write was lost (a file system pads the hole), two
records with no newline between them (``...}{...``), or a record cut off and the
next one written straight after it. ``split_line`` finds the complete records
in such a line; whatever cannot be a record (the cut fragment) stays a piece of
its own, for the normalizer to keep as an unknown record.

Only called for a line that does not parse as it is, so whole lines cost nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

_DECODER = json.JSONDecoder()
_MAX_STARTS = 2000
"""How many candidate record starts a fragment search tries before giving up (a
huge damaged line must not cost quadratic time)."""


@dataclass(frozen=True)
class Piece:
    """Part of a damaged line: its text, where it starts (characters into the
    line), the record when it is one (None for a fragment), and what was repaired
    to get it (``""`` when nothing was)."""

    text: str
    start: int
    record: dict | None
    repair: str = ""


def split_line(text: str) -> list[Piece] | None:
    """The pieces of a line that is not one JSON object, or None when no complete
    record can be recovered from it (the caller keeps the line as it is)."""
    pieces: list[Piece] = []
    position, length = 0, len(text)
    while position < length:
        skipped = _skip_padding(text, position)
        if skipped >= length:
            break
        padding = skipped - position
        position = skipped
        found = _record_at(text, position)
        if found is not None:
            record, end = found
            repair = f"{padding} NUL/blank bytes skipped before the record" if "\x00" in text[position - padding : position] else ""
            if pieces and pieces[-1].record is not None and not repair:
                repair = "two records spliced without a newline ('}{'): split"
            pieces.append(Piece(text[position:end], position, record, repair))
            position = end
            continue
        start = _next_record_start(text, position + 1)
        end = length if start is None else start
        pieces.append(Piece(text[position:end], position, None))
        position = end
    if not any(p.record is not None for p in pieces):
        return None
    for index, piece in enumerate(pieces):
        if piece.record is not None and index and pieces[index - 1].record is None and not piece.repair:
            pieces[index] = Piece(piece.text, piece.start, piece.record, "record recovered after a cut-off fragment")
    return pieces


def _skip_padding(text: str, position: int) -> int:
    while position < len(text) and (text[position] == "\x00" or text[position].isspace()):
        position += 1
    return position


def _record_at(text: str, position: int) -> tuple[dict, int] | None:
    """The JSON object starting at ``position`` and where it ends, if one does."""
    if text[position] != "{":
        return None
    try:
        value, end = _DECODER.raw_decode(text, position)
    except ValueError:
        return None
    return (value, end) if isinstance(value, dict) else None


def _next_record_start(text: str, position: int) -> int | None:
    """Where the next run of whole records up to the end of the line starts. A
    ``{`` inside the fragment may open an object nested in the cut record, so a
    start counts only if every piece from there to the end is a whole record."""
    tries = 0
    while tries < _MAX_STARTS:
        start = text.find("{", position)
        if start < 0:
            return None
        if _whole_records_from(text, start):
            return start
        position, tries = start + 1, tries + 1
    return None


def _whole_records_from(text: str, position: int) -> bool:
    while True:
        position = _skip_padding(text, position)
        if position >= len(text):
            return True
        found = _record_at(text, position)
        if found is None:
            return False
        position = found[1]
