"""Wrong input from a person: one line and a non-zero exit, never a traceback, and
nothing created or written that the person did not ask for. The real CLI in a
subprocess, real store files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RECORDED, SAMPLE_DIRS
from kapacitor import times
from kapacitor.server import format

SAMPLE = RECORDED / "projects" / "-home-dev-notes" / "97617f62-6fd5-442d-bb39-3ca75bd8c3e3.jsonl"


def kapacitor(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "kapacitor", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def one_line_error(result) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    return line


def test_a_file_that_is_not_a_store_is_refused_and_left_as_it_was(tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("these are my notes, not a database\n" * 200)
    before = notes.read_bytes()
    for args in (["sessions"], ["import", str(SAMPLE)], ["projections", "status"]):
        line = one_line_error(kapacitor("--store", f"sqlite://{notes}", *args))
        assert "is damaged or not a Kapacitor store (file is not a database)" in line
    assert notes.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal, no -shm


@pytest.mark.parametrize("args", [["sessions"], ["sessions", "--json"], ["projections", "status"], ["projections", "rebuild"]])
def test_a_read_on_a_store_that_does_not_exist_creates_nothing(tmp_path, args):
    missing = tmp_path / "typo" / "kapacitr.db"
    line = one_line_error(kapacitor("--store", f"sqlite://{missing}", *args))
    assert line == f"Error: no store at {missing}: nothing was imported there (check --store, or run `kapacitor import`)"
    assert not (tmp_path / "typo").exists()


def test_a_path_that_does_not_exist_is_one_line(tmp_path):
    line = one_line_error(kapacitor("--store", f"sqlite://{tmp_path / 'k.db'}", "import", str(tmp_path / "nope")))
    assert line == f"Error: no such file or directory: {tmp_path / 'nope'}"


def test_a_missing_path_beside_a_good_one_is_a_warning(tmp_path):
    result = kapacitor("--store", f"sqlite://{tmp_path / 'k.db'}", "import", "--json", str(tmp_path / "nope"), str(SAMPLE))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'nope'}: no such file or directory, skipped" in result.stderr
    assert json.loads(result.stdout)["events_added"] > 0


def test_a_file_without_transcript_records_is_skipped_with_one_warning(tmp_path):
    store = tmp_path / "k.db"
    result = kapacitor("--store", f"sqlite://{store}", "import", "--json", "/etc/passwd")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["events_added"] == 0
    [warning] = summary["warnings"]
    lines = len(Path("/etc/passwd").read_bytes().splitlines())
    assert warning == f"/etc/passwd: not a Claude Code transcript (no transcript record in its {f'first {lines:,}' if lines >= 1000 else lines} lines): skipped, nothing stored"
    status = json.loads(kapacitor("--store", f"sqlite://{store}", "projections", "status", "--json").stdout)
    assert {row["head"] for row in status} == {0}


def test_a_binary_file_is_skipped_as_not_a_transcript(tmp_path):
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(bytes(range(256)) * 40)  # NUL bytes, no newline at the end
    result = kapacitor("--store", f"sqlite://{tmp_path / 'k.db'}", "import", "--json", str(binary))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["warnings"] == [f"{binary}: not a Claude Code transcript (binary data, not JSON lines): skipped, nothing stored"]
    assert summary["events_added"] == 0 and "incomplete last line" not in result.stderr


def test_import_without_history_says_where_it_looked_in_one_line(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path / "home"), "CLAUDE_CONFIG_DIR": ""}
    result = kapacitor("--store", f"sqlite://{tmp_path / 'k.db'}", "import", env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    [line] = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert line.startswith("No Claude Code history found") and str(tmp_path / "home" / ".claude" / "projects") in line
    assert "kapacitor import PATH" in line
    env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "cc")
    line = kapacitor("--store", f"sqlite://{tmp_path / 'k.db'}", "import", env=env).stderr.strip()
    assert str(tmp_path / "cc" / "projects") in line and "\n" not in line


def test_record_text_never_reaches_rich_markup(tmp_path):
    target = tmp_path / "p" / "-x" / SAMPLE.name
    target.parent.mkdir(parents=True)
    lines = SAMPLE.read_bytes().splitlines()
    odd = [b'{"type": "[/]", "uuid": "m1"}', b'{"type": "[bold red]x[/bold red] [link=file:///etc]y", "uuid": "m2"}', b"[/] not json"]
    target.write_bytes(b"\n".join(lines[:3] + odd + lines[3:]) + b"\n")
    result = kapacitor("--store", f"sqlite://{tmp_path / 'k.db'}", "import", str(target))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "unknown record type '[/]'" in result.stderr
    assert "'[bold red]x[/bold red] [link=file:///etc]y'" in result.stderr


def test_a_busy_port_is_one_line_before_anything_is_imported(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share")}
        result = kapacitor("serve", "--demo", "--port", str(port), env=env)
    line = one_line_error(result)
    assert line.startswith(f"Error: cannot listen on 127.0.0.1:{port}:") and "--port" in line
    assert not (tmp_path / "share").exists()  # no demo store was made


@pytest.fixture(scope="module")
def imported_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("sessions") / "k.db"
    result = kapacitor("--store", f"sqlite://{store}", "import", *map(str, SAMPLE_DIRS))
    assert result.returncode == 0
    return f"sqlite://{store}"


@pytest.mark.parametrize("width", [80, 120])
def test_the_sessions_table_fits_the_terminal_one_line_each(imported_store, width):
    out = kapacitor("--store", imported_store, "sessions", env={**os.environ, "COLUMNS": str(width)}).stdout
    lines = out.splitlines()
    assert max(map(len, lines)) <= width
    rows = json.loads(kapacitor("--store", imported_store, "sessions", "--json").stdout)
    for row in rows:  # each session on exactly one line, by its short id
        [line] = [line for line in lines if line.startswith(row["session_id"][:8])]
        assert f" {times.shown(row['started'], None, '%m-%d %H:%M')} " in line  # in the local zone, named; the year this year
        title = " ".join(row["title"].split())
        assert title[: min(len(title), 15)] in line  # the title keeps the room (16 columns at 80)
        assert line.endswith(" " + format.cost(row["cost_usd"]))  # the web's rule: "$0.039", not "$0.04"
    assert "started" in out


def test_sessions_wide_shows_every_column_and_full_ids(imported_store):
    out = kapacitor("--store", imported_store, "sessions", "--wide", env={**os.environ, "COLUMNS": "400"}).stdout
    rows = json.loads(kapacitor("--store", imported_store, "sessions", "--json").stdout)
    for column in ("branch", "user", "duration", "prompts", "files", "tokens (in/out/cache r/w)"):
        assert column in out
    assert all(row["session_id"] in out for row in rows)


def test_scripts_run_keeps_the_demo_and_passes_options_through(tmp_path):
    """scripts/run with a stand-in .venv (the real one would be installed): which
    arguments reach `kapacitor serve`."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("run", "venv"):
        shutil.copy(_script(name), root / "scripts" / name)
    (root / "pyproject.toml").write_text("[project]\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "kapacitor").write_text('#!/bin/sh\necho "$@"\n')
    for name in ("python", "kapacitor"):
        (bin_dir / name).chmod(0o755)
    fake_python3 = tmp_path / "bin" / "python3"
    fake_python3.parent.mkdir()
    fake_python3.write_text("#!/bin/sh\nexit 0\n")
    fake_python3.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake_python3.parent}:{os.environ['PATH']}"}

    def run(*args):
        return subprocess.run([str(root / "scripts" / "run"), *args], capture_output=True, text=True, env=env, check=True).stdout.split()

    assert run() == ["serve", "--demo"]
    assert run("--port", "8000") == ["serve", "--demo", "--port", "8000"]
    assert run("--import") == ["serve", "--import"]
    assert run("--demo", "--host", "0.0.0.0") == ["serve", "--demo", "--host", "0.0.0.0"]


def test_scripts_venv_says_what_it_does_first_then_skips_when_installed(tmp_path):
    """A fresh clone's first ``./scripts/run`` spends minutes in pip: scripts/venv
    says so on its first line and lets pip show its progress; a rerun with
    nothing changed neither speaks nor runs pip, and a changed pyproject.toml
    installs again. (``python3 -m venv`` and pip stand in for the real ones:
    the real install needs the network; everything else is the real python3.)"""
    import sys

    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(_script("venv"), root / "scripts" / "venv")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    calls = tmp_path / "pip-calls"
    fake = tmp_path / "bin"
    fake.mkdir()
    venv_python = f'#!/bin/sh\necho "$@" >> {calls}\n[ "$1" = -m ] && echo "Collecting fastapi"\nexit 0\n'
    (fake / "python3").write_text(
        '#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; '
        f"cat > \"$3/bin/python\" <<'PY'\n{venv_python}PY\n"
        f'chmod +x "$3/bin/python"; exit 0; fi\nexec {sys.executable} "$@"\n')
    (fake / "python3").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}

    def venv(*args):
        done = subprocess.run([str(root / "scripts" / "venv"), *args], capture_output=True, text=True, env=env, check=True)
        return done.stderr.splitlines()

    first = venv()
    assert first[0] == "Installing Kapacitor into .venv: a few minutes the first time; pip's progress follows..."
    assert "Collecting fastapi" in first and first[-1].startswith("Installed in ")
    pip = [line for line in calls.read_text().splitlines() if "pip install" in line]
    assert pip == ["-m pip install -q --upgrade pip", "-m pip install -e ."]  # pip's own output, not -q
    calls.write_text("")
    assert venv() == [] and calls.read_text() == "-c import kapacitor\n"  # installed: quiet, no pip
    assert venv("test")[0] == "Updating .venv for this pyproject.toml (extras: test); pip's progress follows..."
    assert "-m pip install -e .[test]" in calls.read_text()
    calls.write_text("")
    assert venv() == [] and venv("test") == []  # [test] installed the base too
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['httpx']\n")
    assert venv()[0].startswith("Updating .venv") and "-m pip install -e ." in calls.read_text()


def _script(name: str):
    from conftest import ROOT

    return ROOT / "scripts" / name


def test_sessions_keeps_owner_repo_whole_and_cuts_the_title(tmp_path):
    checkout = tmp_path / "checkout"  # a real git checkout of a GitHub repository
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    subprocess.run(["git", "-C", str(checkout), "remote", "add", "origin", "git@github.com:acme-corp/payments-service.git"], check=True)
    target = tmp_path / "projects" / "-x" / SAMPLE.name
    target.parent.mkdir(parents=True)
    target.write_text(SAMPLE.read_text().replace('"cwd":"/home/dev/notes"', json.dumps({"cwd": str(checkout)})[1:-1].replace(": ", ":")))
    store = f"sqlite://{tmp_path / 'k.db'}"
    assert kapacitor("--store", store, "import", str(target)).returncode == 0
    rows = json.loads(kapacitor("--store", store, "sessions", "--json").stdout)
    assert [row["repository"] for row in rows] == ["acme-corp/payments-service"]

    def line_at(width):
        out = kapacitor("--store", store, "sessions", env={**os.environ, "COLUMNS": str(width)}).stdout
        [line] = [line for line in out.splitlines() if line.startswith(rows[0]["session_id"][:8])]
        return line

    assert " acme-corp/payme… " in line_at(80)  # cut at its end, never "…ents-service"
    assert " acme-corp/payments-service " in line_at(100)  # whole: the title gives way


def test_sessions_wide_never_wraps_cells_in_a_narrow_terminal(imported_store):
    out = kapacitor("--store", imported_store, "sessions", "--wide", env={**os.environ, "COLUMNS": "80"}).stdout
    rows = json.loads(kapacitor("--store", imported_store, "sessions", "--json").stdout)
    lines = out.splitlines()
    for row in rows:  # the whole id and the whole title on the session's one line
        [line] = [line for line in lines if row["session_id"] in line]
        assert " ".join(row["title"][:200].split()) in " ".join(line.split())
    models = sum(max(1, len(row["tokens"])) for row in rows)
    assert len(lines) <= models + 10  # a line per session and model, the header and caption


def test_a_directory_as_store_is_one_line_that_says_so(tmp_path):
    line = one_line_error(kapacitor("--store", str(tmp_path), "sessions"))
    assert line.startswith(f"Error: not a store URL or path: {tmp_path} is a directory")
    assert "scheme" not in line


def test_eval_of_a_missing_session_is_one_line_and_nothing_before_it(tmp_path):
    store = f"sqlite://{tmp_path / 'k.db'}"
    assert kapacitor("--store", store, "import", str(SAMPLE)).returncode == 0
    result = kapacitor("--store", store, "eval", "nope")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr == "Error: no session 'nope' in the store (`kapacitor sessions` lists them)\n"  # no blank line first
