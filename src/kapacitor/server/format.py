"""How numbers and times read on the pages: Jinja filters, one place for each."""

from __future__ import annotations

from datetime import UTC, datetime


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


def ago(stamp: str | None) -> str:
    """How long ago, roughly: 'just now', '5 min ago', '3 h ago', '2 d ago'."""
    if not stamp:
        return ""
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = (datetime.now(UTC) - (then if then.tzinfo else then.replace(tzinfo=UTC))).total_seconds()
    if seconds < 90:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def number(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def shortdir(path: str | None) -> str:
    """A directory as its last two parts: /home/dev/src/widgets -> src/widgets."""
    parts = [p for p in (path or "").split("/") if p]
    return "/".join(parts[-2:]) if parts else (path or "")


FILTERS = {"shortdir": shortdir, "tokens": tokens, "cost": cost, "duration": duration, "when": when, "ago": ago, "number": number}
