"""The totals of the sessions a filter selects: one aggregation for the overview,
the per-developer and per-repository pages and the totals row above the
session list, so every total equals what the list sums for the same filters.

It sums the ``repositories`` read model's per-session figures
(``repository_sessions``, the list's own table, and ``session_models``) under
``Filters.where``, the list's own condition with the viewer's visibility in it.
Each session counts on the day it started, in the viewer's zone (the day the
list's date filter puts it on). Figures per group (``FIGURES``):

- ``sessions``; ``active_seconds`` (time between events, idle gaps over ten
  minutes left out: ``session_summary.IDLE_SECONDS``);
- ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
  ``cache_creation_input_tokens`` and ``tokens`` (their sum, the list's Tokens);
- ``cost_usd`` (the priced part; ``unpriced_sessions`` have calls of models
  without a price), ``tool_calls``, ``tool_errors`` (failed tool calls) and
  ``files_changed`` (each session's distinct files, summed over sessions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta, tzinfo
from typing import Any

from kapacitor import times
from kapacitor.access.viewer import Viewer
from kapacitor.projections.repositories import TOKEN_KINDS
from kapacitor.server.queries import Filters
from kapacitor.store.readdb import ReadDb

FIGURES = ("sessions", "active_seconds", *TOKEN_KINDS, "tokens", "cost_usd", "unpriced_sessions",
           "tool_calls", "tool_errors", "files_changed")
_SUMS = ", ".join([
    "count(*)", "coalesce(sum(active_seconds), 0)", *(f"coalesce(sum({name}), 0)" for name in TOKEN_KINDS),
    "coalesce(sum(tokens), 0)", "coalesce(sum(cost_usd), 0)", "count(*) - count(cost_usd)",
    "coalesce(sum(tool_calls), 0)", "coalesce(sum(tool_errors), 0)", "coalesce(sum(files_changed), 0)",
])
_FLOATS = {"active_seconds": 3, "cost_usd": 8}
"""The figures that are not counts, and the places they are rounded to (the rows' own)."""
GROUPS = ("day", "user", "repo", "model", "eval")
"""What ``totals`` can break the figures down by (``eval``: mean eval score per day)."""
MAX_DAYS = 731
"""The longest range broken down by day (two years)."""
MODEL_FIGURES = ("sessions", *TOKEN_KINDS, "tokens", "requests", "cost_usd")


def totals(conn: ReadDb, filters: Filters, viewer: Viewer, tz: tzinfo, by: Iterable[str] = ()) -> dict[str, Any]:
    """``totals``: the figures over every session ``filters`` selects that ``viewer``
    may see (dates in ``tz``), and for each group asked for in ``by``:
    ``by_day`` (every day from ``filters.since`` to ``until``, both needed, empty
    days included), ``by_user``, ``by_repo`` (with ``repo_kind``), ``by_model``
    (``MODEL_FIGURES``; ``sessions``: those that called the model) and
    ``evals_by_day`` (per day, the sessions' latest eval scores: ``evals`` and
    ``mean_overall``). Groups are ordered by day, else by sessions (most first)."""
    asked = set(by)
    unknown = asked - set(GROUPS)
    if unknown:
        raise ValueError(f"cannot break totals down by {sorted(unknown)}")
    where, params = filters.where(viewer, conn.like, tz)
    days = days_of(filters) if asked & {"day", "eval"} else []
    day_case, day_params = _day_case(days, tz)
    # One scan, grouped by every breakdown asked for; the groups are rolled up here.
    keyed = [(name, column) for name, column in (("day", day_case), ("user", '"user"'), ("repo", "key")) if name in asked]
    columns = "".join(f"{column}, " for _, column in keyed)
    group = f" GROUP BY {', '.join(str(n + 1) for n in range(len(keyed)))}" if keyed else ""
    rows = conn.execute(f"SELECT {columns}{_SUMS} FROM repository_sessions{where}{group}",
                        [*(day_params if "day" in asked else []), *params])
    total, parts = _figures(None), {name: {} for name, _ in keyed}
    for row in rows:
        figures = _figures(row[len(keyed):])
        _add(total, figures)
        for (name, _), value in zip(keyed, row, strict=False):
            _add(parts[name].setdefault(value, _figures(None)), figures)
    out: dict[str, Any] = {"totals": _rounded(total)}
    if "day" in asked:
        by_index = {int(i): figures for i, figures in parts["day"].items()}
        out["by_day"] = [{"day": day.isoformat(), **_rounded(by_index.get(i, _figures(None)))} for i, day in enumerate(days)]
    for name in ("user", "repo"):
        if name in asked:
            out[f"by_{name}"] = sorted(({name: value, **_rounded(figures)} for value, figures in parts[name].items()),
                                       key=lambda g, n=name: (-g["sessions"], -g["cost_usd"], g[n]))
    if "repo" in asked:
        kinds = _repo_kinds(conn, [r["repo"] for r in out["by_repo"]])
        for r in out["by_repo"]:
            r["repo_kind"] = kinds.get(r["repo"], "directory")
    if "model" in asked:
        out["by_model"] = _by_model(conn, where, params)
    if "eval" in asked and conn.execute("SELECT 1 FROM evals LIMIT 1").fetchone():
        scores = conn.execute(
            f"SELECT d, count(*), avg(score) FROM (SELECT {day_case} AS d, eval_score AS score"
            f" FROM repository_sessions{where}) scored WHERE score IS NOT NULL GROUP BY d",
            [*day_params, *params],
        )
        found = {int(d): (n, float(mean)) for d, n, mean in scores}
        out["evals_by_day"] = [
            {"day": day.isoformat(), "evals": found[i][0], "mean_overall": round(found[i][1], 2)}
            for i, day in enumerate(days) if i in found
        ]
    elif "eval" in asked:
        out["evals_by_day"] = []  # nothing was evaluated: no scan
    return out


def days_of(filters: Filters) -> list[date]:
    """Every day from ``filters.since`` to ``filters.until``; ValueError when either is
    missing or the range is longer than ``MAX_DAYS``."""
    if not (filters.since and filters.until):
        raise ValueError("a breakdown by day needs both since and until")
    first, last = date.fromisoformat(filters.since), date.fromisoformat(filters.until)
    if (last - first).days >= MAX_DAYS:
        raise ValueError(f"a range of at most {MAX_DAYS} days can be broken down by day")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _day_case(days: Sequence[date], tz: tzinfo) -> tuple[str, list[Any]]:
    """SQL numbering a session's start day in ``days`` (0, 1, ...): the rows are
    already limited to the range, so each is below one day's end in ``tz``."""
    if not days:
        return "0", []
    ends = [times.day_start(times.day_after(day.isoformat()), tz) for day in days[:-1]]
    whens = " ".join(f"WHEN started < ? THEN {i}" for i in range(len(ends)))
    return (f"CASE {whens} ELSE {len(days) - 1} END" if ends else "0"), ends


def _figures(row: Sequence[Any] | None) -> dict[str, Any]:
    """A result row of ``_SUMS`` as named figures (PostgreSQL sums come as Decimal)."""
    values = row if row is not None else [0] * len(FIGURES)
    return {name: (float(v) if name in _FLOATS else int(v)) for name, v in zip(FIGURES, values, strict=True)}


def _add(into: dict[str, Any], figures: dict[str, Any]) -> None:
    for name in FIGURES:
        into[name] += figures[name]


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with the sums of fractions rounded as the rows are (``_FLOATS``)."""
    return figures | {name: round(figures[name], places) for name, places in _FLOATS.items()}


def _by_model(conn: ReadDb, where: str, params: list[Any]) -> list[dict[str, Any]]:
    sums = ", ".join(f"coalesce(sum({name}), 0)" for name in TOKEN_KINDS)
    rows = conn.execute(
        f"SELECT model, count(*), {sums}, coalesce(sum(requests), 0), sum(cost_usd) FROM session_models"
        f" WHERE session_id IN (SELECT session_id FROM repository_sessions{where}) GROUP BY model",
        params,
    )
    out = []
    for model, sessions, *numbers, requests, cost in rows:
        kinds = dict(zip(TOKEN_KINDS, map(int, numbers), strict=True))
        out.append({"model": model, "sessions": int(sessions), **kinds, "tokens": sum(kinds.values()),
                    "requests": int(requests), "cost_usd": None if cost is None else round(float(cost), 8)})
    return sorted(out, key=lambda m: (-m["tokens"], m["model"]))


def _repo_kinds(conn: ReadDb, keys: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        out.update(conn.execute(f"SELECT key, kind FROM repositories WHERE key IN ({','.join('?' * len(chunk))})", chunk))
    return out
