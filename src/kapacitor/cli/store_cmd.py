"""``kapacitor store copy FROM TO``: move a whole event log between stores (a
laptop's SQLite file into the team's PostgreSQL, say)."""

from __future__ import annotations

import hashlib
from itertools import groupby

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from kapacitor.access.accounts import copy_access, open_accounts
from kapacitor.store import open_store
from kapacitor.store.base import ANY, EventStore, StoreError, display_url
from kapacitor.store.readdb import open_read_db

BATCH = 2000


def copy_checkpoint(source_url: str) -> str:
    """The name of the target's checkpoint of how far a source was copied."""
    return "copy-" + hashlib.sha1(source_url.encode()).hexdigest()[:20]


def copied_up_to(target: EventStore, source_url: str) -> int:
    """The source position up to which ``target`` holds a copy (0: none yet)."""
    return int(target.get_checkpoint(copy_checkpoint(source_url)).get("position", 0))


def copy_log(source: EventStore, target: EventStore, source_url: str, progress=None, batch: int = BATCH) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """Append every event of ``source`` after the last copied position to ``target``,
    stream by stream in log order, with the new position saved in the same
    transaction as each batch: rerun it after a kill and it goes on where it stopped;
    rerun it when done and nothing changes (ids already in the target are skipped).
    ``progress`` gets each batch's number of events. Returns (events added, events
    already there: those an earlier run copied and those the target had by id)."""
    key = copy_checkpoint(source_url)
    position = copied_up_to(target, source_url)
    added, skipped = 0, source.count_after(0) - source.count_after(position) if position else 0
    while events := source.read_all(position, limit=batch):
        batches = [(stream, list(group), ANY) for stream, group in groupby(events, key=lambda e: e.stream)]
        position = events[-1].position
        results = target.append_many(batches, checkpoints={key: {"source": display_url(source_url), "position": position}})
        added += sum(r.added for r in results)
        skipped += sum(r.skipped for r in results)
        if progress:
            progress(len(events))
    return added, skipped


def copy_owners(source: EventStore, target: EventStore) -> dict[str, int]:
    """Who owns what: ``accounts.copy_access`` from the source's database into the
    target's, announced to the live hubs of the servers running on the target.
    Returns the rows added or changed per access table."""
    source_db, target_db = open_read_db(source), open_accounts(open_read_db(target))
    try:
        return copy_access(source_db, target_db)
    finally:
        source_db.close()
        target_db.close()


@click.group("store")
def store_group() -> None:
    """The event store itself."""


@store_group.command("copy")
@click.argument("source_url", metavar="FROM")
@click.argument("target_url", metavar="TO")
def copy_command(source_url: str, target_url: str) -> None:
    """Copy every event of store FROM into store TO (URLs as for --store), e.g. a
    laptop's SQLite file into the team's PostgreSQL. Idempotent and resumable:
    stop it at any point and run it again. Events keep their ids, streams and
    order; TO numbers positions its own way. Users, token hashes (revoked ones
    stay revoked), session owners and visibility and repository defaults come
    along, so every viewer sees the same sessions in TO; what TO already has
    wins. The server's cookie key is not copied (sign in again).

    Servers already running on TO show the copied sessions as they arrive, to
    whoever may see them: who owns what is copied before the events (so no
    session is shown by TO's defaults before its own access arrives) and again
    after them (what changed in FROM meanwhile); each access change is announced
    to their open pages as one made on a server is."""
    try:
        source, target = open_store(source_url, create=False), open_store(target_url)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        owners = copy_owners(source, target)  # before the events: each arrives with its owner and visibility
        with Progress(TextColumn("[bold]copying"), BarColumn(), MofNCompleteColumn(), TextColumn("events"),
                      TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("copy", total=source.count_after(copied_up_to(target, source_url)))
            added, skipped = copy_log(source, target, source_url, lambda n: bar.update(task, advance=n))
        after = copy_owners(source, target)  # what changed in FROM while the events were copied
        owners = {table: count + after[table] for table, count in owners.items()}
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        source.close()
        target.close()
    click.echo(f"copied {added:,} events from {display_url(source_url)} to {display_url(target_url)}"
               f" ({skipped:,} already there); access: {owners['users']:,} user(s), {owners['tokens']:,} token(s),"
               f" {owners['session_access']:,} session owner(s)/visibility, {owners['repository_access']:,} repository default(s)")
