"""How numbers and times read on the pages: Jinja filters, one place for each."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from jinja2 import pass_context

from kapacitor import money, times
from kapacitor.normalize.redact import shortened
from kapacitor.projections.repositories import total_tokens
from kapacitor.server.render.redacted import shown


def tokens(n: int | None) -> str:
    """1234 -> 1.2k, 3400000 -> 3.4M."""
    if not n:
        return "0"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


cost = money.usd


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def seconds(ms: float) -> str:
    """A short span given in milliseconds, to a tenth of a second: 1101 -> '1.1 s',
    587 -> '587 ms'. A tool call's time and a subagent's read so on every tab
    (chat, trace, stats)."""
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"


def span(value: float | None) -> str:
    """``seconds`` for a span given in seconds (a subagent's ``duration_seconds``); '—' when unknown."""
    return "—" if value is None else seconds(value * 1000)


@pass_context
def when(context: Any, stamp: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM PDT', in the viewer's zone (``tz`` in the
    template context, see ``web.viewer_zone``)."""
    return times.shown(stamp, context.get("tz") or UTC)


@pass_context
def day(context: Any, stamp: str | None) -> str:
    """An ISO time as 'Nov 25, 17:26 PST' in the viewer's zone: short enough for a
    table column."""
    return times.shown(stamp, context.get("tz") or UTC, "%b %d, %H:%M")


def isotime(stamp: str | None) -> str:
    """The ``datetime`` attribute of a ``<time>``: ISO 8601 with its offset (UTC)."""
    return times.iso(stamp, UTC) or ""


def number(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def plural(n: int | None, noun: str, many: str = "") -> str:
    """1 -> '1 session', 1234 -> '1,234 sessions' (``many``: an irregular plural)."""
    n = n or 0
    return f"{n:,} {noun if n == 1 else many or noun + 's'}"


def percent(ratio: float | None) -> str:
    """0.873 -> '87.3%'; None -> '—'."""
    return "—" if ratio is None else f"{100 * ratio:.1f}%"


def shortdir(path: str | None) -> str:
    """A directory with its home shortened: /home/dev/src/widgets -> ~dev/src/widgets."""
    path = path or ""
    for home in ("/home/", "/Users/"):
        if path.startswith(home):
            return "~" + path.removeprefix(home)
    return path


FILTERS = {
    "shortdir": shortdir, "tokens": tokens, "cost": cost, "duration": duration, "span": span, "when": when, "day": day,
    "isotime": isotime, "number": number, "plural": plural, "percent": percent,
    "total_tokens": total_tokens, "secrets": shown, "shortened": shortened,
}  # fmt: skip
