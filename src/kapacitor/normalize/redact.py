"""Secrets never reach the store: known credential shapes are masked before storage.

Redaction runs on the raw record text, before it is parsed, so the kept raw
record and every field derived from it are masked alike. The patterns match only
characters that need no JSON escaping, so a masked line is still valid JSON.
"""

from __future__ import annotations

import re

_PATTERNS: dict[str, str] = {
    "anthropic-key": r"sk-ant-[A-Za-z0-9_\-]{20,}",
    "openai-key": r"sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{32,}",
    "aws-access-key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "github-token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})",
    "gitlab-token": r"\bglpat-[A-Za-z0-9_\-]{20,}",
    "slack-token": r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",
    "google-api-key": r"\bAIza[0-9A-Za-z_\-]{35}",
    "stripe-key": r"\b[rs]k_live_[0-9A-Za-z]{20,}",
    "jwt": r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
    "private-key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----[^\"]*?-----END [A-Z ]*PRIVATE KEY-----",
    "bearer-token": r"(?<=[Bb]earer )[A-Za-z0-9_\-\.=]{20,}",
    "url-password": r"(?<=://)[^/\s:@\"\\]{1,64}:[^/\s@\"\\]{1,128}(?=@)",
}

_SECRET = re.compile("|".join(f"(?P<{name.replace('-', '_')}>{rx})" for name, rx in _PATTERNS.items()))


def _mask(match: re.Match[str]) -> str:
    return f"[REDACTED:{match.lastgroup.replace('_', '-') if match.lastgroup else 'secret'}]"


def redact(text: str) -> str:
    """Return ``text`` with every recognised secret replaced by ``[REDACTED:<kind>]``."""
    return _SECRET.sub(_mask, text)
