"""Secrets never reach the store: known credential shapes are masked before storage.

Redaction runs on the raw record text, before it is parsed, so the kept raw
record and every field derived from it are masked alike. The patterns match only
characters that need no JSON escaping, so a masked line is still valid JSON.

Each pattern has literal triggers; a line runs a pattern only when one of its
triggers occurs (a substring test, far faster than a regex scan), so the cost on
an ordinary line is a handful of ``in`` checks.
"""

from __future__ import annotations

import re

# name: (triggers, pattern). A pattern with a group masks only that group.
_RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "anthropic-key": (("sk-ant-",), r"sk-ant-[A-Za-z0-9_\-]{20,}"),
    "openai-key": (("sk-",), r"\bsk-(?!ant-)(?:proj-|svcacct-)?[A-Za-z0-9_\-]{32,}"),
    "aws-access-key": (("AKIA", "ASIA"), r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "github-token": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})"),
    "gitlab-token": (("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    "slack-token": (("xox",), r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    "google-api-key": (("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}"),
    "stripe-key": (("k_live_",), r"\b[rs]k_live_[0-9A-Za-z]{20,}"),
    "jwt": (("eyJ",), r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
    "private-key": (("PRIVATE KEY-----",), r"-----BEGIN [A-Z ]*PRIVATE KEY-----[^\"]*?-----END [A-Z ]*PRIVATE KEY-----"),
    "bearer-token": (("earer ",), r"[Bb]earer ([A-Za-z0-9_\-\.=]{20,})"),
    "url-password": (("://",), r"://[^/\s:@\"\\]{1,64}:([^/\s@\"\\]{1,128})@"),
}
_PATTERNS = {name: re.compile(rx) for name, (_, rx) in _RULES.items()}
_TRIGGERS = [(trigger, name) for name, (triggers, _) in _RULES.items() for trigger in triggers]


def _masker(name: str):  # type: ignore[no-untyped-def]
    label = f"[REDACTED:{name}]"

    def mask(match: re.Match[str]) -> str:
        if match.re.groups:
            whole, start = match.group(0), match.start(1) - match.start(0)
            return whole[:start] + label + whole[start + len(match.group(1)) :]
        return label

    return mask


_MASKS = {name: _masker(name) for name in _RULES}


def redact(text: str) -> str:
    """Return ``text`` with every recognised secret replaced by ``[REDACTED:<kind>]``."""
    hits = {name for trigger, name in _TRIGGERS if trigger in text}
    for name in hits:
        text = _PATTERNS[name].sub(_MASKS[name], text)
    return text
