"""What tokens cost, from the maintained ``genai-prices`` database (never a
hand-written table). A model the database does not know has an unknown cost,
not a zero one."""

from __future__ import annotations

import functools
import os
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from decimal import Decimal


@functools.cache
def price_source() -> str:
    """The price data's origin and version, shown beside every cost."""
    return f"genai-prices {_installed_version('genai_prices')}"


def _installed_version(package: str) -> str:
    """An installed package's version, from its ``<name>-<version>.dist-info``
    beside it: every ``sessions --json`` asks, and ``importlib.metadata`` (with
    the email parser it loads) costs more than the rest of that command's reading.
    Falls back to ``importlib.metadata`` for other kinds of installs."""
    from importlib.util import find_spec

    spec = find_spec(package)
    if spec is not None and spec.origin:
        site = os.path.dirname(os.path.dirname(spec.origin))
        prefix = package + "-"
        found = [n for n in os.listdir(site) if n.startswith(prefix) and n.endswith(".dist-info")]
        if len(found) == 1:
            return found[0][len(prefix) : -len(".dist-info")]
    from importlib.metadata import version

    return version(package)


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
