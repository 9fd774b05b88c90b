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
stored rows with ``zoned_at``, which rewrites the times in JSON text without
decoding it, at the places ``time_places`` found when the row was stored
(walking a decoded row cost the command 2.3 times its CPU, finding the times in
the text at each read 1.8 times).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

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
always the end of a key and the start of its value. What it matches of the value
is what ``is_time`` asks of one, so only the key is left to check."""


def time_places(text: str) -> str:
    """Where ``zoned`` would rewrite a time in compact JSON text, found without
    decoding it: the offset of each time under a time key (``is_time``), joined
    by ``,``; an offset is negative when its time is not in a stored time's
    usual form (``2026-07-20T03:08:00.000Z``, which ``zoned_at`` rewrites from
    its hour's text). ``""`` when there is none. Unlike ``zoned`` it does not
    skip the ``VERBATIM`` parts, so it is for text whose ``VERBATIM`` parts hold
    no time under a time key: a session's summary row (their token counts and
    subagent results), where the two agree (``tests/test_json_shapes.py``). The
    ``sessions`` read model keeps them beside each row, so ``kapacitor sessions
    --json`` finds no times at read (the scan cost 11 instructions a byte)."""
    places, rfind = [], text.rfind
    for found in _STRING_VALUE.finditer(text):
        end_of_key = found.start()
        start_of_key = rfind('"', 0, end_of_key)
        if text[start_of_key - 1 : start_of_key] not in ("{", ","):
            continue  # a key with an escaped quote in it is no time key
        key = text[start_of_key + 1 : end_of_key]
        if key in TIME_KEYS or key.endswith("_at"):
            at, stamp = found.start(1), found[1]
            usual = len(stamp) == 24 and stamp[-1] == "Z" and _HOUR.fullmatch(stamp, 0, 13) and _CLOCK.fullmatch(stamp, 13)
            places.append(str(at if usual else -at))
    return ",".join(places)


def zoned_at(rows: Iterable[tuple[str, str]], tz: tzinfo | None, between: str = ",\n", size: int = 200) -> Iterator[str]:
    """Rows of compact JSON text with their times (at their ``time_places``,
    given beside each: ``(places, text)``) written in ``tz`` as ``zoned`` writes
    them, joined by ``between``, ``size`` rows a text (as a JSON array's items
    are written: one text for many rows is a copy and a call less per row). A
    time in the usual form is its UTC hour's local text (``_hour``, worked out
    once per hour of the rows) and its own minutes, seconds and milliseconds;
    any other goes through ``_iso``."""
    hours: dict[str, tuple[str, str] | _Hour | None] = {}  # (local, suffix) for an hour on the hour: most
    minutes: dict[str, str] = {}
    parts: list[str] = []
    count, sep, add, zone_of = 0, "", parts.append, hours.get
    for places, text in rows:
        add(sep)
        sep = between
        if places:
            done = 0
            for at in map(int, places.split(",")):
                if at > 0:
                    key = text[at : at + 13]
                    zone = zone_of(key, False)
                    if zone is False:
                        zone = hours[key] = _hour_text(tz, key)
                    if type(zone) is tuple:
                        parts += (text[done:at], zone[0], text[at + 14 : at + 23], zone[1])
                    elif zone is not None:  # 30 or 45 minutes off the hour: the local text to the second's colon, per minute
                        minute = text[at : at + 16]
                        local = minutes.get(minute) or minutes.setdefault(minute, _shifted(zone, text[at : at + 24])[:16])
                        parts += (text[done:at], local, text[at + 16 : at + 23], zone.suffix)
                    else:
                        parts += (text[done:at], _iso(text[at : at + 24], tz) or "")
                    done = at + 24
                else:
                    end = text.index('"', -at)
                    parts += (text[done:-at], _iso(text[-at:end], tz) or "")
                    done = end
            add(text[done:])
        else:
            add(text)
        count += 1
        if count == size:
            yield "".join(parts)
            parts.clear()
            count, sep = 0, ""
    if parts:
        yield "".join(parts)


def _hour_text(tz: tzinfo | None, hour: str) -> tuple[str, str] | _Hour | None:
    """What ``zoned_at`` puts together a usual time in ``tz`` from, through the UTC
    hour ``hour``: the local text to the minutes' colon and the offset's, when the
    zone is a whole number of hours off; the ``_Hour`` when it is 30 or 45 minutes
    off; None when each time is converted on its own (``_iso``)."""
    found = _hour(tz, hour)
    if found is None or found.shift is None:
        return None
    return found if found.shift else (found.local, found.suffix)


_HOUR = re.compile(r"\d{4}-\d\d-\d\dT\d\d", re.ASCII)
_CLOCK = re.compile(r":[0-5]\d:[0-5]\d\.\d{3}Z", re.ASCII)
"""A stored time's hour (``2026-07-20T03``) and its minutes, seconds and
milliseconds (``:08:00.000Z``), as ``datetime.fromisoformat`` takes them."""


def _iso(stamp: str, tz: tzinfo | None) -> str | None:
    """``times.iso``, with shortcuts for the common case, a stored time
    (``2026-07-20T03:08:00.000Z``): asked for in UTC (``?tz=UTC``, ``--tz UTC``
    too), a string operation; in another zone, the zone's offset through that UTC
    hour worked out once (``_hour``), then the local text put together from the
    hour's local text and the stamp's minutes, seconds and milliseconds (a
    zone's ``astimezone``, the machine's local zone's above all, costs several
    times more, and ``datetime`` arithmetic with ``isoformat`` per time twice
    this)."""
    if len(stamp) != 24 or stamp[-1] != "Z":
        return times.iso(stamp, tz)
    if tz is UTC or getattr(tz, "key", "") == "UTC":
        return stamp[:-1] + "+00:00"
    hour = _hour(tz, stamp[:13])
    if hour is None:
        return times.iso(stamp, tz)
    if hour.shift is not None and _CLOCK.fullmatch(stamp, 13):
        return _shifted(hour, stamp) if hour.shift else hour.local + stamp[14:23] + hour.suffix
    try:
        return (datetime.fromisoformat(stamp[:-1]) + hour.offset).isoformat(timespec="milliseconds") + hour.suffix
    except ValueError:
        return times.iso(stamp, tz)


def _shifted(hour: _Hour, stamp: str) -> str:
    """A stored time in the usual form, in a zone 30 or 45 minutes off the hour
    (``hour.shift``): its minute moved on, into the next local hour past 59."""
    minute = int(stamp[14:16]) + hour.shift
    local = hour.local + f"{minute:02d}" if minute < 60 else hour.next_local + f"{minute - 60:02d}"
    return local + stamp[16:23] + hour.suffix


class _Hour(NamedTuple):
    """A zone through one UTC hour: its ``offset`` and how ISO 8601 writes it
    (``suffix``: ``+05:30``); and, when the offset is whole minutes, the minutes it
    adds to the UTC minute (``shift``, 0 to 59: 0 in most zones), the local time of
    the hour's start to its minutes' colon (``local``: ``2026-07-20T08:``), and
    that of the local hour the minutes run into past 59 (``next_local``)."""

    offset: timedelta
    suffix: str
    shift: int | None
    local: str
    next_local: str


_HOUR_SPAN = timedelta(hours=1, microseconds=-1)


@lru_cache(maxsize=4096)
def _hour(tz: tzinfo | None, hour: str) -> _Hour | None:
    """``tz`` through the UTC hour ``hour`` (``2026-03-29T01``); None when its
    offset changes within that hour (a DST change) or ``hour`` is not one: each
    time is then converted on its own. From its UTC day's offset (``_day``) when
    that is the same all day, as on all but a few days a year; else two
    conversions and some text for the hour (a year's history has thousands of
    hours: the conversions cost ~50 k instructions an hour, ``isoformat`` more)."""
    day = _day(tz, hour[:10]) if _HOUR.fullmatch(hour) else None
    if day is not None:
        local = int(hour[11:13]) * 60 + day.minutes  # the hour's start, in local minutes from the UTC day's start
        date, minutes = divmod(local, 1440)
        shift = minutes % 60
        text = f"{day.dates[date + 1]}T{minutes // 60:02d}:"
        if not shift:
            return _Hour(day.offset, day.suffix, 0, text, "")
        date, minutes = divmod(local - shift + 60, 1440)
        return _Hour(day.offset, day.suffix, shift, text, f"{day.dates[date + 1]}T{minutes // 60:02d}:")
    steady = _steady(tz, hour + ":00:00+00:00", _HOUR_SPAN)
    if steady is None:
        return None
    first, offset = steady
    if offset.seconds % 60 or offset.microseconds or not _HOUR.fullmatch(hour):
        return _Hour(offset, _suffix(offset), None, "", "")  # an offset in seconds (a city's mean time before 1900), an odd stamp
    later = first + timedelta(minutes=60 - first.minute) if first.minute else first
    return _Hour(offset, _suffix(offset), first.minute, _to_minutes(first), _to_minutes(later) if first.minute else "")


class _Day(NamedTuple):
    """A zone through a UTC day whose offset is the same all day, a whole number of
    minutes (``minutes``); the dates before, of and after the day (``dates``:
    local times fall within them, offsets being under 24 hours)."""

    offset: timedelta
    suffix: str
    minutes: int
    dates: tuple[str, str, str]


_DAY_SPAN = timedelta(days=1, microseconds=-1)


@lru_cache(maxsize=1024)
def _day(tz: tzinfo | None, day: str) -> _Day | None:
    """``tz`` through the UTC day ``day`` (``2026-03-29``); None when its offset at
    the day's end is not that at its start (a DST change that day), or is not a
    whole number of minutes. The same offset at both ends is taken as the same
    all day, as ``_hour`` does for an hour: no zone changes its offset and back
    within a day (none in the IANA database, checked by ``tests/test_json_shapes.py``)."""
    steady = _steady(tz, day + "T00:00:00+00:00", _DAY_SPAN)
    if steady is None or steady[1].seconds % 60 or steady[1].microseconds:
        return None
    offset = steady[1]
    dates = tuple((datetime.fromisoformat(day) + timedelta(days=n)).date().isoformat() for n in (-1, 0, 1))
    return _Day(offset, _suffix(offset), (offset.days * 86400 + offset.seconds) // 60, dates)  # type: ignore[arg-type]


def _steady(tz: tzinfo | None, start: str, span: timedelta) -> tuple[datetime, timedelta] | None:
    """The UTC time ``start`` (ISO 8601 text) in ``tz`` and its offset, when the
    offset at ``start + span`` is the same; None when it is not, or ``start``
    is no time."""
    try:
        moment = datetime.fromisoformat(start)
        first, last = moment.astimezone(tz), (moment + span).astimezone(tz)
    except (ValueError, OverflowError):
        return None
    offset = first.utcoffset()
    return None if offset is None or offset != last.utcoffset() else (first, offset)


def _to_minutes(moment: datetime) -> str:
    """``moment`` as ``isoformat`` begins it, up to the colon before its minutes (``2026-07-20T08:``)."""
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"


@lru_cache(maxsize=64)
def _suffix(offset: timedelta) -> str:
    """How ``isoformat`` ends a time ``offset`` from UTC (``+05:30``, ``-07:00``)."""
    return datetime(2000, 1, 1, tzinfo=timezone(offset)).isoformat(timespec="milliseconds")[23:]
