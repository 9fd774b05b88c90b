"""``kapacitor users``, ``tokens`` and ``repos``: one rule for their output (a
sentence or a table with named local times for a person, ``--json`` for a
script), through the real CLI on a real SQLite store."""

from __future__ import annotations

import json
import os
import re
import subprocess

from capture_helpers import KAPACITOR
from kapacitor.cli.access_cmd import repos_group, tokens_group, users_group

ZONE = {"TZ": "America/New_York"}
"""A zone other than UTC, so a time printed in UTC would show."""


def cli(db, *args: str) -> str:  # type: ignore[no-untyped-def]
    done = subprocess.run([KAPACITOR, "--store", f"sqlite://{db}", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **ZONE})
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_every_users_tokens_and_repos_command_has_json():
    for group in (users_group, tokens_group, repos_group):
        for name, command in group.commands.items():
            assert "as_json" in {p.name for p in command.params}, f"{group.name} {name} has no --json"


def test_users_set_says_what_the_user_is_now_in_one_line_and_json_on_request(tmp_path):
    db = tmp_path / "team.db"
    assert cli(db, "users", "add", "bob") == "added user bob; give them a token: kapacitor tokens create --user bob\n"
    assert cli(db, "users", "set", "bob", "--email", "bob@example.com") == (
        "user bob: email bob@example.com, not an admin, default visibility private\n")
    assert cli(db, "users", "set", "bob", "--default-visibility", "org", "--admin") == (
        "user bob: email bob@example.com, an admin, default visibility org\n")
    user = json.loads(cli(db, "users", "set", "bob", "--no-admin", "--json"))
    assert user | {"created_at": ""} == {"name": "bob", "email": "bob@example.com", "admin": False,
                                         "default_visibility": "org", "created_at": ""}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[45]:00", user["created_at"]), user  # New York's offset
    assert json.loads(cli(db, "users", "list", "--json")) == [user]
    assert json.loads(cli(db, "users", "add", "cara", "--email", "c@example.com", "--json"))["email"] == "c@example.com"


def test_tokens_and_repos_print_a_sentence_and_json_on_request(tmp_path):
    db = tmp_path / "team.db"
    cli(db, "users", "add", "ann")
    made = json.loads(cli(db, "tokens", "create", "--user", "ann", "--json"))
    revoked = cli(db, "tokens", "revoke", made["id"])
    assert re.fullmatch(rf"revoked token {made['id']} of ann at \d{{4}}-\d\d-\d\d \d\d:\d\d E[SD]T\n", revoked), revoked
    again = json.loads(cli(db, "tokens", "create", "--user", "ann", "--json"))
    token = json.loads(cli(db, "tokens", "revoke", again["id"], "--json"))
    assert (token["id"], token["user"]) == (again["id"], "ann") and token["revoked_at"].endswith(("-05:00", "-04:00"))
    assert cli(db, "repos", "set", "acme/greeter", "--default-visibility", "org") == (
        "sessions in acme/greeter are org unless set otherwise\n")
    assert json.loads(cli(db, "repos", "set", "acme/greeter", "--default-visibility", "private", "--json")) == {
        "key": "acme/greeter", "default_visibility": "private"}
    assert " EST " in cli(db, "tokens", "list") or " EDT " in cli(db, "tokens", "list")
