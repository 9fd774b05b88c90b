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


def cost_of(model: str, usage: dict[str, Any]) -> Decimal | None:
    """The price in USD of one API call's usage (Anthropic field names), or None
    when the model has no price in the database."""
    from genai_prices import Usage, calc_price  # heavy import, only when pricing

    cache_read = usage.get("cache_read_input_tokens", 0)
    cache_write = usage.get("cache_creation_input_tokens", 0)
    priced = Usage(
        input_tokens=usage.get("input_tokens", 0) + cache_read + cache_write,
        output_tokens=usage.get("output_tokens", 0),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=usage.get("ephemeral_1h_input_tokens", 0),
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return calc_price(priced, model.split("[")[0], provider_id="anthropic").total_price
    except (LookupError, ValueError):
        return None
