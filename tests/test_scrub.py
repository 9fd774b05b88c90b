"""``kapacitor scrub`` and ``kapacitor redact``: secrets an older version stored
in clear are masked in place, logged, and the read models rebuilt; a text is
shown as it would be stored."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from capture_helpers import events_by_id
from kapacitor.capture import client_config
from kapacitor.capture.importer import import_paths
from kapacitor.cli import cli
from kapacitor.events import scrub_log_stream
from kapacitor.normalize import redact
from kapacitor.normalize.scrub import scrub
from kapacitor.store import open_store
from kapacitor.store.readdb import open_read_db
from redaction_corpus import SECRETS, password
from test_redaction_paths import assert_clean, secret_values, store_figures, write_session
from test_store_postgres import admin_url, pg_url  # noqa: F401 — fixtures


def set_redaction(**section: object) -> None:
    path = client_config.config_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump({"redaction": section}, handle)
    redact.reset()


def import_in_clear(tmp_path, url: str) -> None:
    """What a version without these rules stored: the corpus, secrets in clear."""
    write_session(tmp_path / "projects", str(tmp_path / "work"))
    set_redaction(enabled=False)
    store = open_store(url)
    import_paths(store, [tmp_path / "projects"])
    store.close()
    set_redaction()


def run(*args: str) -> dict:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_scrub_masks_what_was_stored_logs_it_and_rebuilds_the_read_models(tmp_path):
    db = tmp_path / "store.db"
    url = f"sqlite://{db}"
    import_in_clear(tmp_path, url)
    run("--store", url, "sessions", "--json")  # the read models exist, secrets in them too
    recall, _, left, _ = store_figures(db)
    assert recall < 0.5 and left

    dry = run("--store", url, "scrub", "--dry-run", "--json")
    assert dry["changed"] > len(SECRETS) // 2 and dry["rewritten"] == 0 and dry["log_event"] is None
    assert len(dry["kinds"]) >= 40
    assert store_figures(db)[2] == left  # a dry run changes nothing

    done = run("--store", url, "scrub", "--json")
    assert done["rewritten"] == done["changed"] == dry["changed"] and done["read_models_rebuilt"]
    assert_clean(store_figures(db))  # events, read models and the file's bytes

    store = open_store(url)
    [log] = store.read_stream(scrub_log_stream())
    assert log.type == "SecretsScrubbed" and log.data["events"] == [e["id"] for e in done["events"]]
    assert sum(log.data["kinds"].values()) == sum(done["kinds"].values())
    assert not any(value in json.dumps(log.data) for value in secret_values())
    scrubbed = events_by_id(store)
    store.close()

    assert run("--store", url, "scrub", "--json")["changed"] == 0  # nothing left to do, nothing logged
    fresh = open_store(f"sqlite://{tmp_path / 'fresh.db'}")
    import_paths(fresh, [tmp_path / "projects"])
    expected = events_by_id(fresh)
    fresh.close()
    assert {i: e for i, e in scrubbed.items() if e[0] != scrub_log_stream()} == expected  # as if masked at import


def test_scrub_leaves_directories_where_redaction_is_off(tmp_path):
    db = tmp_path / "store.db"
    import_in_clear(tmp_path, f"sqlite://{db}")
    set_redaction(off=[str(tmp_path / "work")])
    store = open_store(f"sqlite://{db}")
    assert scrub(store).changes == []
    store.close()


def test_scrub_leaves_a_repository_where_redaction_is_off(tmp_path):
    """The repository a session is stored with (its cwd's git remote at import)."""
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    (work / ".git" / "config").write_text('[remote "origin"]\n\turl = git@github.com:acme/secret-lab.git\n')
    db = tmp_path / "store.db"
    write_session(tmp_path / "projects", str(work))
    set_redaction(enabled=False)
    store = open_store(f"sqlite://{db}")
    import_paths(store, [tmp_path / "projects"])
    set_redaction(off=["Acme/Secret-Lab"])
    assert scrub(store).changes == []
    set_redaction(off=["acme/widgets"])
    assert scrub(store, dry_run=True).changes
    store.close()


def test_scrub_on_postgresql(tmp_path, pg_url):  # noqa: F811
    import_in_clear(tmp_path, pg_url)
    run("--store", pg_url, "sessions", "--json")  # the read models exist, secrets in them too
    done = run("--store", pg_url, "scrub", "--json")
    assert done["rewritten"] == done["changed"] > 0 and done["read_models_rebuilt"]
    store = open_store(pg_url)
    db = open_read_db(store)
    try:
        texts: list[str] = []
        for event in store.read_all():
            texts.append(json.dumps(event.data) + json.dumps(event.metadata))
        searched = [text for (text,) in db.execute("SELECT text FROM search_text")]
        assert searched
        everything = "\n".join(texts + searched)
        assert not [v for v in secret_values() if v in everything]
        assert scrub(store).changes == []
    finally:
        db.close()
        store.close()


def test_redact_prints_the_text_as_stored_and_lists_findings(tmp_path):
    text = "\n".join(t for _, t, _ in SECRETS[:4]) + "\nnothing to see here\n"
    path = tmp_path / "dump.txt"
    path.write_text(text)
    shown = CliRunner().invoke(cli, ["redact", str(path)], catch_exceptions=False).output
    assert "[REDACTED " in shown and "nothing to see here" in shown
    assert not any(v in shown for _, _, values in SECRETS[:4] for v in values)
    piped = CliRunner().invoke(cli, ["redact", "-"], input=text, catch_exceptions=False).output
    assert piped == shown
    findings = run("redact", "--json", str(path))
    assert {f["kind"] for f in findings} >= {"aws-access-token", "aws-secret-access-key", "github-pat"}
    first = findings[0]
    assert text.splitlines()[first["line"] - 1][first["column"] - 1 :].startswith(SECRETS[0][2][0])
    listing = CliRunner().invoke(cli, ["redact", "--findings", str(path)]).output
    assert f"{path}:{first['line']}:{first['column']}: {first['kind']}" in listing


@pytest.mark.parametrize("args", [["redact", "/no/such/file"]])
def test_redact_names_a_file_it_cannot_read(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and result.output.startswith("Error: cannot read /no/such/file")


def test_scrub_masks_every_mention_in_a_session_of_a_secret_found_anywhere_in_it(tmp_path):
    """A value a rule finds in one event (``DB_PASSWORD=``) is masked where the
    session mentions it bare, before and after; another session's mention of
    the same characters is its own business. Running it again changes nothing."""
    from test_redaction_paths import _record

    secret, cwd = password(), str(tmp_path / "work")
    folder = tmp_path / "projects" / "".join(c if c.isalnum() else "-" for c in cwd)
    folder.mkdir(parents=True)
    lines = [_record("text", f"I will try {secret} first", 1, cwd),
             _record("bash", f"DB_PASSWORD={secret} ./migrate", 2, cwd),
             _record("result", f"connected as app using {secret}", 3, cwd)]
    (folder / "4a1d9c0e-0000-4000-8000-00000000f00d.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    url = f"sqlite://{tmp_path / 'store.db'}"
    store = open_store(url)
    import_paths(store, [tmp_path / "projects"])
    try:
        stored = json.dumps([e.data for e in store.read_all()])
    finally:
        store.close()
    assert stored.count(secret) >= 2 and f"DB_PASSWORD={secret}" not in stored  # the import masked the keyed value only

    dry = run("--store", url, "scrub", "--dry-run", "--json")
    assert dry["changed"] == 2 and list(dry["kinds"]) == ["password"], dry  # the bare mentions, before and after
    done = run("--store", url, "scrub", "--json")
    assert done["rewritten"] == 2
    store = open_store(url)
    try:
        everything = json.dumps([[e.data, e.metadata] for e in store.read_all()])
    finally:
        store.close()
    assert secret not in everything
    assert everything.count(redact.default().marker("password", secret)) >= 6  # data and raw line, three events
    assert run("--store", url, "scrub", "--dry-run", "--json")["changed"] == 0
