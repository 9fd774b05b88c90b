"""``kapacitor recap``, ``errors`` and ``validate-plan``: what a session planned,
did and broke (see ``memory/knowledge.py``). SESSION defaults to the newest
session of ``--repo R``, else of this directory's project (``_session``); a
unique prefix of a session id is enough (``session_ids``)."""

from __future__ import annotations

import os
from typing import Any

import click

from kapacitor import times
from kapacitor.capture.gitinfo import project_of
from kapacitor.cli.common import REPO, REPO_HELP, AppContext, pass_app, print_json
from kapacitor.cli.read_models import caught_up
from kapacitor.cli.session_ids import resolve_session, unknown_filter
from kapacitor.memory import knowledge
from kapacitor.store.readdb import ReadDb


SESSION_DEFAULT = ("Without SESSION: the newest session of --repo R, else of this directory's project (its GitHub"
                   " repository, else this directory, as `kapacitor sessions` groups them); when this directory's"
                   " has none, an error names the store's newest (exit 1). SESSION and --repo together are a"
                   " usage error (exit 2).")
"""What the three commands' --help says of the default (``_session``)."""

REPO_OPTION = click.option("--repo", type=REPO, help=f"Instead of SESSION: the newest session of this repository ({REPO_HELP}).")
"""``--repo R`` of the three commands: R's newest session (``_session``)."""


def _one_of(session: str | None, repo: str | None) -> None:
    """SESSION and ``--repo`` both name the session: giving both is a usage error,
    not one of them silently ignored."""
    if session and repo:
        raise click.UsageError(f"give SESSION or --repo, not both (--repo {repo} is its newest session)")


def _session(conn: ReadDb, session: str | None, repo: str | None = None) -> str:
    """SESSION as given, else the newest session of ``repo``, else of this
    directory's project. A ``repo`` without sessions is an error; so is a
    directory with none, naming the store's newest session, never a silent
    fall-back to it: another repository's session would read as this one's (and
    ``validate-plan``'s exit status would be about it)."""
    if session:
        return resolve_session(conn, session)
    if repo:
        unknown_filter(conn, repo)
        return knowledge.latest_session(conn, None, repo)[0]
    project = project_of(os.getcwd())
    try:
        return knowledge.latest_session(conn, None, project)[0]
    except knowledge.SessionNotFound:
        pass
    try:
        newest, where = knowledge.latest_session(conn, None)
    except knowledge.SessionNotFound:
        raise click.ClickException("no sessions in the store yet (`kapacitor import` brings in your Claude Code history)") from None
    command = f"kapacitor {click.get_current_context().info_name}"
    raise click.ClickException(f"no session of {project} (this directory's project) in the store: name one,"
                               f" e.g. `{command} {newest[:8]}` for the store's newest (of {where});"
                               " `kapacitor sessions` lists them")


def _sessions(conn: ReadDb, session: str | None, repo: str | None, chain: bool) -> list[str]:
    sid = _session(conn, session, repo)
    return knowledge.chain(conn, None, sid) if chain else [sid]


@click.command("recap", epilog=SESSION_DEFAULT)
@click.argument("session", required=False)
@REPO_OPTION
@click.option("--full", is_flag=True, help="Also the transcript, as markdown.")
@click.option("--chain", is_flag=True, help="The sessions before it on the same branch too (oldest first).")
@click.option("--list", "listing", is_flag=True,
              help="Instead: the recent sessions of --repo R (else of this directory's project) with their summaries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def recap_command(app: AppContext, session: str | None, repo: str | None, full: bool, chain: bool, listing: bool,
                  as_json: bool) -> None:
    """What SESSION planned and did: plan, files written and edited, test runs and
    their result, errors; --full adds the markdown transcript."""
    _one_of(session, repo)
    if listing and (session or full or chain):
        raise click.UsageError("--list lists a repository's sessions (--repo R): not with SESSION, --full or --chain")
    with caught_up(app) as conn:
        if listing:
            _list_sessions(conn, repo or project_of(os.getcwd()), as_json)
            return
        recaps = []
        for sid in _sessions(conn, session, repo, chain):
            recap = knowledge.recap(conn, app.store, None, sid)
            if full:
                recap["transcript"] = knowledge.transcript(app.store, conn, None, sid)
            recaps.append(recap)
    if as_json:
        print_json(recaps if chain else recaps[0])
        return
    click.echo("\n\n".join(_recap_text(r) for r in recaps))


def _list_sessions(conn: ReadDb, repo: str, as_json: bool) -> None:
    """``recap --list``: ``repo``'s newest sessions, a line and a title each."""
    rows = knowledge.repo_sessions(conn, None, repo)
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo(f"No sessions of {repo} in the store.")
    for row in [] if as_json else rows:
        click.echo(f"{times.shown(row['started'], None)}  {row['session_id']}  {row['branch'] or '-'}  "
                   f"{row['user']}  files {row['files_changed']}  tools {row['tool_calls']}\n    {row['title'][:100]}")


def _recap_text(r: dict[str, Any]) -> str:
    out = [f"# {r['title'] or r['session_id']}", f"session {r['session_id']} · {r['repo']} · {r['branch'] or '-'} · "
           f"{r['user']} · {times.shown(r['started'], None)}"]
    out += ["", "## Plan"] + (_plan_lines(r["plan"]) or ["(no plan)"])
    out += ["", "## Files"] + ([f"- {f['path']} ({_times(f['writes'], 'write')}, {_times(f['edits'], 'edit')})"
                                for f in r["files"]] or ["(none written or edited)"])
    out += ["", "## Tests"] + ([f"- {t['result']}: {t['command']}" for t in r["tests"]] or ["(no test runs)"])
    out += ["", f"Tool errors: {r['errors']} (kapacitor errors {r['session_id'][:8]})"]
    if r["final_text"]:
        out += ["", "## Last answer", r["final_text"].strip()]
    if r.get("transcript"):
        out += ["", "## Transcript", "", r["transcript"]]
    return "\n".join(out)


def _times(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def _plan_lines(plan: dict[str, Any]) -> list[str]:
    marks = {"completed": "[x]", "in_progress": "[~]"}
    lines = [f"- {marks.get(i['status'], '[ ]')} {i['text']}" for i in plan["items"]]
    if plan["text"] and not lines:
        lines = plan["text"].strip().splitlines()
    return lines


@click.command("errors", epilog=SESSION_DEFAULT)
@click.argument("session", required=False)
@REPO_OPTION
@click.option("--chain", is_flag=True, help="The sessions before it on the same branch too.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def errors_command(app: AppContext, session: str | None, repo: str | None, chain: bool, as_json: bool) -> None:
    """SESSION's failed tool calls: tool, input, error text, chat position and link."""
    _one_of(session, repo)
    with caught_up(app) as conn:
        found = [e for sid in _sessions(conn, session, repo, chain) for e in knowledge.session_errors(conn, app.store, None, sid)]
    if as_json:
        print_json(found)
        return
    if not found:
        click.echo("No failed tool calls.")
    for e in found:
        lines = [line for line in e["error"].splitlines() if line.strip()][:3]
        text = "\n".join(f"    {line[:200]}" for line in lines)
        click.echo(f"[{e['position']}] {e['tool']}{' (subagent ' + e['agent'] + ')' if e['agent'] else ''}: {e['input']}\n"
                   f"{text}\n    {e['link']}")


@click.command("validate-plan", epilog=SESSION_DEFAULT)
@click.argument("session", required=False)
@REPO_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def validate_plan_command(app: AppContext, session: str | None, repo: str | None, as_json: bool) -> None:
    """SESSION's plan (plan mode, TodoWrite or Task lists, a plan file) beside what
    it did, and what is left. Exits 1 when items are left."""
    _one_of(session, repo)
    with caught_up(app) as conn:
        check = knowledge.plan_check(conn, app.store, None, _session(conn, session, repo))
    if as_json:
        print_json(check)
    else:
        plan = check["plan"]
        click.echo(f"Plan ({', '.join(plan['sources']) or 'none found'}):")
        click.echo("\n".join(_plan_lines(plan)) or "  (the session had no plan)")
        click.echo("\nDone:")
        for f in check["done"]["files"]:
            click.echo(f"  {f['path']} ({_times(f['writes'], 'write')}, {_times(f['edits'], 'edit')})")
        for t in check["done"]["tests"]:
            click.echo(f"  test {t['result']}: {t['command']}")
        click.echo("\nLeft: " + (", ".join(i["text"] for i in check["left"]) if check["left"] else "nothing"))
    if check["left"]:
        raise SystemExit(1)
