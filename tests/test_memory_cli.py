"""The CLI on the recorded sessions: ``memory``, ``search``, ``recap``, ``errors``,
``validate-plan`` (hand-checked against the transcripts) and ``pr`` (with a fake
``gh`` on PATH standing in for GitHub)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from conftest import SAMPLE_DIRS
from kapacitor.cli import cli

WIDGETS = "708f24f2-dc3e-4588-a43d-59d69a508ed0"  # TaskCreate plan, a Write, a failing cat, a subagent
TODOS = "922a15d3-3e4d-471a-9a7e-754f15615295"  # TodoWrite plan, a refused Write, a failing cat
API_FIX = "e3ace814-42a0-4b79-a8f9-2db1e6c908e0"  # failing test run, Edit x2, passing test run
INTERACTIVE = "56d0e3a4-49a6-4882-8732-25313eede8cc"  # the same fix, typed interactively
NOTES = "97617f62-6fd5-442d-bb39-3ca75bd8c3e3"  # two denied calls


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "events.db"
    result = CliRunner().invoke(cli, ["--store", str(db), "import", *map(str, SAMPLE_DIRS)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db


def run(db, *args: str, code: int = 0) -> str:  # noqa: ANN001
    result = CliRunner().invoke(cli, ["--store", str(db), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_memory_add_list_supersede_retire(tmp_path):
    db = tmp_path / "m.db"
    first = run(db, "memory", "add", "run the billing tests with make check-billing", "--repo", "acme/billing", "-c", "testing").strip()
    run(db, "memory", "add", "we squash-merge", "--repo", "org")
    [listed] = json.loads(run(db, "memory", "list", "--repo", "acme/billing", "--json"))
    assert (listed["fact_id"], listed["category"], listed["by"], listed["status"]) == (first, "testing", "person", "active")
    second = run(db, "memory", "supersede", first[:6], "run the billing tests with make check-billing V=1").strip()
    assert run(db, "memory", "retire", second, "--reason", "gone").startswith(f"retired {second}:")
    assert [f["text"] for f in json.loads(run(db, "memory", "list", "--json"))] == ["we squash-merge"]
    history = {f["fact_id"]: f for f in json.loads(run(db, "memory", "list", "--all", "--json"))}
    assert history[first]["superseded_by"] == second and history[second]["status"] == "retired"
    assert "squash" in run(db, "memory", "list")
    assert "already retired" in run(db, "memory", "retire", second, code=1)
    assert "scope must be OWNER/REPO" in run(db, "memory", "add", "x", "--repo", "nope", code=1)


def test_memory_add_outside_a_github_repository_keeps_the_fact_for_the_directory(tmp_path, monkeypatch):
    """A directory without a GitHub remote is the project (as the session list
    groups its sessions): the fact's scope is the directory, not a usage error."""
    project = tmp_path / "api-server"
    project.mkdir()
    monkeypatch.chdir(project)
    db = tmp_path / "m.db"
    fact_id = run(db, "memory", "add", "the dev server listens on 8081").strip()
    [listed] = json.loads(run(db, "memory", "list", "--repo", str(project), "--json"))
    assert (listed["fact_id"], listed["scope"]) == (fact_id, str(project))


def test_search_finds_a_string_only_a_tool_output_contains(recorded):
    hits = json.loads(run(recorded, "search", "Ran 1 test", "--json"))  # unittest's output, in no prompt or answer
    assert {(h["session_id"], h["kind"], h["tool"]) for h in hits} == {(API_FIX, "tool_output", "Bash"), (INTERACTIVE, "tool_output", "Bash")}
    hit = next(h for h in hits if "OK" in h["snippet"] and h["session_id"] == API_FIX)
    start, end = hit["highlights"][0]
    assert hit["snippet"][start:end] == "Ran" and hit["link"].startswith(f"/sessions/{API_FIX}#e-")
    assert json.loads(run(recorded, "search", "Ran 1 test", "--since", "2030-01-01", "--json")) == []
    assert json.loads(run(recorded, "search", "Ran 1 test", "--repo", "/home/dev/src/api-server", "--json"))
    paths = json.loads(run(recorded, "search", "todo.md", "--json"))
    assert {"path", "tool_input", "tool_output"} <= {h["kind"] for h in paths}
    assert "Ran" in run(recorded, "search", '"Ran 1 test"')
    assert "type something" in run(recorded, "search", " ", code=2)


def test_search_for_a_repository_or_user_the_store_does_not_hold_fails(recorded):
    """A misspelt --repo or --user is an error (one line, exit 1: a script notices),
    unlike a known one without a hit (an empty answer, exit 0)."""
    for flag, name, said in (("--user", "nobody", "user 'nobody'"), ("--repo", "acme/nope", "'acme/nope'")):
        refused = run(recorded, "search", "Ran 1 test", flag, name, "--json", code=1)
        assert refused.strip().splitlines() == [f"Error: no session of {said} in the store"
                                                " (`kapacitor sessions --wide` lists repositories, directories and users)"]
    hit = {h["session_id"] for h in json.loads(run(recorded, "search", "Ran 1 test", "--json"))}
    sessions = json.loads(run(recorded, "sessions", "--json"))
    elsewhere = next(s for s in sessions if s["session_id"] not in hit and s["user"] and s["repo"])
    assert json.loads(run(recorded, "search", "Ran 1 test", "--repo", elsewhere["repo"], "--json")) == []
    assert json.loads(run(recorded, "search", "no such words anywhere", "--user", elsewhere["user"], "--json")) == []


def test_search_since_takes_a_day_or_a_duration_and_refuses_anything_else(recorded):
    """One rule for every ``--since`` (``times.since_start``): a day or a duration back
    from now; ``7d`` used to compare as text against the start times and find nothing."""
    everything = json.loads(run(recorded, "search", "Ran 1 test", "--json"))
    assert json.loads(run(recorded, "search", "Ran 1 test", "--since", "100000d", "--json")) == everything
    assert json.loads(run(recorded, "search", "Ran 1 test", "--since", "2000-01-01", "--json")) == everything
    assert json.loads(run(recorded, "search", "Ran 1 test", "--since", "1h", "--json")) == []  # recorded before today
    for bad in ("yesterday", "garbage", "7"):
        refused = run(recorded, "search", "Ran 1 test", "--since", bad, code=2)
        assert f"{bad!r} is neither a day (YYYY-MM-DD) nor a duration back from now (12h, 7d, 2w)" in refused
    assert "'2026-02-30' is not a calendar day" in run(recorded, "search", "x", "--since", "2026-02-30", code=2)


def test_recap_on_recorded_sessions(recorded):
    recap = json.loads(run(recorded, "recap", API_FIX[:8], "--json"))
    assert recap["prompts"] == ["test_add fails, please fix add()", "also add a docstring to add()"]
    assert recap["files"] == [{"path": "/home/dev/src/api-server/app.py", "writes": 0, "edits": 2}]
    assert [(t["command"], t["result"]) for t in recap["tests"]] == [("python3 -m unittest -q", "failed"), ("python3 -m unittest -q", "passed")]
    assert recap["errors"] == 1 and recap["plan"]["items"] == [] and recap["final_text"] == "Added a docstring to `add`."
    widgets = json.loads(run(recorded, "recap", WIDGETS, "--json"))
    assert widgets["files"] == [{"path": "/home/dev/src/widgets/hello.py", "writes": 1, "edits": 0}]
    assert [(i["text"], i["status"]) for i in widgets["plan"]["items"]] == [("Create hello.py", "completed"), ("Run hello.py", "completed")]
    text = run(recorded, "recap", API_FIX, "--full")
    assert "## Tests\n- failed: python3 -m unittest -q\n- passed: python3 -m unittest -q" in text
    assert "**[0] User:** test_add fails, please fix add()" in text and "**[3] Bash** `python3 -m unittest -q` (error)" in text
    chained = json.loads(run(recorded, "recap", TODOS, "--chain", "--json"))
    assert [r["session_id"] for r in chained] == [TODOS]  # the session before it in that directory is on main: a chain of one


def test_errors_on_recorded_sessions(recorded):
    assert [(e["tool"], e["position"], e["error"].splitlines()[-1]) for e in json.loads(run(recorded, "errors", TODOS, "--json"))] == [
        ("Write", 4, "File has not been read yet. Read it first before writing to it."),  # the client's tag unwrapped
        ("Bash", 9, "cat: does_not_exist.txt: No such file or directory"),
    ]
    denied = json.loads(run(recorded, "errors", NOTES, "--json"))
    assert [(e["tool"], e["input"]) for e in denied] == [("Write", "/home/dev/notes/todo.md"), ("Bash", "mkdir -p archive && mv *.md archive/")]
    assert all(e["link"].startswith(f"/sessions/{NOTES}#e-") for e in denied)
    assert "cat: does_not_exist.txt" in run(recorded, "errors", WIDGETS)
    assert "no session 'nope'" in run(recorded, "errors", "nope", code=1)


def test_validate_plan_on_recorded_sessions(recorded):
    check = json.loads(run(recorded, "validate-plan", WIDGETS, "--json"))
    assert check["has_plan"] and check["plan"]["sources"] == ["Task"] and check["left"] == []
    assert [f["path"] for f in check["done"]["files"]] == ["/home/dev/src/widgets/hello.py"]
    todos = json.loads(run(recorded, "validate-plan", TODOS, "--json"))
    assert todos["plan"]["sources"] == ["TodoWrite"] and [i["status"] for i in todos["plan"]["items"]] == ["completed", "completed"]
    assert todos["done"]["files"] == []  # its Write was refused: the todo list says done, the session wrote nothing
    text = run(recorded, "validate-plan", API_FIX)
    assert "the session had no plan" in text and "Left: nothing" in text


def test_pr_lists_the_sessions_on_the_prs_branch(tmp_path, monkeypatch):
    """The recorded api-server session, moved into a real checkout of acme/api-server
    (its cwd rewritten), and a fake ``gh`` that answers for PR #7 on branch main."""
    import subprocess

    from conftest import RECORDED

    checkout = tmp_path / "api-server"
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "remote", "add", "origin", "https://github.com/acme/api-server.git"], check=True)
    source = RECORDED / "projects" / "-home-dev-src-api-server" / f"{API_FIX}.jsonl"
    moved = tmp_path / "projects" / "-api-server" / source.name
    moved.parent.mkdir(parents=True)
    moved.write_text(source.read_text().replace("/home/dev/src/api-server", str(checkout)))
    db = tmp_path / "pr.db"
    run(db, "import", str(moved.parent))
    fake = tmp_path / "bin" / "gh"
    fake.parent.mkdir()
    pr = {"number": 7, "title": "Fix add", "url": "https://github.com/acme/api-server/pull/7", "state": "OPEN",
          "headRefName": "main", "baseRefName": "trunk", "author": {"login": "dev"}}
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/gh.args\ncat <<'EOF'\n{json.dumps(pr)}\nEOF\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    found = json.loads(run(db, "pr", "acme/api-server#7", "--json"))
    assert (tmp_path / "gh.args").read_text().split() == ["pr", "view", "7", "--repo", "acme/api-server", "--json",
                                                          "number,title,url,state,headRefName,baseRefName,author"]
    assert found["branch"] == "main" and found["pr"]["title"] == "Fix add"
    assert [(s["session_id"], s["files"]) for s in found["sessions"]] == [(API_FIX, [str(checkout / "app.py")])]
    assert "acme/api-server#7: Fix add [OPEN] branch main" in run(db, "pr", "acme/api-server#7")
    assert "a pull request is OWNER/REPO#NUMBER" in run(db, "pr", "nope", code=1)
    fake.write_text("#!/bin/sh\necho 'HTTP 404: Not Found' >&2\nexit 1\n")
    assert "HTTP 404: Not Found" in run(db, "pr", "acme/api-server#8", code=1)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert "`gh` is not installed" in run(db, "pr", "acme/api-server#7", code=1)


def test_repo_names_one_repository_in_every_command(tmp_path, monkeypatch):
    """``--repo R`` takes a repository in every command (trial 7: ``recap
    --repo acme/infra`` was a flag there, took ``acme/infra`` for SESSION and
    failed on this directory): recap, errors and validate-plan read R's newest
    session; SESSION with --repo is a usage error; ``.`` is this directory's
    repository in each of them, as in search and memory; ``recap --list`` the
    recent sessions. (The recorded sessions with the GitHub remotes the
    recording machine had: TODOS and WIDGETS ran in acme/widgets.)"""
    import subprocess

    from test_browser import recorded_context

    from kapacitor.capture.importer import import_paths
    from kapacitor.store import open_store

    db = tmp_path / "r.db"
    store = open_store(f"sqlite://{db}")
    import_paths(store, SAMPLE_DIRS, resolve_context=recorded_context)
    store.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert json.loads(run(db, "recap", "--repo", "acme/widgets", "--json"))["session_id"] == TODOS
    assert [r["session_id"] for r in json.loads(run(db, "recap", "--repo", "acme/widgets", "--chain", "--json"))][-1] == TODOS
    assert {e["session_id"] for e in json.loads(run(db, "errors", "--repo", "acme/widgets", "--json"))} == {TODOS}
    assert json.loads(run(db, "validate-plan", "--repo", "acme/widgets", "--json"))["session_id"] == TODOS
    assert f"session {TODOS}" in run(db, "recap", "--repo", "acme/widgets")
    for command in ("recap", "errors", "validate-plan"):
        assert "give SESSION or --repo, not both" in run(db, command, WIDGETS[:8], "--repo", "acme/widgets", code=2)
        assert "no session of 'acme/infra' in the store" in run(db, command, "--repo", "acme/infra", code=1)
    assert "requires an argument" in run(db, "recap", "--repo", code=2)
    assert [r["session_id"] for r in json.loads(run(db, "recap", "--list", "--repo", "acme/widgets", "--json"))] == [TODOS, WIDGETS]
    assert "--list lists a repository's sessions" in run(db, "recap", "--list", TODOS[:8], code=2)
    assert f"No sessions of {elsewhere} in the store." in run(db, "recap", "--list")

    checkout = tmp_path / "widgets"
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "remote", "add", "origin", "git@github.com:acme/widgets.git"], check=True)
    monkeypatch.chdir(checkout)
    assert json.loads(run(db, "recap", "--json"))["session_id"] == TODOS  # SESSION defaults to this repository's newest
    assert json.loads(run(db, "recap", "--repo", ".", "--json"))["session_id"] == TODOS
    assert [r["session_id"] for r in json.loads(run(db, "recap", "--list", "--json"))] == [TODOS, WIDGETS]
    assert {h["session_id"] for h in json.loads(run(db, "search", "cat", "--repo", ".", "--json"))} <= {TODOS, WIDGETS}
    assert json.loads(run(db, "search", "cat", "--repo", ".", "--json"))
    fact = run(db, "memory", "add", "run make check", "--repo", ".").strip()
    assert [f["fact_id"] for f in json.loads(run(db, "memory", "list", "--repo", ".", "--json"))] == [fact]
    assert json.loads(run(db, "memory", "list", "--repo", "acme/widgets", "--json"))[0]["scope"] == "acme/widgets"
    (checkout / "sub").mkdir()
    monkeypatch.chdir(checkout / "sub")
    assert json.loads(run(db, "recap", "--repo", "..", "--json"))["session_id"] == TODOS  # a path: its repository
    for command in ("recap", "errors", "validate-plan", "search", "eval"):
        assert "--repo OWNER/REPO" in run(db, command, "--help"), command


def test_recap_errors_and_validate_plan_default_to_this_directorys_newest_session_or_refuse(tmp_path, monkeypatch):
    """Without SESSION the three commands take the newest session of this
    directory's project (here a directory without a GitHub remote, where API_FIX
    ran); in a directory with none they refuse in one line that names the store's
    newest (NOTES) and how to ask for it, never silently showing another
    project's session."""
    from conftest import RECORDED

    project = tmp_path / "api-server"
    project.mkdir()
    transcripts = tmp_path / "projects" / "-api-server"
    transcripts.mkdir(parents=True)
    fix = RECORDED / "projects" / "-home-dev-src-api-server" / f"{API_FIX}.jsonl"
    (transcripts / fix.name).write_text(fix.read_text().replace('"cwd":"/home/dev/src/api-server"', json.dumps({"cwd": str(project)})[1:-1]))
    notes = RECORDED / "projects" / "-home-dev-notes" / f"{NOTES}.jsonl"
    (transcripts / notes.name).write_text(notes.read_text())
    db = tmp_path / "events.db"
    run(db, "import", str(tmp_path / "projects"))
    assert json.loads(run(db, "sessions", "--json"))[0]["session_id"] == NOTES  # the store's newest is elsewhere

    monkeypatch.chdir(project)
    assert json.loads(run(db, "recap", "--json"))["session_id"] == API_FIX
    assert [e["tool"] for e in json.loads(run(db, "errors", "--json"))] == ["Bash"]
    assert json.loads(run(db, "validate-plan", "--json"))["left"] == []

    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for command in ("recap", "errors", "validate-plan"):
        refused = run(db, command, code=1).strip().splitlines()
        assert refused == [f"Error: no session of {elsewhere} (this directory's project) in the store: name one, e.g."
                           f" `kapacitor {command} {NOTES[:8]}` for the store's newest (of /home/dev/notes);"
                           " `kapacitor sessions` lists them"], refused
    assert "no sessions in the store yet" in run(tmp_path / "none.db", "recap", code=1)
    assert "Without SESSION: the newest session of --repo R, else of this directory's project" in " ".join(run(db, "errors", "--help").split())
