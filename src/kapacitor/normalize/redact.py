"""Secrets never reach the store: known credential shapes are masked before storage.

Redaction runs on the raw record bytes, before they are decoded and parsed, so
the kept raw record and every field derived from it are masked alike. The
patterns match only ASCII characters that need no JSON escaping, so a masked
line is still valid JSON (and valid UTF-8 where it was).

Each pattern has literal triggers. One Aho-Corasick pass over the line finds
every trigger at once (for all patterns together: an ordinary line costs one
scan, not one per trigger), and only the patterns whose triggers occur run.
"""

from __future__ import annotations

import re

from ahocorasick_rs import BytesAhoCorasick

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
_PATTERNS = {name: re.compile(rx.encode("ascii")) for name, (_, rx) in _RULES.items()}
_TRIGGER_RULES = [(trigger.encode("ascii"), name) for name, (triggers, _) in _RULES.items() for trigger in triggers]
_SCAN = BytesAhoCorasick([trigger for trigger, _ in _TRIGGER_RULES])


def _masker(name: str):  # type: ignore[no-untyped-def]
    label = f"[REDACTED:{name}]".encode("ascii")

    def mask(match: re.Match[bytes]) -> bytes:
        if match.re.groups:
            whole, start = match.group(0), match.start(1) - match.start(0)
            return whole[:start] + label + whole[start + len(match.group(1)) :]
        return label

    return mask


_MASKS = {name: _masker(name) for name in _RULES}


def redact_bytes(data: bytes) -> bytes:
    """Return ``data`` with every recognised secret replaced by ``[REDACTED:<kind>]``."""
    found = _SCAN.find_matches_as_indexes(data, overlapping=True)
    if not found:
        return data
    for name in dict.fromkeys(_TRIGGER_RULES[index][1] for index, _, _ in found):
        data = _PATTERNS[name].sub(_MASKS[name], data)
    return data


def redact(text: str) -> str:
    """``redact_bytes`` for text (lone surrogates pass through unchanged)."""
    return redact_bytes(text.encode("utf-8", "surrogatepass")).decode("utf-8", "surrogatepass")
