"""What the pages mean by their token counts, said once: the tooltips every page
shows beside "in", "out", "cache read", "cache write", "tokens" and "cache hit",
and the one definition of the cache-hit ratio (the stats tab and its JSON use it).

A model call's prompt is split three ways by the API: ``input_tokens`` (read
fresh), ``cache_read_input_tokens`` (served from the prompt cache) and
``cache_creation_input_tokens`` (written to it); ``output_tokens`` is what the
model wrote. "Tokens" alone, on the list, the sidebar, the session header and
the trace, is all four summed over every model, subagents included; a
subagent's own "tokens" (its Agent call in the chat, its trace node, the stats)
are the same four over its own requests, and its time is the span of its own
transcript records (``SessionSummary.subagent_figures``).
"""

from __future__ import annotations

from collections.abc import Mapping

TERMS = {
    "in": "in: prompt tokens the model read fresh (not from the prompt cache)",
    "out": "out: tokens the model wrote (text, tool calls and thinking)",
    "cache_read": "cache read: prompt tokens served from the prompt cache (billed at a fraction of the input price)",
    "cache_write": "cache write: prompt tokens written to the prompt cache for later calls",
    "cache_write_5m": "cache write 5 min: the part of cache write kept in the cache for 5 minutes",
    "cache_write_1h": "cache write 1 h: the part of cache write kept in the cache for an hour (billed higher)",
    "tokens": "tokens: in + out + cache read + cache write, every model, subagents included",
    "cache_hit": "cache hit: cache read / (in + cache read + cache write), the share of the prompt served from the cache",
    "subagent_tokens": "tokens: in + out + cache read + cache write, every model, over the subagent's own requests (as the trace and the stats count them)",
    "subagent_time": "subagent: the subagent's own time, from its first transcript record to its last (as the trace and the stats show it)",
    "agent_call_time": "call: the Agent call's time, from the main agent's call to its result (a background subagent's call returns"
                       " when it is launched; the subagent's own time is on the line below)",
}
"""Each term's tooltip (``terms`` in every template); the words before its colon
are the term's label (``label``)."""

TOKEN_TERMS = {
    "input_tokens": "in",
    "output_tokens": "out",
    "cache_read_input_tokens": "cache_read",
    "cache_creation_input_tokens": "cache_write",
    "ephemeral_5m_input_tokens": "cache_write_5m",
    "ephemeral_1h_input_tokens": "cache_write_1h",
}
"""The term each of the API's token counts (``envelope.TOKEN_FIELDS``) is shown as:
a page never shows the API's own names."""


def label(term: str) -> str:
    """A term's label as the pages write it: ``label("cache_read")`` is ``cache read``."""
    return TERMS[term].split(":", 1)[0]


def cache_hit_ratio(tokens: Mapping[str, int]) -> float | None:
    """cache read / (input + cache read + cache creation): the share of the prompt
    tokens served from the prompt cache, 0.0 to 1.0; None when no prompt token
    was sent. ``tokens`` has the API's usage field names."""
    read = tokens.get("cache_read_input_tokens", 0)
    prompt = tokens.get("input_tokens", 0) + read + tokens.get("cache_creation_input_tokens", 0)
    return read / prompt if prompt else None
