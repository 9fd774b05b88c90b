"""``kapacitor doctor``: is everything in order, and if not, what to do about it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import click
from click.core import ParameterSource
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kapacitor.capture import aside, client_config, refusals, sender
from kapacitor.capture.spool import known_sessions, load_state, spool_pending
from kapacitor.cli.common import AppContext, demo_hint
from kapacitor.cli.setup_cmd import is_ours, settings_path
from kapacitor.projections.catalog import statuses
from kapacitor.projections.runner import open_read_models
from kapacitor.store import health, open_store
from kapacitor.store.base import EventStore, StoreError, StoreMissing, display_url
from kapacitor.store.readdb import open_read_db

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` is ok, warn or fail; ``fix`` says what to do ("" if nothing)."""

    name: str
    status: str
    detail: str
    fix: str = ""


def check_store(store_url: str, named: bool = True) -> tuple[list[Check], object | None]:
    """The store is reachable and, for SQLite, passes ``quick_check``. Returns the
    checks and the open store (None when it cannot be opened).

    ``named``: the person named the store (``--store``, ``$KAPACITOR_STORE``). The
    default store missing is no fault on a machine whose hooks send to another
    server than the embedded one (a team member's laptop, docs/team.md): its
    sessions are kept there, so the check says where instead of failing."""
    shown = display_url(store_url)
    try:
        store = open_store(store_url, create=False)
    except StoreMissing as exc:
        elsewhere = client_config.load().server
        if not named and elsewhere != client_config.DEFAULT_SERVER:
            return [Check("store", "ok", f"none here: sessions go to {elsewhere}")], None
        return [Check("store", "fail", f"{exc}{demo_hint(store_url, exc)}", "check --store / $KAPACITOR_STORE, or run `kapacitor import`")], None
    except StoreError as exc:
        return [Check("store", "fail", f"{exc}{demo_hint(store_url, exc)}", "check --store / $KAPACITOR_STORE, or run `kapacitor import`")], None
    except OSError as exc:
        return [Check("store", "fail", f"cannot open {shown}: {exc.strerror or exc}", "check the path and its permissions")], None
    path = getattr(store, "path", None)
    if path is None:
        return [Check("store", "ok", f"{shown} reachable (head {store.head_position():,})")], store
    problems = health.quick_check(Path(path))
    if problems:
        store.close()
        return [Check("store", "fail", f"{path} fails SQLite's quick_check: {health.summary(problems)}",
                      "restore the file from a backup, or import again into a new store (--store)")], None
    return [Check("store", "ok", f"{path}: quick_check ok, head {store.head_position():,}")], store


def check_read_models(store: EventStore) -> list[Check]:
    """Each read model's lag and the events it skipped, read through the read-model
    port from the store's own database (the SQLite file or the PostgreSQL database)."""
    try:
        conn = open_read_models(open_read_db(store))
    except Exception as exc:  # noqa: BLE001 — a database that refuses is the finding
        return [Check("read models", "fail", f"cannot open the read models: {type(exc).__name__}: {exc}",
                      "check the store's permissions (and, for PostgreSQL, the role's rights)")]
    try:
        states = statuses(conn, store)
    finally:
        conn.close()
    out = []
    for state in states:
        name, mine = state.projection.name, state.skipped
        if state.ahead:
            out.append(Check(f"read model {name}", "fail", f"its checkpoint {state.checkpoint} is past the log's head: the store was replaced under it",
                             f"`kapacitor projections rebuild {name}` (with no server running on this store)"))
        elif mine:
            out.append(Check(f"read model {name}", "fail", f"{len(mine):,} event(s) skipped; first: {mine[0]}",
                             f"after upgrading Kapacitor: `kapacitor projections rebuild {name}`"))
        elif state.lag:
            out.append(Check(f"read model {name}", "warn", f"{state.lag:,} event(s) behind the log",
                             "`kapacitor serve` catches up while it runs (or `kapacitor projections rebuild`)"))
        else:
            out.append(Check(f"read model {name}", "ok", "at the head of the log"))
    return out


def check_hooks() -> list[Check]:
    """Kapacitor's hooks are in the user's Claude Code settings."""
    path = settings_path(project=False)
    try:
        settings = json.loads(path.read_text(encoding="utf-8") or "{}") if path.exists() else {}
    except (OSError, ValueError) as exc:
        return [Check("hooks", "fail", f"cannot read {path}: {exc}", f"fix or move {path}, then `kapacitor setup`")]
    hooks = settings.get("hooks") if isinstance(settings, dict) else None
    ours = [
        event for event, groups in (hooks.items() if isinstance(hooks, dict) else [])
        if isinstance(groups, list) and any(is_ours(h) for g in groups if isinstance(g, dict) for h in g.get("hooks") or [])
    ]
    if not ours:
        return [Check("hooks", "warn", f"no Kapacitor hooks in {path}: sessions are not captured live",
                      "`kapacitor setup` (or import now and then with `kapacitor import`)")]
    return [Check("hooks", "ok", f"{len(ours)} Claude Code hook events send to Kapacitor ({path})")]


def check_spools() -> list[Check]:
    """Nothing waits in the capture client's spools; else why, as the server
    last answered (``SessionState.failure``, saved by the pass that spooled),
    and the fix for that answer (``refusals``). A refusal (a token, a session
    that is not the token's user's) fails: the batches wait until someone
    acts. A server that did not answer is a warning: they go once it does."""
    from kapacitor.server.format import duration

    waiting = {}
    for session_id in known_sessions():
        state = load_state(session_id)
        left = spool_pending(state)
        if left:
            waiting[session_id] = (left, state.failure or {})
    if not waiting:
        return [Check("spools", "ok", "nothing spooled")]
    server = client_config.load().server
    counted = f"{len(waiting)} session(s) spooled, {sum(left for left, _ in waiting.values()):,} bytes not delivered"
    newest = {}  # the server's status → (session, its failure), the latest of each
    for session_id, (_, failure) in waiting.items():
        status = int(failure.get("status") or 0)
        if status not in newest or failure.get("at", 0) > newest[status][1].get("at", 0):
            newest[status] = (session_id, failure)
    answers = []
    for status, (session_id, failure) in sorted(newest.items(), reverse=True):
        if failure:
            when = f"{duration(max(0.0, time.time() - float(failure.get('at') or 0)))} ago"
            answers.append(f"{refusals.answer(server, status, str(failure.get('detail', '')))} (session {session_id}, {when})")
    fixes = list(dict.fromkeys(refusals.fix(status, server) for status in sorted(newest, reverse=True)))
    if not answers:  # spooled by a client that did not record why
        fixes[0] += " (`kapacitor sync` says why the server does not take them)"
    status = "fail" if any(refusals.refused(status) for status in newest) else "warn"
    return [Check("spools", status, "; ".join([counted, *answers]), "; and: ".join(fixes))]


def check_set_aside() -> list[Check]:
    """No batch the server refused waits set aside on this machine (the
    server's ``/healthz`` cannot know: the batches never reached it)."""
    from kapacitor.server.format import duration

    batches = [(s, b) for s in aside.sessions_set_aside() for b in aside.pending(s)]
    if not batches:
        return [Check("set aside", "ok", "no batch set aside")]
    session_id, oldest = min(batches, key=lambda sb: sb[1].at)
    sessions = len({s for s, _ in batches})
    return [Check("set aside", "warn",
                  f"{len(batches)} batch(es) of {sessions} session(s) refused by the server and set aside, the oldest "
                  f"{duration(time.time() - aside.epoch(oldest.at))} ago (session {session_id}: {oldest.reason[:200]})",
                  "fix the cause (the server's version or limits, or which server the client sends to); they are "
                  "retried by themselves (at once when the server URL, token or server version changes, else backing "
                  "off up to a day), or now with `kapacitor sync --retry`; `kapacitor sync --json` lists them")]


def check_server(server: str = "", timeout: float = 2.0) -> list[Check]:
    """The server at ``server`` (default: the one the hooks send to, from the client
    config) answers ``/healthz`` and reports itself healthy."""
    config = client_config.load()
    server = (server or config.server).rstrip("/")
    signed = {"Authorization": f"Bearer {config.token}"} if config.token and server == config.server.rstrip("/") else {}
    try:  # signed in with the hooks' token: a team server tells an anonymous caller only whether it is ok
        with urllib.request.urlopen(urllib.request.Request(f"{server}/healthz", headers=signed), timeout=timeout) as response:
            health = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        if exc.code == 401:  # the hooks' token, refused: every batch will be
            return [Check("server", "fail", refusals.answer(server, exc.code, f"HTTP {exc.code}: {sender.said(body)}"),
                          refusals.fix(exc.code, server))]
        try:
            health = json.loads(body)
        except ValueError:
            return [Check("server", "fail", f"{server}/healthz answered {exc.code}", "see the server's log")]
        return [Check("server", "fail", f"{server} is unhealthy: {'; '.join(health.get('problems', []))[:300]}",
                      "see its `kapacitor doctor` findings on the server's machine")]
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return [Check("server", "warn", f"{server} not reachable ({reason})",
                      "`kapacitor serve` (the hooks spool until it runs; `kapacitor sync` delivers)")]
    figures = f", head {health['head']:,}, lag {health['lag']:,}" if "head" in health and "lag" in health else ""
    return [Check("server", "ok", f"{server} healthy{figures}")]


def diagnose(store_url: str, server: str = "", store_named: bool = True) -> list[Check]:
    checks, store = check_store(store_url, store_named)
    if store is not None:
        try:
            checks += check_read_models(store)
        finally:
            store.close()  # type: ignore[attr-defined]
    return checks + check_hooks() + check_spools() + check_set_aside() + check_server(server)


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array: name, status (ok, warn, fail), detail, fix.")
@click.option("--server", "server", default="", metavar="URL",
              help="The server to check (default: the one the hooks send to, $KAPACITOR_SERVER or the client config).")
@click.pass_context
def doctor_command(ctx: click.Context, as_json: bool, server: str) -> None:
    """Check the store (reachable; SQLite's quick_check), the read models (lag,
    skipped events), the Claude Code hooks, the capture spools and the batches
    set aside on this machine, and the server,
    and say what to fix. Exits 1 when a check fails (a warning alone exits 0).

    A machine whose hooks send to another server (`kapacitor setup --server
    URL`, a team member's laptop) needs no store of its own: with no --store or
    $KAPACITOR_STORE and no default store, the store check says where the
    sessions go and passes."""
    app = ctx.find_object(AppContext)
    named = ctx.find_root().get_parameter_source("store_url") not in (ParameterSource.DEFAULT, None)
    checks = diagnose(app.store_url, server, named)
    if as_json:
        click.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        # 80 columns: the check's name and status whole, the detail given the rest
        # (wrapped at spaces; only a word longer than the column, a long path, folds)
        # and the fix on its own line under it
        table = Table(box=box.SIMPLE_HEAD, show_edge=False)
        table.add_column("check", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("detail / fix", overflow="fold", ratio=1)
        for c in checks:
            detail = Text(c.detail)
            if c.fix:
                detail.append(f"\nfix: {c.fix}", style="cyan")
            table.add_row(c.name, Text(c.status, style=_STYLE[c.status]), detail)
        Console().print(table)
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)
