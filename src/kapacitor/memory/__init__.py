"""Shared memory and agent-facing tools.

Facts (``facts``) are events on ``AgentMemory-{scope}-{user}`` streams, projected
into the ``facts`` read model (``projections/facts.py``); ``recall`` picks what a
new session is told at its start; ``search`` is full-text search over sessions
(``projections/search_index.py``); ``knowledge`` answers what a session planned,
did and broke (recap, errors, plan check); ``prs`` links pull requests to
sessions through the ``gh`` CLI; ``mcp_server`` offers all of it to agents.
Every read goes through ``gate``, the one place that decides who may see what.
"""
