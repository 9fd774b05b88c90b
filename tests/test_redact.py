import json

import pytest

from kapacitor.normalize.redact import redact, redact_bytes

SECRETS = [
    ("anthropic-key", "sk-ant-api03-" + "x1_-" * 10),
    ("openai-key", "sk-proj-" + "Ab3" * 15),
    ("aws-access-key", "AKIAIOSFODNN7EXAMPLE"),
    ("github-token", "ghp_" + "a1B2" * 9),
    ("github-token", "github_pat_" + "A1_b" * 15),
    ("gitlab-token", "glpat-" + "x" * 20),
    ("slack-token", "xoxb-1234567890-abcdef"),
    ("google-api-key", "AIza" + "S" * 35),
    ("stripe-key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
]


@pytest.mark.parametrize("kind,secret", SECRETS)
def test_known_secret_shapes_are_masked_inside_json(kind, secret):
    line = json.dumps({"type": "user", "message": {"content": f"use {secret} now"}})
    masked = redact(line)
    assert secret not in masked
    assert json.loads(masked)["message"]["content"] == f"use [REDACTED:{kind}] now"


def test_only_the_secret_part_of_bearer_and_url_credentials_is_masked():
    text = "curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345' https://bob:hunter2pass@example.com/x"
    assert redact(text) == (
        "curl -H 'Authorization: Bearer [REDACTED:bearer-token]' https://bob:[REDACTED:url-password]@example.com/x"
    )


def test_private_key_block_in_escaped_json():
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXk\\n-----END OPENSSH PRIVATE KEY-----"
    )
    line = '{"content": "here: ' + key + ' done"}'
    assert json.loads(redact(line)) == {"content": "here: [REDACTED:private-key] done"}


@pytest.mark.parametrize(
    "text",
    [
        "task-notification sk-short",
        "git@github.com:acme/widgets.git",
        "see https://example.com/a@b",
        "ask-ant-farm",
    ],
)
def test_ordinary_text_is_untouched(text):
    assert redact(text) == text


def test_a_trigger_inside_another_still_runs_its_pattern():
    # "sk-" (openai) and "sk-ant-" (anthropic) start at the same byte: both must be seen.
    key = "sk-ant-api03-" + "x1_-" * 10
    assert redact(f"a {key} and sk-proj-{'Ab3' * 15}") == "a [REDACTED:anthropic-key] and [REDACTED:openai-key]"

def test_secret_in_bytes_that_are_not_utf8():
    line = b'{"content": "\xff AKIAIOSFODNN7EXAMPLE"}'
    assert redact_bytes(line) == b'{"content": "\xff [REDACTED:aws-access-key]"}'
