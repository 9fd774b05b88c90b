"""Keyset (cursor) paging of the session list.

A page is the sessions after (or before) one session in the list's order, not
the sessions left after skipping N: the database seeks in the sort's index
(``repositories.sort_index``) to the cursor's place instead of reading and
dropping every session before it, so a page deep in 100,000 sessions costs
about what the first does; and sessions that arrive or change between two
reads never make one of those present at the first read show twice or not at all
(an offset moves under them).

The order (``repositories.sort_columns``) is: for a key that can have no value,
``(key IS NULL)`` first (no value last either way), then the key, then
``started`` newest first, then ``session_id``, so every session has one place.
A cursor holds those columns' values for one session. The sessions after it
are, closest first, those equal to it in every column but the last and beyond
it in the last, then those equal in all but the last two and beyond it in the
one before, and so on to the first column: each part is one query that seeks
in the index and reads it in order, and the parts are read until a page is full.

The cursor in a URL (``?after=``, ``?before=``) is opaque: URL-safe base64 of
the JSON ``[sort, position, *values]``. ``position`` is where the session stood
in the list when the cursor was made (0: the first); it only numbers the page's
rows ("51–100 of 1,234"), so it is a hint when sessions arrived since.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kapacitor.projections.repositories import NULLABLE_SORTS, SORTS, sort_columns

_TEXT_KEYS = ("title", "repo", "user", "started")


@dataclass(frozen=True)
class Cursor:
    """One session's place in the list sorted by ``sort`` (``Filters.sort``):
    ``values`` of its ``sort_columns`` (the key's value None: it has none), and
    ``position``, how many sessions came before it when the cursor was made."""

    sort: str
    position: int
    values: tuple[Any, ...]

    def text(self) -> str:
        """The opaque form a URL carries (``?after=``, JSON ``next``)."""
        data = json.dumps([self.sort, self.position, *self.values], separators=(",", ":"), allow_nan=False)
        return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode()


def sorting(sort: str) -> tuple[str, bool]:
    """(key of ``SORTS``, descending) of a ``Filters.sort``; "" is newest first."""
    return (sort.lstrip("-") or "started"), sort.startswith("-") or not sort


def parse(text: str) -> Cursor:
    """The cursor ``text`` (``Cursor.text``) holds; ValueError saying what is wrong
    with it (a cursor is only ever made here, so a bad one was edited or cut short)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), parse_constant=_refuse)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        data = None
    if not (isinstance(data, list) and len(data) >= 2 and isinstance(data[0], str) and _whole(data[1]) and data[1] >= 0):
        raise ValueError("not a cursor this server made (a Next or Previous link's after= or before=, or the JSON's next or prev)")
    sort, position, values = data[0], data[1], tuple(data[2:])
    key = sorting(sort)[0]
    if key not in SORTS:
        raise ValueError(f"a cursor for an unknown sort {sort!r}")
    if len(values) != len(sort_columns(key, True)) or not all(isinstance(v, str) for v in values[-2:]):
        raise ValueError("a cursor cut short or edited")
    first = values[0]
    if key in _TEXT_KEYS:
        good = isinstance(first, str)
    else:
        good = (first is None and key in NULLABLE_SORTS) or isinstance(first, float) or (_whole(first) and abs(first) < 1 << 63)
    if not good:
        raise ValueError("a cursor cut short or edited")
    return Cursor(sort, position, values)


def _refuse(name: str) -> None:
    raise ValueError(name)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parts(
    sort: str, values: Sequence[Any] | None, backwards: bool, binary: str = "", dialect: str = "sqlite"
) -> list[tuple[str, list[Any], str]]:
    """The queries, in turn, reading the list sorted by ``sort`` after the session
    whose ``sort_columns`` are ``values`` (``backwards``: before it, nearest
    first): each an SQL condition, its parameters and its ORDER BY. On SQLite the
    ORDER BY leaves out the columns the condition holds equal (it sorts afresh
    on an expression's term held equal); PostgreSQL's planner needs the whole
    index order to walk it (it does not see ``cost_usd IS NOT NULL`` as holding
    ``(cost_usd IS NULL)`` equal). Read in turn, each in its
    order, they give the sessions in order. ``values`` None: from the start
    (backwards: from the end), one query with no condition (""). ``binary``,
    ``dialect``: the read-model database's (``ReadDb``)."""
    key, descending = sorting(sort)
    columns = sort_columns(key, descending, binary)
    if key in NULLABLE_SORTS:  # (key IS NULL) first, ascending: no value last either way
        flag = f"({columns[0][0]} IS NULL)"
        columns = [(flag, False), *columns]
        values = None if values is None else [values[0] is None, *values]
    terms = [(expr, desc != backwards) for expr, desc in columns]
    if values is None:
        return [("", [], _order(terms))]
    out = []
    for n in range(len(terms) - 1, -1, -1):  # the last column beyond the cursor's, equal before it; then one column fewer
        clauses: list[str] = []
        params: list[Any] = []
        for (expr, _), value in zip(terms[:n], values[:n], strict=True):
            clauses.append(_equal(expr, value, dialect))
            params += [] if value is None or isinstance(value, bool) else [value]
        expr, desc = terms[n]
        value = values[n]
        held = n
        if isinstance(value, bool):  # sessions without a value come after those with one
            if value != desc:  # nothing is beyond: past the no-value sessions, or back before the valued ones
                continue
            clauses += [_equal(expr, not desc, dialect)] + ([_equal(terms[1][0], None, dialect)] if not desc else [])
            held += 2 if not desc else 1  # the no-value sessions: the key's column is NULL in all
        elif value is None:
            continue  # among sessions without a value every one is equal in this column
        else:
            clauses.append(f"{expr} {'<' if desc else '>'} ?")
            params.append(value)
        out.append((" AND ".join(clauses), params, _order(terms[held:] if dialect == "sqlite" else terms)))
    return out


def _equal(expr: str, value: Any, dialect: str) -> str:
    """``expr`` held at ``value`` (True/False: the no-value flag, written so that the
    index's first column, ``(key IS NULL)``, is seen held: ``= FALSE`` on SQLite;
    ``IS FALSE`` on PostgreSQL, whose planner turns ``= FALSE`` into ``key IS NOT
    NULL``, which it cannot seek on; None: the key's column, NULL).
    SQLite's value is ``(SELECT ?)``: given ``cost_usd = ?`` it would rewrite the
    flag ``(cost_usd IS NULL)`` to ``(? IS NULL)`` (constant propagation), which no
    longer matches the index, and scan it whole."""
    if isinstance(value, bool):
        return f"{expr} {'=' if dialect == 'sqlite' else 'IS'} {str(value).upper()}"
    return f"{expr} IS NULL" if value is None else f"{expr} = {'(SELECT ?)' if dialect == 'sqlite' else '?'}"


def _order(terms: Sequence[tuple[str, bool]]) -> str:
    return ", ".join(f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in terms)
