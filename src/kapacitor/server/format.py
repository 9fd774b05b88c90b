"""How numbers and times read on the pages: Jinja filters, one place for each."""

from __future__ import annotations

from datetime import datetime


def tokens(n: int | None) -> str:
    """1234 -> 1.2k, 3400000 -> 3.4M."""
    if not n:
        return "0"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def cost(usd: float | None) -> str:
    if usd is None:
        return "—"
    return f"${usd:,.2f}" if usd >= 0.1 else f"${usd:.3f}"


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


def when(stamp: str | None) -> str:
    """An ISO time as 'YYYY-MM-DD HH:MM' (UTC)."""
    return (stamp or "")[:16].replace("T", " ")


def day(stamp: str | None) -> str:
    """An ISO time as 'Nov 25, 17:26' (UTC): short enough for a table column."""
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).strftime("%b %d, %H:%M")


def number(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def shortdir(path: str | None) -> str:
    """A directory with its home shortened: /home/dev/src/widgets -> ~dev/src/widgets."""
    path = path or ""
    for home in ("/home/", "/Users/"):
        if path.startswith(home):
            return "~" + path.removeprefix(home)
    return path


FILTERS = {"shortdir": shortdir, "tokens": tokens, "cost": cost, "duration": duration, "when": when, "day": day, "number": number}
