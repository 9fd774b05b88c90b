"""Times in a zone, stated: the one place that turns a stored time into what a
person reads, and a day in their zone into the span of stored times it covers.

Stored times are the transcript's ISO 8601 UTC strings (``...T09:00:01.000Z``).
Pages use the viewer's zone, the JSON API the ``tz`` it is given (else UTC),
the CLI the machine's local zone; each shows times with their zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone ``name`` (``Area/City``, or ``UTC``), None when there is no such zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # here: the CLI in the local zone needs none (~5 ms)

    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse(stamp: str | None) -> datetime | None:
    """A stored time as an aware datetime, None when it is missing or malformed."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from stored time ``start`` to ``end``, None when either is missing or
    malformed: every duration shown (a session's, a trace node's, a tool call's)."""
    first, last = parse(start), parse(end)
    return None if first is None or last is None else (last - first).total_seconds()


def iso(stamp: str | None, tz: tzinfo) -> str | None:
    """ISO 8601 in ``tz`` with its offset (``2026-07-19T20:08:00.000-07:00``)."""
    moment = parse(stamp)
    if moment is None:
        return stamp or None
    return moment.astimezone(tz).isoformat(timespec="milliseconds")


def shown(stamp: str | None, tz: tzinfo | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time for people, in ``tz`` and saying which (``2026-07-19 20:08 PDT``);
    ``tz`` None is the machine's local zone (with the offset it had then)."""
    moment = parse(stamp)
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return f"{local.strftime(fmt)} {local.tzname() or ''}".rstrip()


def precise(stamp: str | None, tz: tzinfo) -> str:
    """A time to the millisecond, in ``tz`` and saying which
    (``2026-07-19 20:08:01.250 PDT``): a trace node's start and end."""
    moment = parse(stamp)
    if moment is None:
        return stamp or ""
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d} {local.tzname() or ''}".rstrip()


def calendar_day(text: str) -> str:
    """``text`` when it is a real ``YYYY-MM-DD`` day (or empty: no day given);
    ValueError saying why otherwise (``2026-02-30``, ``2026-13-45``, ``garbage``).
    Every day a route or command takes passes here first, so what follows
    (``day_start``, ranges by day) never meets an impossible date."""
    if not text:
        return text
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"{text!r} is not a day: YYYY-MM-DD, please")
    try:
        date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a calendar day ({exc})") from None
    return text


_DURATION = re.compile(r"(\d+)\s*([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def since_start(text: str, tz: tzinfo | None, now: datetime | None = None) -> str:
    """Where "since ``text``" begins, as a stored-time string (UTC,
    ``YYYY-MM-DDTHH:MM:SS``: stored times from then on sort at or above it).
    ``text`` is a day (``2026-11-22``: its start in ``tz``, None the machine's
    local zone) or a duration counted back from ``now`` (``12h``, ``7d``, ``2w``).
    ValueError naming both forms otherwise (``yesterday``, ``7``, ``garbage``),
    or saying why a day-shaped ``text`` is not a calendar day (``2026-02-30``).
    The one parser of ``since``: ``kapacitor search/eval --since``, ``/search``,
    ``/api/search`` and the MCP ``search_sessions`` tool."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found:
        try:
            start = (now or datetime.now(UTC)) - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
        except OverflowError:
            raise ValueError(f"{text!r} reaches back before the year 1") from None
        return start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{text!r} is neither a day (YYYY-MM-DD) nor a duration back from now (12h, 7d, 2w)")
    return day_start(calendar_day(text), tz)


def since_text(text: str) -> str:
    """``text`` when ``since_start`` takes it (or it is empty), else its
    ValueError: a route's parameter check, before the route knows its zone."""
    if text:
        since_start(text, UTC)
    return text


def day_start(day: str, tz: tzinfo | None) -> str:
    """The stored-time string (UTC) at which ``day`` (``YYYY-MM-DD``) begins in
    ``tz`` (None: the machine's local zone): stored times of that day and later sort at or above it."""
    local = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=tz)
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def day_after(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
