"""Which of many keywords occur in a long text, with the standard library only.

The redactor's prefilter for the hook and the follower on a big batch (a 30 MB
tool output), where looking for each of the ~420 keywords with ``in`` would
scan the text ~420 times. Here the keywords are grouped by their first
character into a few regular expressions, each an alternation shaped as a trie
(``gh(?:o_|p_|...)``): Python's ``re`` then skips quickly to the places where a
group's first character occurs (a literal prefix, or a small character set),
and each place costs one trie walk in C. A character common in ordinary text
(``e``, ``t``, ``s``, ...) gets a scan of its own, so its many places do not
pay for every other group's alternatives; the rarer ones share one scan.
About 20 scans in all instead of 420: measured in ``docs/benchmarks.md``.

The import and the server use the Aho-Corasick automaton instead
(``ahocorasick_rs``, one scan); this module keeps the hook stdlib-only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

COMMON = " etaoinsrlcdhupmf"
"""First characters frequent enough in text (lowercased) to get a scan of
their own; keywords starting with any other character share one scan."""


def _trie(words: Iterable[str]) -> str:
    """One regex matching any of ``words`` (non-empty), as a trie of literals."""
    root: dict = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if "" in node:  # a keyword ends here: presence needs nothing longer
            return ""
        alternatives = [re.escape(ch) + build(child) for ch, child in sorted(node.items())]
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    return build(root)


class KeywordScan:
    """Finds which ``keywords`` (lowercase literals) occur in a lowercased text.
    Compiled once (~20 ms for the package's rules): for long texts only."""

    __slots__ = ("_starting", "_scans")

    def __init__(self, keywords: Iterable[str]):
        self._starting: dict[str, list[str]] = {}
        for word in dict.fromkeys(keywords):
            if word:
                self._starting.setdefault(word[0], []).append(word)
        groups: dict[str, list[str]] = {}
        for first, words in self._starting.items():
            groups.setdefault(first if first in COMMON else "", []).extend(words)
        self._scans = [re.compile(_trie(words)) for words in groups.values()]

    def present(self, low: str) -> set[str]:
        """The keywords that occur in ``low``. Each scan stops at a place where
        some keyword of its group starts; every keyword starting there is
        checked, and the scan goes on from the next character (so keywords
        that overlap are all found)."""
        found: set[str] = set()
        starting = self._starting
        for scan in self._scans:
            match = scan.search(low)
            while match is not None:
                at = match.start()
                for word in starting[low[at]]:
                    if word not in found and low.startswith(word, at):
                        found.add(word)
                match = scan.search(low, at + 1)
        return found
