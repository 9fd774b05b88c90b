"""What tokens cost, from the maintained ``genai-prices`` database (never a
hand-written table). A model the database does not know has an unknown cost,
not a zero one."""

from __future__ import annotations

import functools
import warnings
from decimal import Decimal
from importlib.metadata import version
from typing import Any


@functools.cache
def price_source() -> str:
    """The price data's origin and version, shown beside every cost."""
    return f"genai-prices {version('genai-prices')}"


def cost_of(model: str, usage: dict[str, Any], provider: str = "anthropic") -> Decimal | None:
    """The price in USD of one API call's usage (Anthropic field names), or None
    when the model has no price in the database. ``provider`` is the
    genai-prices provider id (``openai`` for an eval judge on that API)."""
    fields = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "ephemeral_1h_input_tokens")
    return _cost(model, *(int(usage.get(name, 0) or 0) for name in fields), provider)


@functools.lru_cache(maxsize=65536)
def _cost(model: str, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int, write_1h: int, provider: str) -> Decimal | None:
    """Memoized: a session's calls are priced again each time its summary is
    written (read models re-price a session on every batch that touches it)."""
    from genai_prices import Usage, calc_price  # heavy import, only when pricing

    priced = Usage(
        input_tokens=input_tokens + cache_read + cache_write,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=write_1h,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return calc_price(priced, model.split("[")[0], provider_id=provider).total_price
    except (LookupError, ValueError):
        return None
