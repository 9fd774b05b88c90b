"""Secrets never leave the machine: one rule set masks them everywhere.

The rules are data (``rules/gitleaks.json``, converted from gitleaks' rule set
by ``scripts/gitleaks-rules``, and ``rules/kapacitor.json``, our own on top),
plus what the client config file adds (``"redaction"`` in ``client.json``:
extra rules, allowlist entries, directories and GitHub repositories where
redaction is off). The same
``Redactor`` serves the hook and the follower (what they send and spool), the
ingest API and the importer (both mask again), ``kapacitor redact`` and
``kapacitor scrub``.

How a text is searched:

- Prefilter: a rule runs only when one of its keywords occurs in the lowercased
  text. The hook and the follower (standard library only) check the keywords
  of a short text by its letter pairs and ``in`` (``Redactor.present``), and
  with a ``KeywordScan`` (16 trie regexes, compiled once) in a text of
  ``SCAN_MIN`` characters or more; the
  importer and the server pass ``accelerate=True`` and find them all in one
  Aho-Corasick pass (``ahocorasick_rs``), so an ordinary line costs one scan.
  That pass also finds ``NOISE_MARKS`` (no keywords: a line holding only
  those is not masked), so a line without them skips looking for them.
  A rule's regex is compiled when first needed: the hook compiles the two or
  three a batch triggers, not all of them.
- Rules match a *view* of the text of the same length in which JSON escapes
  (``\\n``, ``\\u001b``) and ANSI colour codes read as spaces (and ``\\"`` as
  ``" ``, a quote that still delimits a key or a value): a secret at
  the start of a line inside a JSON-escaped tool output, or coloured by a
  terminal, has the boundaries it would have on screen, and no match can run
  across the end of a JSON string. Matches are then cut from the text itself.
- What a match masks is its secret: the rule's ``group``, else the first group
  that matched, else the whole match. A secret is kept when it fails the rule's
  ``entropy`` threshold (Shannon bits per character), matches an allowlist
  regex (the rule's or the global one: placeholders such as ``${VAR}``,
  ``<your-token>``, ``YOUR_..._HERE``, ``xxx``, ``changeme``) or holds a stopword.
- The marker names the kind and keeps a short keyed hash:
  ``[REDACTED aws-secret-access-key #3f9a1c]``, the first 6 hex digits of
  HMAC-SHA256 with this installation's key (``redaction.key`` in the user
  config dir, mode 0600, made on first use), so two mentions of one secret stay
  linkable without revealing it. Markers are never masked again: redacting
  twice gives what redacting once gave (a live batch masked by the client is
  masked again by the server, and must give the events an import gives).

Markers contain no quote or backslash, so a masked JSON line is still valid JSON.
Stdlib only (``ahocorasick_rs`` is imported only with ``accelerate``): the hook
imports this module.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import sys

RULES_DIR = os.path.join(os.path.dirname(__file__), "rules")
RULE_FILES = ("gitleaks.json", "kapacitor.json")
MARKER = r"\[REDACTED ([a-z0-9-]+) #([0-9a-f]{6})\]"
"""A marker in masked text: group 1 the rule id, group 2 the keyed hash."""
# JSON escapes and ANSI colour codes (escaped or raw): blanked in the view.
_NOISE = r"\\u001[bB]\[[0-9;?]*[A-Za-z]|\x1b\[[0-9;?]*[A-Za-z]|\\(?:u[0-9a-fA-F]{4}|.)"
NOISE_MARKS = ("\\u", "\x1b")
"""What sends a text to ``_NOISE``'s pass (``view_of``): the accelerated
engine's automaton finds them with the keywords (blanking only makes spaces
and quotes, so a text that holds neither before holds neither after)."""
_ESCAPES = r"\\[\\ntr/]"
"""Escaped backslashes and the common JSON escapes, read as two spaces: one
pass, left to right, pairs backslashes as JSON does."""
_AFTER_KEY = frozenset(("\"", "'", "]", " ", "\t", ":", "="))
"""What can follow a key's last letter (see ``_KEYED_TAIL``)."""
_AFTER_SHORT_KEY = _AFTER_KEY - {" ", "\t"}
_TRIM = frozenset(" \t\r\n\"'`")
KNOWN_MIN = 8
"""A secret at least this long is masked wherever else the same text holds it
(a password a rule found in ``DB_PASSWORD=`` and typed again in prose, a key
echoed by a tool); a shorter one could be an ordinary word."""
KNOWN_SCANS = 1 << 24
"""Such secrets of one text are looked for again (the first found) while their
scans of it total at most this many characters, and at least 64 of them: each
is one scan, and a 30 MB tool output may hold thousands."""
SCAN_MIN = 1 << 16
"""Characters from which the standard-library engine looks for the keywords
with one ``KeywordScan`` rather than one ``in`` per keyword (~420 scans)."""
_COMPILED: dict[str, re.Pattern[str]] = {}


def _compiled(regex: str, flags: int = 0) -> re.Pattern[str]:
    """Compiled when first needed: the hook pays only for what it uses."""
    pattern = _COMPILED.get(regex)
    if pattern is None:
        pattern = _COMPILED[regex] = re.compile(regex, flags)
    return pattern


def marker_pattern() -> re.Pattern[str]:
    return _compiled(MARKER)


def shortened(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, never inside a marker: one the cut
    would split is kept whole (a title ending ``STRIPE=[REDACTED s`` says less
    than one ending in the marker)."""
    if len(text) <= limit:
        return text
    start = text.rfind("[REDACTED ", max(0, limit - 80), limit + len("[REDACTED ") - 1)  # one that starts before the cut
    if start >= 0:
        whole = marker_pattern().match(text, start)
        if whole is not None and whole.end() > limit:
            return text[: whole.end()]
    return text[:limit]

# Blanks are taken possessively (``*+``): in the view a run of escapes or colour
# codes is a run of spaces, and two greedy runs of blanks side by side would try
# every split of it (a key word before 4,000 colour codes took 13 s).
_KEYED_TAIL = (
    r"(?![A-Za-z0-9])[ \t]*+[\"'\]]{0,3}[ \t]*+(?::=|=>|=|:)[ \t]*+(?:(?P<q>[\"'])[ \t]*+)?"
    r"(?P<value>[^\s\"'`<>,;(){}\[\]\\]+)"
)


class Finding:
    """One secret: the rule that found it and where it is (``start``/``end``: str indices)."""

    __slots__ = ("rule", "start", "end", "secret")

    def __init__(self, rule: str, start: int, end: int, secret: str):
        self.rule, self.start, self.end, self.secret = rule, start, end, secret

    def __repr__(self) -> str:
        return f"Finding({self.rule!r}, {self.start}, {self.end})"


def other_mentions(text: str, found: list[Finding], markers: list[tuple[int, int]],
                   known: dict[str, str] | None = None) -> list[Finding]:
    """``found`` (in order, none overlapping) and every other place ``text``
    holds one of their secrets of ``KNOWN_MIN`` characters or more (or of the
    ``known`` ones: secret -> kind, found elsewhere), as the same kind (so the
    same marker), outside what is already found or masked (``markers``: spans)."""
    if known is None:
        known, most = {}, max(64, KNOWN_SCANS // max(len(text), 1))
        for f in found:
            if len(f.secret) >= KNOWN_MIN and len(known) < most:
                known.setdefault(f.secret, f.rule)
    if not known:
        return found
    import bisect

    taken = sorted([(f.start, f.end) for f in found] + markers)
    starts = [s for s, _ in taken]
    extra: list[Finding] = []
    for at, value in sorted((at, v) for v in known for at in _places_of(text, v)):
        end = at + len(value)
        i = bisect.bisect_right(starts, at)
        if (i and taken[i - 1][1] > at) or (i < len(taken) and taken[i][0] < end) or (extra and extra[-1].end > at):
            continue
        extra.append(Finding(known[value], at, end, value))
    return sorted(found + extra, key=lambda f: f.start) if extra else found


def _places_of(text: str, value: str) -> list[int]:
    out, at = [], text.find(value)
    while at >= 0:
        out.append(at)
        at = text.find(value, at + len(value))
    return out


class Rule:
    """A rule from the data files: ``regex`` (Python ``re``, ASCII), ``keywords``
    (the rule runs only when one occurs: in the lowercased text, or with
    ``case_sensitive`` as written), ``anchor`` (every match starts with a
    keyword: the regex is tried only there, see ``rule_anchors``), ``group`` to mask, ``entropy`` threshold, ``allowlists``
    (each ``regexes``, ``stopwords``, ``target``: secret (default), match or line),
    ``requires``: a part of the regex every match holds (a test checks it is one
    no match can do without), looked for first: ``curl .* -u ...`` tried at each
    ``curl`` of a 100 kB line (escaped newlines read as spaces) would otherwise
    run to the line's end every time."""

    __slots__ = ("id", "regex", "keywords", "place_keys", "anchor", "case_sensitive", "group", "entropy", "allowlists", "requires",
                 "_pattern")

    def __init__(self, spec: dict):
        self.id = str(spec["id"])
        self.regex = str(spec["regex"])
        self.case_sensitive = bool(spec.get("case_sensitive"))
        self.keywords = tuple(str(k) if self.case_sensitive else str(k).lower() for k in spec.get("keywords") or ())
        self.anchor = bool(spec.get("anchor")) and bool(self.keywords)
        self.place_keys = place_keys(spec)
        self.group = spec.get("group")
        self.entropy = float(spec["entropy"]) if spec.get("entropy") else 0.0
        self.allowlists = [_Allow(a) for a in spec.get("allowlists") or ()]
        self.requires = str(spec["requires"]) if spec.get("requires") else None
        self._pattern: re.Pattern[str] | None = None

    @property
    def pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            self._pattern = re.compile(self.regex, re.ASCII)
        return self._pattern

    def find(self, view: str, starts: list[int] | None, keep: _Allow) -> list[Finding]:
        """Matches in ``view``: at ``starts`` only (an anchored rule, ``starts``
        in order), else anywhere."""
        if self.requires is not None:
            if starts is None:
                starts = None if self.required(view, 0) >= 0 else []
            else:  # a start is tried only when the required part occurs after it
                kept, found = [], -1
                for at in starts:
                    if found < at:
                        found = self.required(view, at)
                        if found < 0:
                            break
                    kept.append(at)
                starts = kept
        if starts is None:
            matches = list(self.pattern.finditer(view))
        else:
            match_at, matches = self.pattern.match, []
            for at in starts:
                match = match_at(view, at)
                if match is not None:
                    matches.append(match)
        out = []
        for match in matches:
            group = self.group
            if group is None:
                group = next((i for i in range(1, (match.re.groups or 0) + 1) if match.group(i) is not None), 0)
            start, end = match.span(group)
            secret = view[start:end]
            if start == end or (self.entropy and entropy(secret) < self.entropy):
                continue
            if any(a.allows(secret, match.group(0), view) for a in self.allowlists) or keep.allows(secret, "", ""):
                continue
            out.append(Finding(self.id, start, end, secret))
        return out

    def required(self, view: str, at: int) -> int:
        """Where the first match of ``requires`` at or after ``at`` starts (-1:
        none). One that starts with a character class (``[ \\t\\n\\r](?:-u|--user)``)
        is searched for by the rest, the class checked before each hit: Python's
        ``re`` skips fast only to a literal and tries every place for a class
        (~1 ms per 100 kB line, ten times the search for the rest)."""
        requires = self.requires
        head, _, rest = requires[1:].partition("]") if requires[:1] == "[" else ("", "", "")
        plain_class = head and head[-1] != "\\" and "[" not in head
        if not plain_class or not rest or rest[0] in "*+?{" or _top_level_bar(rest):
            hit = _compiled(requires, re.ASCII).search(view, at)
            return -1 if hit is None else hit.start()
        is_head = _compiled(f"[{head}]", re.ASCII).match
        find_rest = _compiled(rest, re.ASCII).search
        hit = find_rest(view, at + 1)
        while hit is not None:
            if is_head(view, hit.start() - 1):
                return hit.start() - 1
            hit = find_rest(view, hit.start() + 1)
        return -1


def _top_level_bar(regex: str) -> bool:
    """Whether ``regex`` has an alternative outside every group (or may have:
    a character class holding a parenthesis or a bar)."""
    depth, escaped = 0, False
    for ch in regex:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "[":
            return True  # not followed: treated as may
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
    return False


class _Allow:
    """Secrets to keep: any that matches one of ``regexes`` (compiled when first
    needed) or holds a stopword."""

    __slots__ = ("specs", "_regexes", "stopwords", "target")

    def __init__(self, spec: dict):
        self.specs = list(spec.get("regexes") or ())
        self._regexes: list[re.Pattern[str]] | None = None
        self.stopwords = tuple(str(s).lower() for s in spec.get("stopwords") or ())
        self.target = spec.get("target", "secret")

    @property
    def regexes(self) -> list[re.Pattern[str]]:
        if self._regexes is None:
            self._regexes = [re.compile(r, re.ASCII) for r in self.specs]
        return self._regexes

    def allows(self, secret: str, match: str, line: str) -> bool:
        text = {"match": match, "line": line}.get(self.target, secret)
        if any(r.search(text) for r in self.regexes):
            return True
        if self.stopwords:
            low = secret.lower()
            return any(s in low for s in self.stopwords)
        return False


class _Keyed:
    """Values named by their key (``KEY=value``, ``key: value``, ``"key": "value"``):
    found at each occurrence of a key word, so the cost is per occurrence."""

    def __init__(self, spec: dict):
        self.id = spec.get("id", "keyed-secret")
        self.kinds = {word.lower(): kind for kind, words in spec["kinds"].items() for word in words}
        self.keywords = tuple(sorted(self.kinds, key=len, reverse=True))
        self.min_length = int(spec.get("min_length", 4))
        self.code_like = spec.get("code_like")

    @staticmethod
    def after(word: str) -> frozenset[str]:
        """What may follow a key word for it to end a key: a short word
        (``pass``, ``auth``) only without a space (``tests pass = ...`` is prose)."""
        return _AFTER_KEY if len(word) > 4 else _AFTER_SHORT_KEY

    def find(self, view: str, places: dict[str, list[int]], keep: _Allow) -> list[Finding]:
        """``places``: where each key word occurs (lowercase text positions)."""
        out, seen = [], set()
        kinds = self.kinds
        for word in sorted((w for w in places if w in kinds), key=len, reverse=True):  # the longest key word first
            after = self.after(word)
            for at in places[word]:
                end = at + len(word)
                if view[end : end + 1] not in after or end in seen:
                    continue  # `tokens`, `passage`: not a key that ends here
                if len(word) <= 5 and at and view[at - 1].isalpha() and not view[at].isupper():
                    continue  # `bypass`, `mytoken` (but `dbPass`, `accessToken` are keys)
                seen.add(end)
                found = self._value(view, end, word, keep)
                if found:
                    out.append(found)
        return out

    def _value(self, view: str, end: int, word: str, keep: _Allow) -> Finding | None:
        match = _compiled(_KEYED_TAIL, re.ASCII).match(view, end)
        if match is None:
            return None
        value = match.group("value")
        if len(value) < self.min_length or value.isdigit() or keep.allows(value, "", ""):
            return None
        # Code, not configuration: `password = get_password()`, `secret =
        # self.secret`, `key = os.environ[...]` (an unquoted identifier, a
        # dotted name or a call). A bare identifier after `UPPER_KEY=` is a
        # .env value (`DB_PASSWORD=postgres`), not code.
        if not match.group("q") and self.code_like and _compiled(self.code_like).match(value):
            dotted_or_call = "." in value or view[match.end() : match.end() + 1] in ("(", "[")
            dotenv = view[end - len(word) : end].isupper() and "=" in match.group(0)
            if dotted_or_call or not dotenv:
                return None
        if value.lower() == word or value.lower().endswith("_" + word):
            return None
        return Finding(self.kinds[word], match.start("value"), match.end("value"), value)


def _slug(directory: str) -> str:
    """Claude Code's name for a working directory's project folder."""
    return "".join(c if c.isalnum() else "-" for c in directory)


def _project_folder(transcript: str) -> str:
    """The ``projects/<folder>`` a transcript lives in (subagents: two levels up)."""
    parts = transcript.replace(os.sep, "/").split("/")
    if len(parts) >= 4 and parts[-2] == "subagents":
        return parts[-4]
    return parts[-2] if len(parts) >= 2 else ""


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    import math  # only for candidates: the hook rarely needs it

    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def ascii_lower(text: str) -> str:
    """``text`` with A-Z lowercased and nothing else changed: the same length
    (``str.lower`` can lengthen a few letters) and, for non-ASCII text, many
    times faster than ``str.lower``. Keywords are ASCII."""
    if text.isascii():
        return text.lower()
    return text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def view_of(text: str, noise: bool | None = None) -> str:
    """``text`` with JSON escapes and ANSI colour codes blanked, same length.
    ``noise``: False when the text surely holds neither ``\\u`` nor an escape
    character (the Aho-Corasick scan looks for both, ``NOISE_MARKS``), which
    spares looking for them: two passes over a long line."""
    if "\\" in text:
        text = _sections_blanked(text) if len(text) >= SECTIONS_FROM else _escapes_blanked(text)
    if noise is not False and ("\\u" in text or "\x1b" in text):
        text = _compiled(_NOISE, re.DOTALL).sub(lambda m: " " * len(m.group()), text)
    return text


def _escapes_blanked(text: str) -> str:
    """``text`` with escaped backslashes, escaped quotes and the common escapes
    blanked: the view but for the rarer escapes and colour codes."""
    # Escaped backslashes first (left to right, as JSON pairs them), then
    # every escape left is a real one.
    if len(text) >= 4096:  # one pass for both, not one per escape (a short text, the hook's: not worth compiling)
        text = _compiled(_ESCAPES).sub("  ", text)
    else:
        text = text.replace("\\\\", "  ")
        for escape in ("\\n", "\\t", "\\r", "\\/"):
            text = text.replace(escape, "  ")
    return text.replace('\\"', '" ')  # an escaped quote still delimits


SECTIONS_FROM = 1 << 13
"""Characters from which a text is blanked section by section (``_SECTIONS``)."""
SECTION = "\\n\\n#"
"""Where a section of a long text starts: a Markdown heading after a blank
line, as JSON escapes it. Claude Code 2.1.332 records its system prompt and
tool list in many lines, each cut into the same sections whatever comes
before them in the line."""
SECTION_MAX = 1 << 17
"""Characters of the longest section kept."""
SECTIONS_MAX = 1 << 22
"""Characters of blanked sections kept at most (then all are forgotten)."""
_SECTIONS: dict[tuple[int, str, str], tuple[str, str]] = {}
"""Kept sections and their blanked form, by their length and their first and
last ``_SIDE`` characters: a section met again is found by comparing it where
it lies in the line (``str.startswith``), not sliced out and hashed whole."""
_SIDE = 64
_sections_kept = [0]


def _sections_blanked(text: str) -> str:
    """``_escapes_blanked(text)``, a section (``SECTION``) at a time, each
    after a heading blanked once per process (what comes before the first
    heading holds the line's own fields: its ids, its time). Every escape is
    blanked on its own and no escape goes on after the ``n`` a cut follows,
    so blanking the sections and joining them is blanking the text whole."""
    end = text.find(SECTION)
    if end < 0:
        return _escapes_blanked(text)
    parts, start, rest = [], 0, 0  # rest: where the text not yet blanked starts
    while True:
        cut = len(text) if end < 0 else end + 4  # after the blank line
        if start and 1024 <= cut - start <= SECTION_MAX and text.find("\\", start, cut) >= 0:
            key = (cut - start, text[start : start + _SIDE], text[cut - _SIDE : cut])
            kept = _SECTIONS.get(key)
            if kept is None or not text.startswith(kept[0], start):
                section = text[start:cut]
                kept = (section, _escapes_blanked(section))
                if _sections_kept[0] + len(section) > SECTIONS_MAX:
                    _SECTIONS.clear()
                    _sections_kept[0] = 0
                _SECTIONS[key] = kept
                _sections_kept[0] += len(section)
            if rest < start:  # the sections before, not kept: blanked together
                parts.append(_escapes_blanked(text[rest:start]))
            parts.append(kept[1])
            rest = cut
        if end < 0:
            if rest < cut:
                parts.append(_escapes_blanked(text[rest:cut]))
            return "".join(parts)
        start, end = cut, text.find(SECTION, cut)


_REPOSITORY = r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"
"""An ``off`` entry naming a GitHub repository (``owner/repo``), not a directory."""


def off_entries(entries: object) -> tuple[tuple[str, ...], frozenset[str]]:
    """The config's ``off`` list as (directories, absolute; repositories,
    ``owner/repo`` lowercased: GitHub's names ignore case). A directory is
    absolute or starts with ``~``; ``owner/repo`` is a repository."""
    dirs, repositories = [], set()
    for entry in entries if isinstance(entries, list) else ():
        entry = str(entry).strip()
        if _compiled(_REPOSITORY).fullmatch(entry) and not entry.startswith((".", "~")):
            repositories.add(entry.lower())
        elif entry:
            dirs.append(os.path.abspath(os.path.expanduser(entry)))
    return tuple(dirs), frozenset(repositories)


def spec_of(spec: dict | bytes) -> dict:
    """A rule spec, from its marshal ``bytes`` if so kept (``package_rules``)."""
    return marshal.loads(spec) if isinstance(spec, bytes) else spec


def place_keys(spec: dict) -> list[str]:
    """A rule spec's keywords as place keys: a case-sensitive one as ``"=" + keyword``."""
    return [("=" + k) if spec.get("case_sensitive") else k for k in spec.get("keywords") or ()]


def keyword_index(specs: list[dict] | list[bytes], keyed_words: tuple[str, ...] | list[str]) -> tuple:
    """What a ``Redactor`` looks keywords up by: the specs of each place key
    (``place_keys``), the specs without keywords, the lowercase keys (the keyed
    rule's words included), the case-sensitive ones, and the probes: each key,
    the letter pairs of its lowercased keyword as 16-bit numbers (two bytes in
    this machine's order: see ``Redactor.present``) all in one ``bytes``, and
    where each key's pairs end in it (32-bit numbers in one ``bytes``). Flat
    bytes, not a tuple of numbers per key: a hook loads this in every new
    process, and thousands of number objects cost it ~0.6 ms more."""
    import array  # only when the marshal copy is made (or config rules added)

    by_keyword: dict[str, list[int]] = {}
    always = []
    for index, spec in enumerate(specs):
        keys = place_keys(spec_of(spec))
        for k in keys:
            by_keyword.setdefault(k, []).append(index)
        if not keys:
            always.append(index)
    lower = list(dict.fromkeys([*(k for k in by_keyword if k[0] != "="), *keyed_words]))
    exact = [k for k in by_keyword if k[0] == "="]
    pairs, ends = array.array("H"), array.array("I")
    for k in [*lower, *exact]:
        word = (k[1:].lower() if k[0] == "=" else k).encode("utf-8")
        pairs.extend(int.from_bytes(word[i : i + 2], sys.byteorder) for i in range(len(word) - 1))
        ends.append(len(pairs))
    return by_keyword, always, lower, exact, ([*lower, *exact], pairs.tobytes(), ends.tobytes())


class Redactor:
    """A compiled rule set plus the installation's hash key. ``enabled`` False
    (redaction switched off for a directory or repository) makes it return
    every text as is.

    Keywords are looked for in the lowercased text, except those of rules whose
    prefixes are case-sensitive (``SK``, ``API-``), looked for in the text as it
    is; inside, those are keyed ``"=" + keyword`` so the two never mix."""

    __slots__ = ("specs", "keyed", "allow", "enabled", "off", "off_repositories", "_key", "_rules", "_by_keyword", "_always",
                 "_keyed_kinds", "_lower", "_exact", "_probes", "_scans", "_scan", "_marks")

    def __init__(self, specs: list[dict] | list[bytes], keyed: _Keyed | None, allow: _Allow, *, key: bytes | None = None,
                 accelerate: bool = False, enabled: bool = True, off: tuple[str, ...] = (),
                 off_repositories: frozenset[str] = frozenset(), index: tuple | None = None):
        self.specs, self.keyed, self.allow = specs, keyed, allow
        self.enabled, self.off, self.off_repositories = enabled, off, off_repositories
        self._key = key
        self._rules: list[Rule | None] = [None] * len(specs)  # made when first triggered: the hook needs few
        self._by_keyword, self._always, self._lower, self._exact, self._probes = (
            index or keyword_index(specs, keyed.keywords if keyed else ()))
        self._keyed_kinds = frozenset(keyed.kinds.values()) if keyed else frozenset()
        self._scans: tuple | None = None
        self._scan = None  # the stdlib KeywordScan, compiled for the first long text
        self._marks = 0
        if accelerate:
            self._scans = self._automata(keyed)
            self._marks = len(self._scans[2]) - len(NOISE_MARKS)

    def _automata(self, keyed: _Keyed | None) -> tuple:
        """One Aho-Corasick automaton (str and bytes) over the lowercased text,
        and the place keys of each pattern. A case-sensitive keyword is looked
        for lowercased too, and kept where the text has it as written."""
        from ahocorasick_rs import AhoCorasick, BytesAhoCorasick, Implementation

        keys: dict[str, list[str]] = {}
        for k in self._by_keyword:
            keys.setdefault(k[1:].lower() if k[0] == "=" else k, []).append(k)
        # A key word counts only where a key can end (``tokens`` never does):
        # the automaton looks for the word with each character that may follow
        # it (``\\`` for an escape, which the view blanks), so ordinary text such
        # as every ``input_tokens`` costs nothing past the scan.
        for w in keyed.keywords if keyed else ():
            for c in sorted(keyed.after(w) | {"\\"}):  # type: ignore[union-attr]
                keys.setdefault(w + c, []).append(w)
        patterns = [*keys, *NOISE_MARKS]  # the marks last, with no keys (``_marks``: the first one's index)
        keys_of = [list(dict.fromkeys(keys.get(p, ()))) for p in patterns]
        # What a pattern's match must read as in the bytes themselves: None when
        # a lowercase key (or none) has it, else its case-sensitive forms.
        verify = [None if not ks or any(k[0] != "=" for k in ks) else tuple(k[1:].encode("utf-8") for k in ks)
                  for ks in keys_of]
        return (AhoCorasick(patterns, implementation=Implementation.DFA),
                BytesAhoCorasick([p.encode("utf-8") for p in patterns], implementation=Implementation.DFA),
                keys_of, verify)

    def for_location(self, cwd: str = "", transcript: str = "", repository: str | None = None) -> Redactor:
        """This rule set, or one that masks nothing for a session whose working
        directory (``cwd``, or the one a transcript's project folder is named
        after) is under a directory the config switched redaction off for, or
        whose GitHub ``repository`` (``owner/repo``, see
        ``gitinfo.repository_of``) the config names."""
        if repository and repository.lower() in self.off_repositories:
            return self._switched_off()
        if not self.off or not (cwd or transcript):
            return self
        path = os.path.abspath(os.path.expanduser(cwd)) if cwd else ""
        folder = _project_folder(transcript) if transcript else ""
        for d in self.off:
            slug = _slug(d)
            if (path and (path == d or path.startswith(d.rstrip(os.sep) + os.sep))) or (
                folder and (folder == slug or folder.startswith(slug + "-"))
            ):
                return self._switched_off()
        return self

    def _switched_off(self) -> Redactor:
        clone = Redactor.__new__(Redactor)
        for name in self.__slots__:
            setattr(clone, name, getattr(self, name))
        clone.enabled = False
        return clone

    def describe(self) -> dict[str, object]:
        """Which rules these are (for logs): counts and the sources' versions."""
        return {"rules": len(self.specs) + (1 if self.keyed else 0), "sources": sources()}

    def rule(self, index: int) -> Rule:
        made = self._rules[index]
        if made is None:
            made = self._rules[index] = Rule(spec_of(self.specs[index]))
        return made

    @property
    def rules(self) -> list[Rule]:
        """Every rule (made now if not yet)."""
        return [self.rule(i) for i in range(len(self.specs))]

    # --- finding -------------------------------------------------------------

    def _places(self, text: str, low: str, present: set[str] | None,
                hits: list | None) -> tuple[dict[str, list[int]], bool | None]:
        """Where each keyword occurs (all of them: overlapping), by place key,
        and whether the text may hold a ``NOISE_MARKS`` (None: not looked for).
        ``present``: only these keys can occur (``redact_many`` checked);
        ``hits``: the Aho-Corasick matches, when the caller has them already
        (ASCII bytes: the same positions)."""
        places: dict[str, list[int]] = {}
        if self._scans is not None and present is None:
            try:
                found = hits if hits is not None else self._scans[0].find_matches_as_indexes(low, overlapping=True)
            except UnicodeEncodeError:  # lone surrogates (bytes that were not UTF-8): look the plain way
                found = None
            if found is not None:
                keys_of, marks, noise = self._scans[2], self._marks, False
                for index, start, _ in found:
                    if index >= marks:
                        noise = True
                    for key in keys_of[index]:
                        if key[0] != "=" or text[start : start + len(key) - 1] == key[1:]:
                            places.setdefault(key, []).append(start)
                return places, noise
        if present is None and len(text) >= SCAN_MIN:
            present = self.present(text, low)
        for keys, haystack, cut in ((self._lower, low, 0), (self._exact, text, 1)):
            for key in keys:
                if present is not None and key not in present:
                    continue
                word = key[cut:]
                at = haystack.find(word)
                if at >= 0:
                    found = places[key] = []
                    while at >= 0:
                        found.append(at)
                        at = haystack.find(word, at + 1)
        return places, None

    def present(self, text: str, low: str) -> set[str]:
        """The place keys whose keyword occurs in ``text`` (``low``: it
        lowercased), by the standard library. A short text: the set of its
        letter pairs (its UTF-8 bytes read two at a time, from both offsets, as
        16-bit numbers: no Python loop), then ``in`` only for the keywords whose
        every pair occurs (a few dozen of ~400). A long one: one ``KeywordScan``."""
        if len(text) < SCAN_MIN:
            data = low.encode("utf-8", "surrogatepass")
            pairs = set(memoryview(data[: len(data) // 2 * 2]).cast("H"))
            pairs.update(memoryview(data[1 : 1 + (len(data) - 1) // 2 * 2]).cast("H"))
            has, (keys, flat, ends) = pairs.issuperset, self._probes
            probes, found, start = memoryview(flat).cast("H"), set(), 0
            for k, end in zip(keys, memoryview(ends).cast("I"), strict=True):
                if has(probes[start:end]) and (k[1:] in text if k[0] == "=" else k in low):
                    found.add(k)
                start = end
            return found
        if self._scan is None:
            from kapacitor.normalize.keyword_scan import KeywordScan

            self._scan = KeywordScan([*self._lower, *(k[1:].lower() for k in self._exact)])
        words = self._scan.present(low)
        return {k for k in self._lower if k in words} | {k for k in self._exact if k[1:].lower() in words and k[1:] in text}

    def findings(self, text: str, present: set[str] | None = None, hits: list | None = None) -> list[Finding]:
        """The secrets in ``text``, in order, none overlapping (the earliest, then
        a named kind before a keyed value, then the longest wins). Text inside a
        marker is never a secret."""
        if not self.enabled or not text:
            return []
        low = text if hits is not None else ascii_lower(text)  # with hits, the lowercase text is not needed
        places, noise = self._places(text, low, present, hits)
        if not places and not self._always:
            return []
        view = view_of(text, noise)
        triggered = {i for key in places for i in self._by_keyword.get(key, ())}
        found: list[Finding] = []
        for index in sorted(triggered.union(self._always)):
            rule = self.rule(index)
            starts = None
            if rule.anchor:
                starts = sorted({at for key in rule.place_keys for at in places.get(key, ())})
            found.extend(rule.find(view, starts, self.allow))
        if self.keyed is not None:
            found.extend(self.keyed.find(view, places, self.allow))
        if not found:
            return []
        markers = [m.span() for m in marker_pattern().finditer(text)] if "[REDACTED " in text else []
        keyed_kinds = self._keyed_kinds
        found.sort(key=lambda f: (f.start, f.rule in keyed_kinds, -f.end))
        out: list[Finding] = []
        for f in found:
            # Never cut an escape or a string's quote: trim what reads as space or
            # a quote in the view (escapes are blanked whole), and end a match
            # at the end of its JSON string.
            while f.start < f.end and view[f.start] in _TRIM:
                f.start += 1
            quote = view.find('"', f.start, f.end)
            if quote >= 0:
                f.end = quote
            while f.end > f.start and view[f.end - 1] in _TRIM:
                f.end -= 1
            if f.end - f.start < 3:
                continue
            if out and f.start < out[-1].end:
                continue
            if any(s <= f.start < e or s < f.end <= e for s, e in markers):
                continue
            f.secret = text[f.start : f.end]
            out.append(f)
        return other_mentions(text, out, markers)

    # --- masking -------------------------------------------------------------

    def marker(self, rule: str, secret: str) -> str:
        import hashlib
        import hmac

        digest = hmac.new(self.key(), secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"[REDACTED {rule} #{digest[:6]}]"

    def key(self) -> bytes:
        if self._key is None:
            self._key = installation_key()
        return self._key

    def redact(self, text: str, present: set[str] | None = None, hits: list | None = None) -> str:
        """``text`` with every secret replaced by its marker (``text`` itself when
        there is none)."""
        return self.mask(text, present, hits)[0]

    def mask(self, text: str, present: set[str] | None = None, hits: list | None = None) -> tuple[str, list[Finding]]:
        """``redact``, and the findings it masked."""
        found = self.findings(text, present, hits)
        if not found:
            return text, found
        parts, last = [], 0
        for f in found:
            parts += [text[last : f.start], self.marker(f.rule, f.secret)]
            last = f.end
        parts.append(text[last:])
        return "".join(parts), found

    def redact_many(self, texts: list[str]) -> list[str]:
        """``redact`` for several texts (a batch): without the Aho-Corasick scan,
        the keywords are looked for once in all of them together."""
        if not self.enabled:
            return texts
        present = None
        if self._scans is None and len(texts) > 1:
            everything = "\n".join(texts)
            present = self.present(everything, ascii_lower(everything))
            if not present and not self._always:
                return texts
        return [self.redact(text, present) for text in texts]

    def redact_bytes(self, data: bytes) -> bytes:
        """``redact`` for bytes that may not be UTF-8 (bad bytes pass through
        unchanged). The bytes are read as Latin-1, one character per byte: the
        scan's positions are the text's, and ``str`` operations stay on the
        compact one-byte form however much non-ASCII the line holds. (The rules
        match ASCII; a match is widened to whole UTF-8 characters.)"""
        if not self.enabled or not data:
            return data
        hits = None
        if self._scans is not None and not self._always:
            hits = self._scans[1].find_matches_as_indexes(data.lower(), overlapping=True)
            if not hits:
                return data
            # Drop what a case-sensitive keyword matched only in lowercase
            # (``api-`` for ``API-``): most hits in ordinary text are those.
            verify = self._scans[3]
            hits = [h for h in hits if (forms := verify[h[0]]) is None or data.startswith(forms, h[1])]
            if not self._keyworded(hits):
                return data
        return self._masked_bytes(data, hits)

    def masked_lines(self, chunks: list[bytes]) -> list[dict[int, bytes]]:
        """``redact_bytes`` for the lines of each chunk (a run of whole lines, each
        ending in ``\\n`` but perhaps the last), with one Aho-Corasick scan per
        chunk, all of them in a row: for the importer, which masks many files'
        lines at a time so that the automaton's tables stay in the CPU cache for
        them all instead of being evicted, file by file, by parsing and storing.
        For each chunk, only the lines that change: their masked body (without
        the line end) by the offset where the line starts in the chunk."""
        if not self.enabled:
            return [{} for _ in chunks]
        if self._scans is None or self._always:
            return [self._changed_lines(chunk) for chunk in chunks]
        find = self._scans[1].find_matches_as_indexes
        scanned = [find(chunk.lower(), overlapping=True) for chunk in chunks]  # one after the other: the automaton stays hot
        verify, out = self._scans[3], []
        for chunk, hits in zip(chunks, scanned, strict=True):
            by_line: dict[int, list[tuple[int, int, int]]] = {}
            first = end_of_line = -1
            for index, start, end in hits:
                forms = verify[index]
                if forms is not None and not chunk.startswith(forms, start):
                    continue  # a case-sensitive keyword (``API-``) found only in lowercase (``api-``)
                if not first <= start < end_of_line:
                    first = chunk.rfind(b"\n", 0, start) + 1
                    end_of_line = chunk.find(b"\n", start)
                    if end_of_line < 0:
                        end_of_line = len(chunk)
                    line_hits = by_line.setdefault(first, [])
                line_hits.append((index, start - first, end - first))
            changed = {}
            for first, line_hits in by_line.items():
                if not self._keyworded(line_hits):
                    continue
                end_of_line = chunk.find(b"\n", first)
                body = chunk[first : end_of_line if end_of_line >= 0 else len(chunk)].rstrip(b"\r")
                masked = self._masked_bytes(body, line_hits)
                if masked is not body:
                    changed[first] = masked
            out.append(changed)
        return out

    def _keyworded(self, hits: list) -> bool:
        """Whether the automaton's ``hits`` hold a keyword (not only ``NOISE_MARKS``)."""
        marks = self._marks
        return any(index < marks for index, _, _ in hits)

    def _changed_lines(self, chunk: bytes) -> dict[int, bytes]:
        """``masked_lines`` for one chunk, line by line."""
        changed, first = {}, 0
        for line in chunk.split(b"\n"):
            body = line.rstrip(b"\r")
            masked = self.redact_bytes(body)
            if masked is not body:
                changed[first] = masked
            first += len(line) + 1
        return changed

    def _masked_bytes(self, data: bytes, hits: list | None) -> bytes:
        """``data`` masked, the keywords found at ``hits`` (None: look for them)."""
        found = self.findings(data.decode("latin-1"), None, hits)
        if not found:
            return data
        parts, last = [], 0
        for f in found:
            start, end = f.start, f.end
            while start > last and 0x80 <= data[start] < 0xC0:  # a UTF-8 continuation byte
                start -= 1
            while end < len(data) and 0x80 <= data[end] < 0xC0:
                end += 1
            secret = data[start:end].decode("utf-8", "surrogateescape")
            parts += [data[last:start], self.marker(f.rule, secret).encode("ascii")]
            last = end
        parts.append(data[last:])
        return b"".join(parts)

    def redact_json(self, value: object) -> object:
        """A JSON value (dict, list, str, ...) with every secret in it masked: its
        JSON text is redacted and parsed back, so keys count as context."""
        if not self.enabled:
            return value
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        masked = self.redact(text)
        return value if masked is text else json.loads(masked)

    def __reduce__(self) -> tuple:
        """Pickled as what it is made from (the rule specs, keyword index,
        allowlists, key and switches), its compiled rules and automata made
        again where it is loaded: the importer's masking worker
        (``capture/masking.py``) gets this rule set so."""
        index = (self._by_keyword, self._always, self._lower, self._exact, self._probes)
        return (_remade, (self.specs, self.keyed, self.allow, self.key(), self._scans is not None, self.enabled, self.off,
                          self.off_repositories, index))


def _remade(specs: list, keyed: _Keyed | None, allow: _Allow, key: bytes, accelerate: bool, enabled: bool,
            off: tuple[str, ...], off_repositories: frozenset[str], index: tuple) -> Redactor:
    """A pickled ``Redactor`` loaded (``Redactor.__reduce__``)."""
    return Redactor(specs, keyed, allow, key=key, accelerate=accelerate, enabled=enabled, off=off,
                    off_repositories=off_repositories, index=index)


# --- loading -------------------------------------------------------------------


def load_rules(extra: dict | None = None, *, key: bytes | None = None, accelerate: bool = False) -> Redactor:
    """The package's rule files (a rule of a later file replaces an earlier one
    of the same id) plus ``extra`` (the client config's
    ``"redaction"`` object: ``rules`` to add, ``allowlist`` regexes, ``off``
    directories and ``owner/repo`` repositories, ``enabled``). Raises ``ValueError`` for a rule that does not compile."""
    extra = extra or {}
    if extra.get("enabled", True) is False:  # switched off: nothing to load
        return Redactor([], None, _Allow({}), key=key, enabled=False)
    specs, keyed_spec, allow_regexes, stopwords, index = package_rules()
    keyed = _Keyed(keyed_spec) if keyed_spec else None
    for spec in extra.get("rules") or ():
        index = None  # the specs change: index them anew
        specs = [spec_of(s) for s in specs]
        rule = Rule(spec)
        try:
            rule.pattern  # noqa: B018 — a user's rule is checked now, not at the first secret
        except re.error as exc:
            raise ValueError(f"redaction rule {rule.id!r}: {exc}") from None
        normal = {**spec, "keywords": list(rule.keywords)}  # lowercased unless case-sensitive
        specs = [s for s in specs if s["id"] != rule.id] + [normal]
    for regex in extra.get("allowlist") or ():
        try:
            re.compile(str(regex), re.ASCII)
        except re.error as exc:
            raise ValueError(f"redaction allowlist entry {regex!r}: {exc}") from None
        allow_regexes.append(str(regex))
    allow = _Allow({"regexes": allow_regexes, "stopwords": stopwords})
    off, off_repositories = off_entries(extra.get("off"))
    return Redactor(specs, keyed, allow, key=key, accelerate=accelerate, enabled=extra.get("enabled", True) is not False,
                    off=off, off_repositories=off_repositories, index=index)


_CODE_STAMP = (__file__, os.stat(__file__).st_size, os.stat(__file__).st_mtime_ns)
"""This module as it was when imported: the code that shapes the marshal copy
(a process still running older code stamps its copy as older)."""


def package_rules() -> tuple:
    """The package's rule files merged (a rule of a later file replaces an
    earlier one of the same id): ``(specs, keyed spec, allowlist regexes,
    stopwords, keyword_index(...))``.

    Every hook is a new process that needs them, so a ``marshal`` copy is kept
    in the state dir (``rules.marshal``) and used while the rule files, this
    module (as imported) and the Python version are those it was made from: it loads in half the time the JSON takes and spares indexing
    the keywords. Each rule's spec is kept as its own marshal ``bytes``,
    read when the rule is first needed (``spec_of``): a hook needs two or
    three of the ~250."""
    stamp = [sys.version, marshal.version, *_CODE_STAMP]
    for name in RULE_FILES:
        st = os.stat(os.path.join(RULES_DIR, name))
        stamp += [name, st.st_size, st.st_mtime_ns]
    from kapacitor.capture.client_config import state_dir

    path = os.path.join(state_dir(), "rules.marshal")
    try:
        with open(path, "rb") as handle:
            cached = marshal.loads(handle.read())
        if cached[0] == stamp:
            return cached[1]
    except Exception:  # noqa: BLE001 — unreadable or not ours: made anew below
        pass
    specs: list[dict] = []
    keyed_spec = None
    allow_regexes: list[str] = []
    stopwords: list[str] = []
    for name in RULE_FILES:
        with open(os.path.join(RULES_DIR, name), "rb") as handle:
            data = json.loads(handle.read())
        mine = {spec["id"] for spec in data.get("rules", ())}
        specs = [s for s in specs if s["id"] not in mine] + list(data.get("rules", ()))
        allow = data.get("allowlist") or {}
        allow_regexes += allow.get("regexes", [])
        stopwords += allow.get("stopwords", [])
        keyed_spec = data.get("keyed") or keyed_spec
    keyed_words = _Keyed(keyed_spec).keywords if keyed_spec else ()
    rules = ([marshal.dumps(spec) for spec in specs], keyed_spec, allow_regexes, stopwords, keyword_index(specs, keyed_words))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(marshal.dumps([stamp, rules]))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only state dir: the JSON next time too
    return rules


def sources() -> dict[str, str]:
    """Each rule file and where its rules come from (gitleaks' version)."""
    out = {}
    for name in RULE_FILES:
        with open(os.path.join(RULES_DIR, name), "rb") as handle:
            source = json.loads(handle.read()).get("source") or {}
        out[name] = f"{source['name']} {source['version']} ({source['licence']})" if source else "kapacitor"
    return out


_DEFAULT: dict[bool, Redactor] = {}


def default(*, accelerate: bool = False) -> Redactor:
    """The rule set of this installation (package rules and the client config),
    loaded once per process. ``accelerate``: the Aho-Corasick prefilter, for
    bulk work (import, ingest, scrub)."""
    if accelerate not in _DEFAULT:
        from kapacitor.capture.client_config import redaction_config

        _DEFAULT[accelerate] = load_rules(redaction_config(), accelerate=accelerate)
    return _DEFAULT[accelerate]


def reset() -> None:
    """Forget the loaded rule set (after the config or the key changed; tests)."""
    _DEFAULT.clear()


def installation_key() -> bytes:
    """This installation's HMAC key for markers: ``redaction.key`` in the user
    config dir (32 random bytes as hex, mode 0600), made on first use."""
    from kapacitor.capture.client_config import config_dir

    path = os.path.join(config_dir(), "redaction.key")
    try:
        with open(path, "rb") as handle:
            key = handle.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(os.urandom(32).hex().encode("ascii"))
    try:
        os.link(tmp, path)  # fails if another process made it first: theirs wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    with open(path, "rb") as handle:
        return handle.read().strip()


def redact(text: str) -> str:
    """Mask ``text`` with this installation's rule set."""
    return default().redact(text)


def redact_bytes(data: bytes) -> bytes:
    """Mask ``data`` with this installation's rule set (accelerated: bulk use)."""
    return default(accelerate=True).redact_bytes(data)
