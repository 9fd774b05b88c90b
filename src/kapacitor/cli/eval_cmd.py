"""``kapacitor eval``: score a session with an LLM judge (docs/eval.md), and
``kapacitor mcp judge``: the session tools as an MCP server for the ``claude`` judge."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kapacitor import money, times
from kapacitor.cli.common import REPO, REPO_HELP, SINCE, AppContext, pass_app, print_json
from kapacitor.cli.session_ids import resolved
from kapacitor.eval import catalog as catalog_mod
from kapacitor.eval.compact import DEFAULT_THRESHOLD
from kapacitor.eval.config import load_config
from kapacitor.eval.judges import BACKENDS, JudgeError
from kapacitor.eval.record import evals_of
from kapacitor.eval.runner import EvalResult, Settings
from kapacitor.eval.service import EvalRequest, NoSuchSession, NothingAnswered, evaluate

MARKS = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]fail[/]"}


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


@click.command("eval")
@click.argument("session", required=False, metavar="[SESSION]")
@click.option("--questions", help="Only these questions or categories (comma-separated ids).")
@click.option("--skip", help="Leave out these questions or categories (comma-separated ids).")
@click.option("--judge", type=click.Choice(BACKENDS), default=None,
              help="Judge backend (default: $KAPACITOR_JUDGE, config, else anthropic).")
@click.option("--model", default=None, help="Judge model (default: the backend's; $KAPACITOR_JUDGE_MODEL).")
@click.option("--threshold", type=click.IntRange(min=1), default=DEFAULT_THRESHOLD, show_default=True,
              help="Tool results longer than this many bytes are shown to the judge as a marker.")
@click.option("--parallel", type=click.IntRange(min=1), default=4, show_default=True, help="Questions asked at once.")
@click.option("--timeout", type=click.FloatRange(min=1), default=180, show_default=True, help="Seconds per judge call.")
@click.option("--max-cost", type=click.FloatRange(min=0), default=None, help="Stop asking once the judges cost this many USD.")
@click.option("--catalog", "catalog_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A team catalog (TOML) overriding, disabling or adding questions.")
@click.option("--chain", is_flag=True, help="Ask the questions one after another, each judge shown the verdicts before it (instead of --parallel independent calls).")
@click.option("--repo", type=REPO, default=None, help=f"Instead of SESSION: every session of this repository not yet evaluated ({REPO_HELP}).")
@click.option("--since", "since", type=SINCE, default=None,
              help="With --repo: only sessions started since this day (YYYY-MM-DD, local time) or within this long (12h, 7d, 2w).")
@click.option("--json", "as_json", is_flag=True, help="Print the stored eval(s) as JSON.")
@click.option("--list-questions", is_flag=True, help="List the catalog's questions and exit.")
@pass_app
def eval_command(app: AppContext, session: str | None, questions: str | None, skip: str | None, judge: str | None,
                 model: str | None, threshold: int, parallel: int, timeout: float, max_cost: float | None,
                 catalog_file: Path | None, chain: bool, repo: str | None, since: str | None, as_json: bool,
                 list_questions: bool) -> None:
    """Score SESSION (an id, or a prefix only it has) with an LLM judge: one call per catalog question (13 by
    default, scored 1-5 with cited evidence), category and overall scores, and a
    retrospective, stored as a SessionEvalCompleted event.

    Exit status: 0 every question answered (or, with --repo, nothing new to
    evaluate), 1 the eval failed (a question or the retrospective could not be
    answered, or --max-cost stopped it) or SESSION or --repo names nothing in
    the store, 2 usage.
    An eval with some questions answered is stored with the others marked
    failed; one with none answered, or whose judge cannot be reached (no key,
    connection refused, no `claude`), is not stored: one error line.
    """
    config = load_config()
    try:
        catalog = catalog_mod.load(catalog_file or config.catalog)
    except catalog_mod.CatalogError as exc:
        raise click.UsageError(str(exc)) from None
    if list_questions:
        _print_questions(catalog, as_json)
        return
    if bool(session) == bool(repo):
        raise click.UsageError("give a SESSION id, or --repo (with --since)")
    if since and not repo:
        raise click.UsageError("--since goes with --repo")
    settings = Settings(threshold=threshold, parallel=parallel, timeout=timeout,
                        max_cost=max_cost if max_cost is not None else config.max_cost, chain=chain)
    base = EvalRequest("", judge or config.judge, model or config.model, catalog,
                       _names(questions), _names(skip), settings)
    try:
        catalog.select(base.only, base.skip)
    except catalog_mod.CatalogError as exc:
        raise click.UsageError(str(exc)) from None
    err = Console(stderr=True)
    if session:
        targets = [resolved(app, session)]
    else:
        targets, why = _repo_sessions(app, repo or "", times.since_start(since, None) if since else "")
        if why:
            err.print(why, highlight=False, markup=False, soft_wrap=True)
    results = []
    for sid in targets:
        base.session_id = sid
        results.append(_run_one(app, base, err, quiet=as_json))
    if as_json:
        stored = {e["eval_id"]: e for sid in targets for e in evals_of(app.store, sid)}
        out = [stored[r.eval_id] for r in results]
        print_json(out[0] if session else out)
    if not all(r.ok for r in results):
        raise SystemExit(1)


def _run_one(app: AppContext, request: EvalRequest, err: Console, quiet: bool) -> EvalResult:
    total = len(request.catalog.select(request.only, request.skip)) + 1
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:  # off a terminal, rich leaves a blank line
        task = bar.add_task(f"eval {request.session_id[:8]} ({request.judge})", total=total)

        def progress(event: dict) -> None:
            state, qid = event.get("state"), event.get("question_id", "retrospective")
            if state == "done":
                bar.advance(task)
                if "score" in event:
                    bar.console.print(f"  {qid:<26} {event['score']}  {MARKS[event['verdict']]}")
            elif state == "failed":
                bar.advance(task)
                bar.console.print(f"  {qid:<26} [red]failed[/]: {event.get('error', '')[:160]}")
            elif state == "retry":
                bar.console.print(f"  {qid:<26} [yellow]retry[/]: {event.get('error', '')[:160]}")

        try:
            result = evaluate(app.store, app.store_url, request, progress)
        except (NoSuchSession, JudgeError, NothingAnswered) as exc:
            raise click.ClickException(str(exc)) from None
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if not quiet:
        _print_result(result, err)
    return result


def _print_result(result: EvalResult, console: Console) -> None:
    table = Table(title=f"eval {result.eval_id} of {result.session_id}", caption=(
        f"judge {result.backend}/{result.model}, catalog {result.catalog_version}, "
        f"{result.duration_seconds:.0f} s, cost {'unknown' if result.cost_usd is None else money.usd(result.cost_usd)}"))
    for name in ("category", "question", "score", "verdict", "finding"):
        table.add_column(name, overflow="fold")
    for category in result.categories:
        table.add_row(f"[bold]{category['title']}[/]", "", f"[bold]{category['score']}[/]", "", "")
        for v in result.verdicts:
            if v.category == category["id"]:
                table.add_row("", v.question_id, str(v.score), MARKS[v.verdict], v.finding)
    for f in result.failed:
        table.add_row(f["category"], f["question_id"], "—", "[red]failed[/]", f["error"])
    table.add_row("[bold]overall[/]", "", f"[bold]{result.overall if result.overall is not None else '—'}[/]", "", "")
    console.print(table)
    if result.retrospective:
        r = result.retrospective
        console.print(f"[bold]Retrospective[/]: {r['assessment']}")
        for title, key in (("Strengths", "strengths"), ("Issues", "issues"), ("Suggestions", "suggestions")):
            for item in r[key]:
                console.print(f"  {title[:-1].lower()}: {item}")


def _print_questions(catalog: catalog_mod.Catalog, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"version": catalog.version,
                               "categories": [vars(c) for c in catalog.categories],
                               "questions": [vars(q) for q in catalog.questions]}, indent=2))
        return
    table = Table(caption=f"catalog version {catalog.version}")
    for name in ("id", "category", "tools", "question"):
        table.add_column(name, overflow="fold")
    for q in catalog.questions:
        table.add_row(q.id, q.category, "yes" if q.needs_tools else "", q.question)
    Console().print(table)


def _repo_sessions(app: AppContext, repo: str, since: str) -> tuple[list[str], str]:
    """Sessions of ``repo`` (GitHub owner/repo or working directory) started
    at stored time ``since`` or later, without an eval yet, oldest first; and
    when there is none, why, in one line: none since then, or every one
    evaluated already. A ``repo`` no session in the store has is an error
    (``session_ids``' rule: a misspelt name fails, exit 1)."""
    from kapacitor.cli.sessions_cmd import newest_sessions

    of_repo = [s for s in reversed(newest_sessions(app, None)) if repo in (s.repository, s.cwd)]
    recent = [s for s in of_repo if not since or (s.started or "") >= since]
    chosen = [s.session_id for s in recent if not evals_of(app.store, s.session_id)]
    if not of_repo:
        raise click.ClickException(f"no session of {repo!r} in the store"
                                   " (`kapacitor sessions` lists its repositories and directories)")
    if not recent:
        why = f"None of the {len(of_repo)} session(s) of {repo} started since {times.shown(since, None)}."
    else:
        why = f"All {len(recent)} session(s) of {repo}{' since ' + times.shown(since, None) if since else ''} are evaluated already."
    return chosen, "" if chosen else why
