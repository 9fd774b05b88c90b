"""``kapacitor sync``: deliver what live capture could not (the server was down)."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kapacitor.capture import client_config
from kapacitor.capture.shipper import ship
from kapacitor.capture.spool import (
    forget,
    known_sessions,
    load_state,
    sessions_set_aside,
    set_aside_batches,
    spool_pending,
)


@click.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print one object per session as JSON.")
@click.option("--forget-after", default=7.0, show_default=True, metavar="DAYS",
              help="Drop the client state of sessions that ended, were fully delivered and did not change for DAYS.")
def sync_command(as_json: bool, forget_after: float) -> None:
    """Send every session's spool, then any transcript lines not sent yet.

    The hooks spool what the server did not take (down, restarting, slow); the
    next hook or the follower drains it, and this does it for all sessions at
    once, in order. Safe to run any time: ids are deterministic, so nothing is
    stored twice. A batch the server refused for good (a 4xx such as a
    malformed batch from another client version) is set aside, never blocking
    the rest: this lists them and why, and where they are kept. Exits 0 when
    everything deliverable was delivered, 1 while something is still spooled
    (the server unreachable).

    JSON keys: session_id, batches_sent, lines_read, spooled_bytes_left,
    set_aside (list of {at, reason, bytes, path}: batches the server refused
    for good), forgotten (the session's client state was dropped, see
    --forget-after).
    """
    config = client_config.load()
    rows = []
    known = set(known_sessions())
    for session_id in sorted(known | set(sessions_set_aside())):
        sent = lines = 0
        if session_id in known:
            while True:
                result = ship(session_id, config, budget=8 << 20, lock_wait=30)
                sent, lines = sent + result.sent, lines + result.lines
                if not result.more or result.spooled:
                    break
        state = load_state(session_id)
        left = spool_pending(session_id, state.spool_pos)
        forgotten = forget(state, forget_after * 86400) if session_id in known else False
        rows.append({"session_id": session_id, "batches_sent": sent, "lines_read": lines, "spooled_bytes_left": left,
                     "set_aside": set_aside_batches(session_id), "forgotten": forgotten})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("No captured sessions on this machine (install the hooks with `kapacitor setup`).")
    else:
        print_table(config.server, rows)
    stuck = [r["session_id"] for r in rows if r["spooled_bytes_left"]]
    if stuck:
        raise click.ClickException(
            f"{len(stuck)} session(s) still spooled: {config.server} did not take them (see {client_config.log_file()})"
        )


def print_table(server: str, rows: list[dict]) -> None:
    console = Console()
    table = Table(title=f"Sync to {server}")
    for column in ("session", "batches sent", "lines read", "spooled bytes left", "set aside"):
        table.add_column(column, justify="left" if column == "session" else "right")
    for row in rows:
        counts = (f"{row[k]:,}" for k in ("batches_sent", "lines_read", "spooled_bytes_left"))
        table.add_row(row["session_id"], *counts, f"{len(row['set_aside']):,}")
    console.print(table)
    for row in rows:
        for batch in row["set_aside"]:
            console.print(f"Set aside {escape(batch['at'])}: a batch of {batch['bytes']:,} bytes of session "
                          f"{escape(row['session_id'])}, refused for good: {escape(batch['reason'])} "
                          f"(kept in {escape(batch['path'])})", highlight=False, soft_wrap=True)
