"""How an amount of money reads, on the pages and in the CLI: one rule for both."""

from __future__ import annotations


def usd(amount: float | None) -> str:
    """A cost in US dollars: ``None`` (unpriced) -> "—"; from $0.10 up, cents with
    thousands separators ("$1,234.50"); below, a tenth of a cent ("$0.039"), so a
    cheap session does not read as "$0.04" in one place and "$0.039" in another.
    Nothing spent (a session still running, no usage yet) is "$0.00", and a cost
    under a tenth of a cent "<$0.001": never the "$0.000" that reads as a glitch."""
    if amount is None:
        return "—"
    if amount == 0:
        return "$0.00"
    if amount < 0.001:
        return "<$0.001"
    return f"${amount:,.2f}" if round(amount, 3) >= 0.1 else f"${amount:.3f}"
