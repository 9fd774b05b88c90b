"""Where a secret rule's matches can start: the literal prefixes of its regex.

A rule whose every match begins with one of a few literal strings (``ghp_``,
``sk-ant-``, ``(?i)(?:cohere|co_api_key)``) is *anchored*: its keywords are
those prefixes, and the redactor runs the regex only at the places the
prefilter found them (``pattern.match(view, position)``) instead of searching
the whole text. Prefixes the regex matches case-sensitively (``SK``, ``API-``)
are kept as written and looked for in the text as it is (``"case_sensitive":
true``): far rarer than their lowercase form in random base64 or prose. Python's ``re`` searches fast only for a
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


def literal_prefixes(regex: str) -> tuple[list[str], bool] | None:
    """The literal prefixes every match of ``regex`` starts with, and whether
    they are case-sensitive (then as written, to be looked for in the text;
    else lowercased, to be looked for in the lowercased text); None when some
    match may start otherwise (or a prefix is too short)."""
    try:
        parsed = _parser.parse(regex, re.ASCII)
    except re.error:
        return None
    state = {"folded": False}
    found, _ = _walk(list(parsed), bool(parsed.state.flags & re.IGNORECASE), state)
    if found == [""] or any(len(p) < MIN_PREFIX for p in found):
        return None
    if state["folded"]:
        return sorted({p.lower() for p in found}), False
    return sorted(set(found)), True


def _walk(items: list, icase: bool, state: dict) -> tuple[list[str], bool]:
    """(prefixes, whether they are the whole of what ``items`` match). Literals,
    small character sets (``gh[pousr]_``), groups, alternatives and short
    repeats of them are followed; anything else ends the prefix."""
    current = [""]
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT):
            continue  # zero width: a boundary, a lookaround
        choices, complete = _element(op, av, icase, state)
        if choices is None or len(current) * len(choices) > MAX_PREFIXES:
            return current, False
        current = [c + x for c in current for x in choices]
        if not complete:
            return current, False
    return current, True


def _element(op: object, av: object, icase: bool, state: dict) -> tuple[list[str] | None, bool]:
    """The strings one element can start with, and whether they are all it matches."""
    single = _choices(op, av, icase, state)
    if single is not None:
        return single, True
    if op is C.SUBPATTERN:
        _, add, remove, body = av  # type: ignore[misc]
        inner_icase = (icase or bool(add & re.IGNORECASE)) and not remove & re.IGNORECASE
        return _walk(list(body), inner_icase, state)
    if op is C.BRANCH:
        walked = [_walk(list(branch), icase, state) for branch in av[1]]  # type: ignore[index]
        if any(w == [""] and not complete for w, complete in walked):
            return None, False
        return [p for w, _ in walked for p in w], all(complete for _, complete in walked)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        low, high, body = av  # type: ignore[misc]
        inner, complete = _walk(list(body), icase, state)
        if not complete or high > 2 or low > high:
            return None, False
        options = [""] if low == 0 else []
        for count in range(max(low, 1), high + 1):
            options += inner if count == 1 else [a + b for a in inner for b in inner]
        return sorted(set(options)), True
    return None, False


def _choices(op: object, av: object, icase: bool, state: dict) -> list[str] | None:
    """The characters one element can match, when it is a literal or a small set."""
    if op is C.LITERAL:
        chars = {chr(av)}  # type: ignore[arg-type]
    elif op is C.IN:
        chars = set()
        for kind, value in av:  # type: ignore[union-attr]
            if kind is C.LITERAL:
                chars.add(chr(value))
            elif kind is C.RANGE and value[1] - value[0] < MAX_SET:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            else:
                return None
    else:
        return None
    if icase and any(c.isalpha() for c in chars):
        state["folded"] = True
        chars = {c.lower() for c in chars}
    return sorted(chars) if len(chars) <= MAX_SET else None
