"""Every time the CLI prints states its zone, in one form: a table or a line shows
the machine's local time to the minute with the zone named (``times.shown``, as
``kapacitor sessions`` does); ``--json`` writes the server's JSON form (ISO 8601
to the millisecond with the offset: ``cli.common.print_json``). Run in
America/Los_Angeles, so a UTC time passed through unchanged cannot pass."""

from __future__ import annotations

import json
import os
import re
import subprocess

from capture_helpers import KAPACITOR

LOCAL = re.compile(r"\b20\d\d-\d\d-\d\d \d\d:\d\d P[SD]T\b")
ISO = re.compile(r"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[78]:00$")


def cli(db, *args: str) -> str:  # noqa: ANN001
    env = {**os.environ, "TZ": "America/Los_Angeles", "COLUMNS": "200"}
    done = subprocess.run([KAPACITOR, "--store", f"sqlite://{db}", *args], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_users_tokens_and_facts_show_local_times_named_and_json_the_servers_form(tmp_path):
    db = tmp_path / "team.db"
    cli(db, "users", "add", "ana", "--admin")
    made = json.loads(cli(db, "tokens", "create", "--user", "ana", "--json"))
    cli(db, "tokens", "revoke", made["id"])
    cli(db, "memory", "add", "we squash-merge", "--repo", "org")
    users, tokens, facts = cli(db, "users", "list"), cli(db, "tokens", "list"), cli(db, "memory", "list")
    assert len(LOCAL.findall(users)) == 1 and len(LOCAL.findall(tokens)) == 2 and len(LOCAL.findall(facts)) == 1
    assert not re.search(r"\d\dT\d\d|UTC|Z\b", users + tokens + facts)  # no raw stored time, no UTC shown as local
    [user] = json.loads(cli(db, "users", "list", "--json"))
    [token] = json.loads(cli(db, "tokens", "list", "--json"))
    [fact] = json.loads(cli(db, "memory", "list", "--json"))
    for stamp in (user["created_at"], token["created_at"], token["revoked_at"], fact["retained_at"]):
        assert ISO.match(stamp), stamp
