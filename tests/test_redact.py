"""The rule set itself: the corpus of invented secrets and look-alikes, markers,
the config file's additions, and the rule files' own consistency."""

from __future__ import annotations

import json
import re
import os

import pytest

from kapacitor.capture import client_config
from kapacitor.normalize import redact
from kapacitor.normalize.keyword_scan import KeywordScan
from kapacitor.normalize.rule_anchors import literal_prefixes
from redaction_corpus import LOOKALIKES, SECRETS


@pytest.fixture(params=[False, True], ids=["stdlib", "accelerated"])
def redactor(request):
    """Both engines: the hook's (stdlib ``re``, ``in`` prefilter) and the bulk one."""
    return redact.load_rules(accelerate=request.param)


def test_the_corpus_is_big_enough():
    values = [v for _, _, vs in SECRETS for v in vs]
    assert len(values) >= 100 and len(set(values)) == len(values)
    assert len(LOOKALIKES) >= 60


def test_every_secret_is_masked_and_no_lookalike_is_touched(redactor):
    missed = [(context, value[:24]) for context, text, values in SECRETS for value in values if value in redactor.redact(text)]
    altered = [text[:60] for text in LOOKALIKES if redactor.redact(text) != text]
    recall = 1 - len(missed) / sum(len(vs) for _, _, vs in SECRETS)
    false_positives = len(altered) / len(LOOKALIKES)
    assert recall == 1.0, missed
    assert false_positives <= 0.02, altered


def test_the_corpus_covers_at_least_40_kinds(redactor):
    kinds = {f.rule for _, text, _ in SECRETS for f in redactor.findings(text)}
    assert len(kinds) >= 40, sorted(kinds)


def test_both_engines_mask_alike():
    plain, fast = redact.load_rules(), redact.load_rules(accelerate=True)
    for _, text, _ in SECRETS:
        assert plain.redact(text) == fast.redact(text)
        assert fast.redact_bytes(text.encode()) == plain.redact(text).encode()


def test_the_keyword_scan_finds_what_in_finds():
    """The stdlib prefilter for long texts: every keyword that occurs, overlapping
    ones included (``api_key`` holds ``key``), none that does not."""
    import random

    rules = redact.load_rules()
    words = [*rules._lower, *(k[1:].lower() for k in rules._exact)]
    scan = KeywordScan(words)
    rng = random.Random(11)
    texts = [redact.ascii_lower(text) for _, text, _ in SECRETS] + [redact.ascii_lower(t) for t in LOOKALIKES]
    for _ in range(200):  # keywords run together and cut short, in noise
        parts = [rng.choice(words)[: rng.randint(1, 12)] + rng.choice(["", " ", "=", "x", "_"]) for _ in range(rng.randint(1, 30))]
        texts.append("".join(parts))
    for text in texts:
        assert scan.present(text) == {w for w in words if w in text}, text[:80]


def test_a_long_text_is_masked_by_the_stdlib_engine_as_by_the_accelerated_one():
    """Past ``SCAN_MIN`` characters the stdlib engine looks for keywords with a
    ``KeywordScan``: the same findings, recall 100%, look-alikes untouched."""
    plain, fast = redact.load_rules(key=b"k"), redact.load_rules(key=b"k", accelerate=True)
    pieces = [text for _, text, _ in SECRETS] + LOOKALIKES
    text = "\n".join(pieces * (redact.SCAN_MIN // len("\n".join(pieces)) + 1))
    assert len(text) >= redact.SCAN_MIN
    masked = plain.redact(text)
    assert masked == fast.redact(text)
    assert not [v for _, _, values in SECRETS for v in values if v in masked]
    assert all(lookalike in masked for lookalike in LOOKALIKES)
    assert plain.redact_many([text, "x"]) == [masked, "x"]


def test_masking_lines_a_block_at_a_time_gives_what_masking_each_gives():
    """The importer masks the lines of many files at a time (their scans in a
    row): each changed line, by where it starts, is what masking it alone gives,
    and no other line changes."""
    fast = redact.load_rules(key=b"k", accelerate=True)
    lines = [json.dumps({"text": text}).encode() for _, text, _ in SECRETS] + [json.dumps(t).encode() for t in LOOKALIKES]
    lines += [b"", b"\xff\xfe not UTF-8 " + SECRETS[0][1].encode()[:200], b"API-KEY api-key " + lines[0]]
    chunks = [b"\n".join(lines) + b"\n", b"\r\n".join(lines[:5]) + b"\r\n", b"\n".join(lines[-3:]), b""]
    for chunk, changed in zip(chunks, fast.masked_lines(chunks), strict=True):
        expected, at = {}, 0
        for line in chunk.split(b"\n"):
            body = line.rstrip(b"\r")
            if fast.redact_bytes(body) != body:
                expected[at] = fast.redact_bytes(body)
            at += len(line) + 1
        assert changed == expected
    assert len(fast.masked_lines(chunks)[0]) >= len(SECRETS)
    assert redact.load_rules(key=b"k").masked_lines(chunks) == fast.masked_lines(chunks)  # the stdlib engine, line by line
    assert redact.load_rules({"enabled": False}).masked_lines(chunks) == [{}, {}, {}, {}]


def test_redacting_twice_changes_nothing_more(redactor):
    for _, text, _ in SECRETS:
        once = redactor.redact(text)
        assert redactor.redact(once) == once


def test_a_masked_json_line_is_still_json_with_the_same_shape(redactor):
    for _, text, values in SECRETS:
        line = json.dumps({"type": "user", "message": {"content": [{"type": "tool_result", "content": text}]}})
        masked = json.loads(redactor.redact(line))
        content = masked["message"]["content"][0]["content"]
        assert all(v not in content for v in values)
        assert "[REDACTED " in content


def test_the_marker_names_the_kind_and_links_mentions_without_revealing():
    red = redact.load_rules()
    token = "ghp_" + "FAKE" + "q7Rk2mX9vL4pT8wZ3nB6cY1dH5jF0sG2"
    text = f"export GITHUB_TOKEN={token}\ngit push https://x-access-token:{token}@github.com/acme/app.git"
    masked = red.redact(text)
    markers = redact.marker_pattern().findall(masked)
    assert token not in masked and len(markers) == 2
    assert {kind for kind, _ in markers} <= {"github-pat", "token", "url-password"}
    assert len({digest for _, digest in markers}) == 1  # the same secret: the same hash
    other = red.redact(text.replace(token, token[:-1] + "X"))
    assert redact.marker_pattern().findall(other)[0][1] != markers[0][1]


def test_the_installation_key_is_made_once_and_private():
    key = redact.installation_key()
    path = os.path.join(client_config.config_dir(), "redaction.key")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert redact.installation_key() == key and len(key) == 64
    another = redact.load_rules(key=b"another installation")
    assert another.redact("AWS_SECRET_ACCESS_KEY=FAKEwJalrXUtnFEMIK7MDENGbPxRfiCYzz1234567") != redact.load_rules().redact(
        "AWS_SECRET_ACCESS_KEY=FAKEwJalrXUtnFEMIK7MDENGbPxRfiCYzz1234567"
    )


def test_bytes_that_are_not_utf8_pass_through(redactor):
    line = b'{"content": "\xff AKIAFAKETEST2345ABCD and more \xfe"}'
    masked = redactor.redact_bytes(line)
    assert masked.startswith(b'{"content": "\xff [REDACTED aws-access-token #') and masked.endswith(b'] and more \xfe"}')


@pytest.mark.parametrize(
    "text",
    [
        "API_KEY=${API_KEY}", "token: <your-token>", "Bearer YOUR_ACCESS_TOKEN_HERE", "password: changeme",
        "PASSWORD=xxx", "secret: $SECRET", "apiKey: '{{ .Values.apiKey }}'", "password: '********'",
        "OPENAI_API_KEY=sk-...",
    ],
)
def test_placeholders_are_left_alone(text, redactor):
    assert redactor.redact(text) == text


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        ("DB_PASSWORD=hunter2hunter", "password", "hunter2hunter"),
        ("password: s3cr3t-Pa55", "password", "s3cr3t-Pa55"),
        ('"client_secret": "FAKE-9f8e7d6c5b4a"', "secret", "FAKE-9f8e7d6c5b4a"),
        ("--password Xq9!fake-pass", "cli-password", "Xq9!fake-pass"),
        ("curl -u deploy:Xq9fakepass https://ci.example.test", "curl-auth-user", "deploy:Xq9fakepass"),
        ("AUTH_TOKEN = 'FAKE0a1b2c3d4e5f'", "token", "FAKE0a1b2c3d4e5f"),
        ("app.config['SECRET_KEY'] = 'FAKE0a1b2c3d4e5f'", "secret", "FAKE0a1b2c3d4e5f"),
    ],
)
def test_values_named_by_their_key(text, kind, secret, redactor):
    [finding] = redactor.findings(text)
    assert (finding.rule, finding.secret) == (kind, secret)


def test_the_config_adds_rules_and_allowlist_entries_and_switches_off_per_directory(tmp_path):
    extra = {
        "rules": [{"id": "acme-internal-token", "regex": "\\b(ACME-[0-9a-f]{24})\\b", "keywords": ["acme-"]}],
        "allowlist": ["^FAKEALLOWED"],
        "off": [str(tmp_path / "playground")],
    }
    red = redact.load_rules(extra)
    assert red.redact("use ACME-0123456789abcdef01234567 now").startswith("use [REDACTED acme-internal-token #")
    assert red.redact("DB_PASSWORD=FAKEALLOWEDvalue1") == "DB_PASSWORD=FAKEALLOWEDvalue1"
    secret = "DB_PASSWORD=hunter2hunter"
    assert red.for_location(str(tmp_path / "playground" / "sub")).redact(secret) == secret
    slug = str(tmp_path / "playground").replace("/", "-").replace("_", "-")
    assert red.for_location(transcript=f"/h/.claude/projects/{slug}/s.jsonl").redact(secret) == secret
    assert red.for_location(str(tmp_path / "work")).redact(secret) != secret
    assert redact.load_rules({"enabled": False}).redact(secret) == secret


def test_the_config_switches_redaction_off_per_repository():
    """``owner/repo`` in ``off`` names a GitHub repository (any case), an
    absolute or ``~`` path a directory."""
    red = redact.load_rules({"off": ["Acme/Secret-Lab", "~/playground", "/srv/lab"]})
    assert red.off_repositories == {"acme/secret-lab"}
    assert red.off == (os.path.expanduser("~/playground"), "/srv/lab")
    secret = "DB_PASSWORD=hunter2hunter"
    assert red.for_location("/home/dev/src/lab", repository="acme/secret-lab").redact(secret) == secret
    assert red.for_location("/home/dev/src/lab", repository="ACME/Secret-Lab").redact(secret) == secret
    assert red.for_location("/home/dev/src/lab", repository="acme/widgets").redact(secret) != secret
    assert red.for_location("/home/dev/src/lab").redact(secret) != secret
    assert red.for_location("/srv/lab/x", repository="acme/widgets").redact(secret) == secret


def test_the_rule_files_are_read_from_a_marshal_copy_while_unchanged():
    """Every hook loads the rules: from ``rules.marshal`` in the state dir while
    the rule files (and Python) are those it was made from, else from the JSON."""
    import marshal
    from pathlib import Path

    fresh = redact.package_rules()
    path = Path(client_config.state_dir()) / "rules.marshal"
    stamp, rules = marshal.loads(path.read_bytes())
    assert rules == fresh
    path.write_bytes(marshal.dumps([stamp, (rules[0][:1], *rules[1:])]))
    assert redact.package_rules()[0] == fresh[0][:1]  # the copy is what is used
    path.write_bytes(marshal.dumps([[*stamp[:-1], stamp[-1] + 1], (rules[0][:1], *rules[1:])]))
    assert redact.package_rules() == fresh  # made from other files: read the JSON again
    path.write_bytes(b"not marshal")
    assert redact.package_rules() == fresh and marshal.loads(path.read_bytes())[0] == stamp


def test_a_config_rule_that_does_not_compile_is_named():
    with pytest.raises(ValueError, match="broken"):
        redact.load_rules({"rules": [{"id": "broken", "regex": "(unclosed", "keywords": ["x"]}]})


def test_the_default_rule_set_reads_the_client_config():
    path = client_config.config_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump({"server": "http://127.0.0.1:9", "redaction": {"allowlist": ["^FAKEKEEP"]}}, handle)
    redact.reset()
    assert redact.redact("DB_PASSWORD=FAKEKEEPthis1") == "DB_PASSWORD=FAKEKEEPthis1"
    client_config.save(client_config.ClientConfig("http://127.0.0.1:10", "t"))  # keeps the redaction settings
    assert client_config.redaction_config() == {"allowlist": ["^FAKEKEEP"]}


def _rule_files():
    for name in redact.RULE_FILES:
        with open(os.path.join(redact.RULES_DIR, name)) as handle:
            yield name, json.load(handle)


def test_gitleaks_rules_name_their_source_version_and_licence():
    data = dict(_rule_files())["gitleaks.json"]
    assert data["source"]["name"] == "gitleaks" and data["source"]["licence"] == "MIT" and data["source"]["version"]
    assert len(data["rules"]) > 150


def test_every_anchored_rule_can_only_match_where_a_keyword_starts():
    """``anchor`` lets the redactor try a regex only at keyword places: that is
    right only if every match starts with one of the keywords."""
    for name, data in _rule_files():
        for rule in data["rules"]:
            anchored = literal_prefixes(rule["regex"])
            if rule.get("anchor"):
                prefixes, case_sensitive = anchored
                assert all(any(p.startswith(k) for k in rule["keywords"]) for p in prefixes), (name, rule["id"])
                assert rule.get("case_sensitive", False) == case_sensitive, (name, rule["id"])
            else:
                assert not rule.get("case_sensitive"), (name, rule["id"])
            assert rule["keywords"], (name, rule["id"])  # a rule without keywords would run on every text


def test_a_rules_required_part_is_one_no_match_can_do_without():
    """A rule's ``requires`` is looked for before its regex runs: it must be a run
    of the regex's top-level elements (outside any alternative or repeat), read
    with the same flags, so that every match holds a match of it."""
    from re import _parser

    def canonical(value: object) -> object:
        if isinstance(value, (_parser.SubPattern, list, tuple)):
            return tuple(canonical(v) for v in value)
        return str(value)

    seen = 0
    for name, data in _rule_files():
        for rule in data["rules"]:
            if not rule.get("requires"):
                continue
            seen += 1
            regex, part = _parser.parse(rule["regex"], re.ASCII), _parser.parse(rule["requires"], re.ASCII)
            assert regex.state.flags == part.state.flags, (name, rule["id"])
            top, run = canonical(regex), canonical(part)
            assert any(top[i : i + len(run)] == run for i in range(len(top))), (name, rule["id"])
    assert seen >= 2


def test_a_required_part_spares_a_rule_the_lines_without_it():
    """``curl`` in long lines of prose with no ``-u``/``-H`` after it changes
    nothing, and a real ``curl -u`` in such a line is still masked."""
    fast = redact.load_rules(key=b"k", accelerate=True)
    prose = ("Use curl to fetch the page, then read it. " * 2500).encode()
    secret = b"curl -u admin:FAKEpassw0rdTEST https://ci.example.test/api"
    masked = fast.masked_lines([prose + b"\n" + prose + b" " + secret + b" " + prose + b"\n"])[0]
    assert list(masked) == [len(prose) + 1] and b"FAKEpassw0rdTEST" not in masked[len(prose) + 1]


def test_every_rule_compiles():
    for rule in redact.load_rules().rules:
        assert rule.pattern.groups >= 0


def test_a_required_part_is_found_where_its_regex_finds_it():
    """``Rule.required`` searches a part that starts with a character class by
    the rest (fast in ``re``) and checks the class before each hit: at every
    start it finds what the regex's own search finds."""
    import random

    rng = random.Random(7)
    for requires in (r"[ \t\n\r](?:-u|--user)", r"(?:-H|--header)", r"[ab]x|y", r"[ \t]+z", r"[^a-]-u"):
        rule = redact.Rule({"id": "r", "regex": "x", "requires": requires})
        whole = re.compile(requires, re.ASCII)
        for _ in range(2000):
            view = "".join(rng.choice(" \t\n-uxyzabHser") for _ in range(40))
            at = rng.randrange(40)
            hit = whole.search(view, at)
            assert rule.required(view, at) == (hit.start() if hit else -1), (requires, view, at)
