"""Where a secret rule's matches can start: the literal prefixes of its regex.

A rule whose every match begins with one of a few literal strings (``ghp_``,
``sk-ant-``, ``(?i)(?:cohere|co_api_key)``) is *anchored*: its keywords are
those prefixes (lowercased), and the redactor runs the regex only at the
places the prefilter found them (``pattern.match(view, position)``) instead of
searching the whole text. Python's ``re`` searches fast only for a
case-sensitive literal start; ``\\b``, ``(?i)`` or a lookbehind in front make it
try every position, which is what anchoring avoids.

Used when the rule files are made (``scripts/gitleaks-rules``), for rules the
config file adds, and by the tests that check every rule's ``anchor`` flag.
Not used by the hook: ``re._parser`` costs as much as compiling.
"""

from __future__ import annotations

import re
from re import _constants as C  # noqa: N812
from re import _parser

MIN_PREFIX = 2
"""Shorter prefixes would make a rule run at too many places."""
MAX_PREFIXES = 16
MAX_SET = 6
"""A character set of at most this many characters is expanded (``gh[pousr]_``)."""


def literal_prefixes(regex: str) -> list[str] | None:
    """The lowercased literal prefixes every match of ``regex`` starts with,
    or None when some match may start otherwise (or a prefix is too short)."""
    try:
        parsed = _parser.parse(regex, re.ASCII)
    except re.error:
        return None
    found = _prefixes(list(parsed))
    if not found or any(len(p) < MIN_PREFIX for p in found):
        return None
    return sorted(set(found))


def _prefixes(items: list) -> list[str] | None:
    found, _ = _walk(items)
    return found if found != [""] else None


def _walk(items: list) -> tuple[list[str], bool]:
    """(prefixes, whether they are the whole of what ``items`` match). Literals,
    small character sets (``gh[pousr]_``), groups, alternatives and short
    repeats of them are followed; anything else ends the prefix."""
    current = [""]
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # zero width: a boundary, a lookaround
        choices, complete = _element(op, av)
        if choices is None or len(current) * len(choices) > MAX_PREFIXES:
            return current, False
        current = [c + x for c in current for x in choices]
        if not complete:
            return current, False
    return current, True


def _element(op: object, av: object) -> tuple[list[str] | None, bool]:
    """The strings one element can start with, and whether they are all it matches."""
    single = _choices(op, av)
    if single is not None:
        return single, True
    if op is C.SUBPATTERN:
        return _walk(list(av[-1]))  # type: ignore[index]
    if op is C.BRANCH:
        walked = [_walk(list(branch)) for branch in av[1]]  # type: ignore[index]
        if any(w == [""] and not complete for w, complete in walked):
            return None, False
        return [p for w, _ in walked for p in w], all(complete for _, complete in walked)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        low, high, body = av  # type: ignore[misc]
        inner, complete = _walk(list(body))
        if not complete or high > 2 or low > high:
            return None, False
        options = [""] if low == 0 else []
        for count in range(max(low, 1), high + 1):
            options += [p * count for p in inner] if count == 1 else [a + b for a in inner for b in inner]
        return sorted(set(options)), True
    return None, False


def _choices(op: object, av: object) -> list[str] | None:
    """The strings one element can match, when it is a literal or a small set."""
    if op is C.LITERAL:
        return [chr(av).lower()]  # type: ignore[arg-type]
    if op is C.IN:
        chars: set[str] = set()
        for kind, value in av:  # type: ignore[union-attr]
            if kind is C.LITERAL:
                chars.add(chr(value).lower())
            elif kind is C.RANGE and value[1] - value[0] < MAX_SET:
                chars.update(chr(c).lower() for c in range(value[0], value[1] + 1))
            else:
                return None
        return sorted(chars) if len(chars) <= MAX_SET else None
    return None
