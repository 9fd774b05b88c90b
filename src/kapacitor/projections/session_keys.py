"""The keys every JSON shape of a session shares beside its summary's own
(docs/json-api.md): the timeline's grouping (``repo``, ``repo_kind``) and one
token total (``tokens_total``). A session's row (``SessionSummary.as_json``:
``kapacitor sessions --json``, ``/sessions/{id}.json``) ends with them, and the
``repositories`` read model groups by ``group_of``."""

from __future__ import annotations

from typing import Any

TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
"""The token fields a session's ``tokens`` sums (cache write split by lifetime is not added again)."""


def group_of(row: dict[str, Any]) -> tuple[str, str]:
    """(key, kind) of a session row: ``owner/repo`` and ``github``, else its cwd and
    ``directory``."""
    if row.get("repository"):
        return row["repository"], "github"
    return row.get("cwd") or "(unknown directory)", "directory"


def total_tokens(tokens: dict[str, dict[str, int]]) -> int:
    """Input, output, cache read and cache write tokens over every model."""
    return sum(t.get(name, 0) for t in tokens.values() for name in TOKEN_KINDS)


def shared_keys(row: dict[str, Any]) -> dict[str, Any]:
    """What a session's summary row (``SessionSummary.as_json``) gains in every JSON
    shape: ``repo`` and ``repo_kind`` (``group_of``) and ``tokens_total``
    (``total_tokens`` of its per-model ``tokens``, subagents included)."""
    repo, kind = group_of(row)
    return {"repo": repo, "repo_kind": kind, "tokens_total": total_tokens(row["tokens"])}
