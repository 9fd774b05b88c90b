"""One form for a time in JSON output: ISO 8601 with the offset of a zone, to the
millisecond (``2026-07-20T03:08:00.000+00:00``, ``2026-07-19T20:08:00.000-07:00``),
whichever read model or event it came from (the store keeps ``...Z`` strings,
some with microseconds). The JSON API (``server/api_json.py``, zone ``?tz``, else
UTC) and the CLI's ``--json`` (the machine's zone, else ``--tz``) both write
their times through ``zoned``, so a script reads one form from either.

A time is a value under a key of ``TIME_KEYS`` (or ending in ``_at``: ``is_time``)
that reads as a date and a time of day. The transcript's own data (a tool call's
input or output, an event's raw record: ``VERBATIM``) is passed on as recorded.
Stdlib only and small: ``kapacitor sessions --json`` imports it, and writes its
stored rows with ``zoned_text``, which finds the times in JSON text without
decoding it (walking a decoded row cost the command 2.3 times its CPU).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from kapacitor import times

TIME_KEYS = frozenset({"started", "ended", "finished", "timestamp", "last_activity", "last_used"})
"""Keys whose values are times (besides every ``*_at``)."""
VERBATIM = frozenset({"arguments", "structured", "input", "output", "raw", "detail", "content", "result", "usage", "tokens"})
"""Keys whose values are the transcript's data (a tool call's arguments and
structured result, a trace node's details, a raw record), passed on as
recorded, or token counts (no time in them: not walked)."""
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
_NESTED = (dict, list)


def is_time(key: str, value: str) -> bool:
    """Whether ``value``, under ``key``, is a time."""
    return (key in TIME_KEYS or key.endswith("_at")) and _TIME.match(value) is not None


def zoned(value: Any, tz: tzinfo | None) -> Any:
    """``value`` (JSON data) with every time in it as ISO 8601 in ``tz`` (None: the
    machine's local zone, with the offset it had at that time): a new value,
    ``value`` left as it was (it may be a cached read model's)."""
    if isinstance(value, list):
        return [zoned(v, tz) if isinstance(v, _NESTED) else v for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if isinstance(v, str):
            if is_time(k, v):
                v = _iso(v, tz)
        elif isinstance(v, _NESTED) and k not in VERBATIM:
            v = zoned(v, tz)
        out[k] = v
    return out


_STRING_VALUE = re.compile(r'":"(\d{4}-\d\d-\d\dT\d\d:\d\d[^"\\]*)"')
"""A key's string value that starts like a time, in compact JSON text (``orjson``'s:
no space around ``:``). Inside a string every quote is escaped, so ``":"`` is
always the end of a key and the start of its value."""


def zoned_text(text: str, tz: tzinfo | None) -> str:
    """``zoned`` for compact JSON text, without decoding it: each time under a time
    key (``is_time``) rewritten in ``tz``. Unlike ``zoned`` it does not skip the
    ``VERBATIM`` parts, so it is for text whose ``VERBATIM`` parts hold no time
    under a time key: a session's summary row (their token counts and subagent
    results), where the two give the same (``tests/test_json_shapes.py``)."""
    out, done = [], 0
    for found in _STRING_VALUE.finditer(text):
        end_of_key = found.start()
        start_of_key = text.rfind('"', 0, end_of_key)
        if text[start_of_key - 1 : start_of_key] not in ("{", ",") or not is_time(text[start_of_key + 1 : end_of_key], found[1]):
            continue  # a key with an escaped quote in it is no time key
        out += (text[done : found.start(1)], _iso(found[1], tz) or "")
        done = found.end(1)
    return "".join(out) + text[done:] if out else text


def _iso(stamp: str, tz: tzinfo | None) -> str | None:
    """``times.iso``, with shortcuts for the common case, a stored time
    (``2026-07-20T03:08:00.000Z``): asked for in UTC (``?tz=UTC``, ``--tz UTC``
    too), a string operation; in another zone, its offset through that hour
    known already (``_hour_offset``), one addition (a zone's ``astimezone``, the
    machine's local zone's above all, costs several times more)."""
    if len(stamp) != 24 or stamp[-1] != "Z":
        return times.iso(stamp, tz)
    if tz is UTC or getattr(tz, "key", "") == "UTC":
        return stamp[:-1] + "+00:00"
    known = _hour_offset(tz, stamp[:13])
    if known is None:
        return times.iso(stamp, tz)
    try:
        return (datetime.fromisoformat(stamp[:-1]) + known[0]).isoformat(timespec="milliseconds") + known[1]
    except ValueError:
        return times.iso(stamp, tz)


@lru_cache(maxsize=4096)
def _hour_offset(tz: tzinfo | None, hour: str) -> tuple[timedelta, str] | None:
    """``tz``'s offset all through the UTC hour ``hour`` (``2026-03-29T01``) and how
    ISO 8601 writes it (``+02:00``); None when it changes within that hour (a DST
    change) or ``hour`` is not one: each time is then converted on its own."""
    try:
        start = datetime.fromisoformat(hour + ":00:00+00:00")
    except ValueError:
        return None
    first, last = start.astimezone(tz), (start + timedelta(hours=1, microseconds=-1)).astimezone(tz)
    offset = first.utcoffset()
    if offset is None or offset != last.utcoffset():
        return None
    return offset, first.isoformat(timespec="milliseconds")[23:]
