"""``kapacitor projections``: the read models kept beside the event log."""

from __future__ import annotations


import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kapacitor.cli.common import AppContext, pass_app, print_json, read_db
from kapacitor.cli.read_models import progress_bar
from kapacitor.projections import skipped
from kapacitor.projections.catalog import BY_NAME, PROJECTIONS, statuses
from kapacitor.projections.runner import (
    ProjectionRunner,
    ProjectionStalled,
    open_read_models,
    reset,
)


@click.group("projections", help=(
    "Read models kept in the store's own database, each with a checkpoint: the last log position it handled."
    f"\n\nThe {len(PROJECTIONS)} read models, in the order they run: {', '.join(p.name for p in PROJECTIONS)}."))
def projections_group() -> None:
    """The read models (the help text above is made from their registry, ``projections.catalog``)."""


@projections_group.command("rebuild")
@click.argument("name", required=False, metavar="[NAME]", type=click.Choice(list(BY_NAME)))
@pass_app
def rebuild_command(app: AppContext, name: str | None) -> None:
    """Drop NAME's tables and checkpoint (all read models if no NAME) and
    rebuild them from the whole event log."""
    chosen = [BY_NAME[name]] if name else list(PROJECTIONS)
    rebuild(app, chosen)
    click.echo(f"rebuilt {', '.join(p.name for p in chosen)} up to position {app.store.head_position()}")


def rebuild(app: AppContext, chosen: list) -> None:  # type: ignore[type-arg]
    """Reset ``chosen`` read models and replay the whole log into them (a progress
    bar on stderr); a ClickException says when it stopped or skipped events."""
    db = read_db(app, create=False)  # first: a missing store is an error, not created
    runner = ProjectionRunner(app.store, db, chosen)
    stalled = None
    try:
        for projection in chosen:
            reset(runner.conn, projection)
        with progress_bar("rebuilding", app.store.count_after(0)) as advance:
            try:
                runner.catch_up(advance)
            except ProjectionStalled as exc:
                stalled = exc
        found = skipped.skipped(runner.conn)
    finally:
        runner.close()
    if stalled:
        raise click.ClickException(f"rebuild stopped, nothing skipped (run it again): {stalled}")
    if found:
        first = found[0]
        raise click.ClickException(
            f"rebuilt, but {len(found)} event(s) skipped (`kapacitor projections status` lists them); first: {first}"
        )


@projections_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array: name, version, checkpoint, head, lag, skipped (each: name, position, event_id, event_type, error, skipped_at).")
@pass_app
def status_command(app: AppContext, as_json: bool) -> None:
    """Show each read model's checkpoint, the log's head, its lag (how many events
    come after its checkpoint) and the events it skipped because its code raised
    on them (each listed with position, id, type and error; `projections
    rebuild` applies them again).
    A read model that never ran has checkpoint 0."""
    db = read_db(app, create=False)
    head = app.store.head_position()
    conn = open_read_models(db)
    try:
        states = statuses(conn, app.store)
    finally:
        conn.close()
    found = [s for state in states for s in state.skipped]
    rows = [
        {"name": s.projection.name, "version": s.projection.version, "checkpoint": s.checkpoint, "head": head,
         "lag": s.lag, "skipped": [k.as_json() for k in s.skipped]}
        for s in states
    ]
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("name", "version", "checkpoint", "head", "lag", "skipped"):
        table.add_column(column, justify="left" if column == "name" else "right")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else v for v in row.values() if not isinstance(v, list)), f"{len(row['skipped']):,}")
    console = Console()
    console.print(table)
    for row in found:
        console.print(Text(str(row)), soft_wrap=True)
