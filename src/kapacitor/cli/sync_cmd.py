"""``kapacitor sync``: deliver what live capture could not (the server was down)."""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kapacitor.capture import aside, client_config, refusals
from kapacitor.capture.shipper import ship
from kapacitor.capture.spool import forget, known_sessions, load_state, spool_pending
from kapacitor.cli.common import print_json


@click.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print one object per session as JSON.")
@click.option("--retry", "retry_all", is_flag=True,
              help="Retry every batch set aside now, not only those whose retry is due.")
@click.option("--forget-after", default=7.0, show_default=True, metavar="DAYS",
              help="Drop the client state of sessions that ended, were fully delivered and did not change for DAYS.")
def sync_command(as_json: bool, retry_all: bool, forget_after: float) -> None:
    """Send every session's spool, then any transcript lines not sent yet, then
    retry the batches set aside that are due.

    The hooks spool what the server did not take (down, restarting, slow); the
    next hook or a follower drains it, and this does it for all sessions at
    once, in order. Safe to run any time: ids are deterministic, so nothing is
    stored twice. A token the server refuses (401, 403) keeps the spool
    waiting, in order, until the token is replaced. A batch the server refused
    for good (another 4xx: a malformed batch, one over its size limit, a batch
    version it does not speak) is set aside,
    never blocking the rest, and retried by itself: at once when the client's
    server or token or the server's version changed since, else after 5
    minutes, doubling up to a day (--retry: all of them now). This lists them,
    why, and where they are kept. Exits 0 when everything deliverable was
    delivered (set-aside batches included), 1 while something is still spooled
    (the server unreachable).

    JSON keys: session_id, batches_sent, lines_read, spooled_bytes_left,
    spool_failure (why the spool was not delivered: the server's answer, "" if it was),
    spool_status (that answer's HTTP status; 0 when the server did not answer),
    set_aside (list of {at (UTC), reason, age_s, bytes, attempts, next_retry
    (UTC), path}: batches refused for good and not yet delivered), retried
    (list of {at, why, outcome (sent, rejected, failed), detail}: set-aside
    batches tried by this run), forgotten (the session's client state was
    dropped, see --forget-after).
    """
    config = client_config.load()
    rows = []
    known = set(known_sessions())
    for session_id in sorted(known):
        sent = lines = 0
        while True:
            result = ship(session_id, config, budget=8 << 20, lock_wait=30)
            sent, lines = sent + result.sent, lines + result.lines
            if not result.more or result.spooled:
                break
        masking = "a huge hook payload is still being masked" if result.masking else ""
        rows.append({"session_id": session_id, "batches_sent": sent, "lines_read": lines,
                     "spool_failure": result.stuck or masking, "spool_status": result.status})
    tried: dict[str, list[dict]] = {}
    for row in aside.retry(config, force=retry_all, wait=60):
        tried.setdefault(row.pop("session_id"), []).append(row)
    rows += [{"session_id": s, "batches_sent": 0, "lines_read": 0, "spool_failure": "", "spool_status": 0}
             for s in sorted(set(aside.sessions_set_aside()) - known)]
    now = time.time()
    for row in rows:
        session_id = row["session_id"]
        state = load_state(session_id)
        row["spooled_bytes_left"] = spool_pending(state)
        row["set_aside"] = [entry.as_json(now) for entry in aside.pending(session_id)]
        row["retried"] = tried.get(session_id, [])
        row["forgotten"] = forget(state, forget_after * 86400) if session_id in known else False
    rows.sort(key=lambda r: r["session_id"])
    if as_json:
        print_json(rows)
    elif not rows:
        click.echo("No captured sessions on this machine (install the hooks with `kapacitor setup`).")
    else:
        print_table(config.server, rows)
    stuck = [r for r in rows if r["spooled_bytes_left"]]
    if stuck:
        why = max(stuck, key=lambda r: (refusals.refused(r["spool_status"]), bool(r["spool_failure"])))
        raise click.ClickException(
            f"{len(stuck)} session(s) still spooled: {refusals.answer(config.server, why['spool_status'], why['spool_failure'])};"
            f" fix: {refusals.fix(why['spool_status'], config.server)} (see {client_config.log_file()})"
        )


def print_table(server: str, rows: list[dict]) -> None:
    from kapacitor.server.format import duration

    console = Console()
    table = Table(title=f"Sync to {server}")
    for column in ("session", "batches sent", "lines read", "spooled bytes left", "set aside"):
        table.add_column(column, justify="left" if column == "session" else "right")
    for row in rows:
        counts = (f"{row[k]:,}" for k in ("batches_sent", "lines_read", "spooled_bytes_left"))
        table.add_row(row["session_id"], *counts, f"{len(row['set_aside']):,}")
    console.print(table)
    for row in rows:
        for tried in row["retried"]:
            if tried["outcome"] == "sent":
                console.print(f"Delivered a batch of session {escape(row['session_id'])} set aside {escape(tried['at'])} "
                              f"(retried: {escape(tried['why'])})", highlight=False, soft_wrap=True)
        for batch in row["set_aside"]:
            console.print(f"Set aside {escape(batch['at'])} ({duration(batch['age_s'])} ago): a batch of {batch['bytes']:,} bytes "
                          f"of session {escape(row['session_id'])}, refused for good: {escape(batch['reason'])} "
                          f"({batch['attempts']} retr{'y' if batch['attempts'] == 1 else 'ies'} since; next retry "
                          f"{escape(batch['next_retry'])} or when the server or token changes, or `kapacitor sync --retry`; "
                          f"kept in {escape(batch['path'])})", highlight=False, soft_wrap=True)

