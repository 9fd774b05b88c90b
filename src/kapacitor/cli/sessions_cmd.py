"""``kapacitor sessions``: one row per session, newest first."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, TypeVar

import click

from kapacitor import money
from kapacitor.cli.common import AppContext, pass_app, read_db
from kapacitor.projections import live_status, ownership, sessions
from kapacitor.projections.runner import ProjectionRunner, ProjectionStalled

if TYPE_CHECKING:
    from rich.table import Table

    from kapacitor.projections.session_summary import SessionSummary
    from kapacitor.store.readdb import ReadDb

T = TypeVar("T")


def newest_sessions(
    app: AppContext, limit: int | None, read: Callable[[ReadDb, int | None], T] = sessions.newest  # type: ignore[assignment]
) -> T:
    """Bring the ``sessions`` read model (and ``ownership``, which it reads, and
    ``live_status``, which says whether a subagent without a result still runs) up
    to the head of the log (nothing to do when it is), then ``read`` it (default:
    the sessions as summaries)."""
    db = read_db(app, create=False)  # first: a missing store is an error, not created
    runner = ProjectionRunner(app.store, db, [ownership.PROJECTION, sessions.PROJECTION, live_status.PROJECTION])
    try:
        try:
            runner.catch_up()
        except ProjectionStalled as exc:
            raise click.ClickException(f"the sessions read model cannot catch up: {exc}") from None
        for failure in runner.failures.values():
            click.echo(f"warning: {failure} (skipped; see `kapacitor projections status`)", err=True)
        return read(runner.conn, limit)
    finally:
        runner.close()


def _zone(ctx: click.Context, param: click.Parameter, name: str | None) -> tzinfo | None:
    """``--tz``: an IANA zone, or None for the machine's own."""
    if name is None:
        return None
    from kapacitor.times import zone

    found = zone(name)
    if found is None:
        raise click.BadParameter(f"unknown time zone {name!r} (an IANA name: Europe/Oslo, America/New_York, UTC)")
    return found


@click.command("sessions")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array: the keys of the server's /sessions/{id}.json "
              "(docs/json-api.md), times in ISO 8601 with their zone's offset.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N sessions.")
@click.option("--wide", is_flag=True, help="Every column, full session ids and titles, one line per session and model, "
              "never wrapped: wider than most terminals (scroll, pipe to `less -S`, or use --json).")
@click.option("--tz", "tz", metavar="AREA/CITY", callback=_zone, default=None,
              help="Show times in this IANA zone (e.g. UTC, Europe/Oslo); default the machine's local zone.")
@pass_app
def sessions_command(app: AppContext, as_json: bool, limit: int | None, wide: bool, tz: tzinfo | None) -> None:
    """List sessions, newest first: one line each with a short id (the first 8
    characters; the dashboard and --json take them whole), title, repository or
    directory, start (in the local zone, or --tz, named), tool calls, tokens and
    cost, cut to fit the terminal. --wide adds branch, user, duration, prompts,
    tools by name, files and tokens per model."""
    if as_json:
        # The rows as the read model keeps them (no fold state decoded, no
        # re-encoding: only their times rewritten in the zone), written as read.
        newest_sessions(app, limit, lambda conn, n: _write_json(conn, n, tz))
        return
    from rich.console import Console  # the table's imports: --json needs none of them

    rows = newest_sessions(app, limit, sessions.newest)
    if not rows:
        click.echo("No sessions yet. Run `kapacitor import` to import your Claude Code history.")
        return
    console = Console()
    if wide:
        # Cells are never wrapped: the table takes the width it needs and a narrow
        # terminal scrolls, rather than folding 12 columns into hundreds of lines.
        from rich.measure import Measurement

        table = _wide_table(rows, tz)
        needed = Measurement.get(console, console.options.update(width=1_000_000), table).maximum
        Console(width=max(console.width, needed)).print(table)
    else:
        console.print(_table(rows, console.width, tz))


def _write_json(conn: ReadDb, limit: int | None, tz: tzinfo | None) -> None:
    """The ``--json`` array on standard output, a row at a time: each stored row
    (the server's ``/sessions/{id}.json`` keys but its own ``status``, ``owner``,
    ``visibility``) with its times in ``tz`` (None: local), in the server's one
    form (``json_times``), at the places the read model keeps beside it."""
    from kapacitor.json_times import zoned_at

    out, between = sys.stdout, "["
    gc.freeze()  # what the imports made stays: no collection here or at exit walks it again
    for text in zoned_at(sessions.newest_json(conn, limit), tz):
        out.write(between)
        out.write(text)
        between = ",\n"
    out.write("[]\n" if between == "[" else "]\n")


# session, started, tools, tokens, cost: their widths, and the one-space rule between 7 columns
_WIDTHS = {"session": 8, "started": 16, "tools": 5, "tokens": 6, "cost": 7}
_FIXED = sum(_WIDTHS.values()) + 6
_TITLE_MIN = 16  # what a title keeps when an owner/repo needs the room


def _table(rows: list[SessionSummary], width: int, tz: tzinfo | None = None) -> Table:
    """One line per session that fits ``width`` (80 columns and up): the title and
    the repository share what the fixed columns leave, cut with an ellipsis. An
    ``owner/repo`` is kept whole when the title can give way (it is cut at its end
    if not); a directory is cut at its start, where it says least."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from kapacitor.pricing import price_source

    free = max(16, width - _FIXED)
    table = Table(caption=f"cost: {price_source()} (— = no price); --wide: every column",
                  box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    table.add_column("session", no_wrap=True, width=_WIDTHS["session"])
    repos = [len(s.repository) for s in rows if s.repository]
    where = max(free - free * 3 // 5, min(max(repos, default=0), free - _TITLE_MIN))
    table.add_column("title", no_wrap=True, overflow="ellipsis", width=free - where)
    table.add_column("repo / dir", no_wrap=True, overflow="ellipsis", width=where)
    for name in ("started", "tools", "tokens", "cost"):
        table.add_column(name, no_wrap=True, justify="left" if name.startswith("started") else "right", width=_WIDTHS[name])
    for s in rows:
        row = s.as_json()
        total = sum(t[k] for t in row["tokens"].values() for k in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"))
        table.add_row(
            s.session_id[:8],
            Text(" ".join(s.title.split())),
            Text(s.repository) if s.repository else Text(_tail(s.cwd, where)),
            _started(s.started, tz),
            f"{sum(s.tool_calls.values()):,}",
            _short(total),
            money.usd(row["cost_usd"]),
        )
    return table


def _started(stamp: str | None, tz: tzinfo | None = None) -> str:
    """A start in ``tz`` (None: the machine's zone), named, in at most 16 characters:
    month, day and time this year (``11-25 20:58 CET``), the date before
    (``2025-11-25 CET``); ``--wide`` gives it whole."""
    from kapacitor import times

    moment = times.parse(stamp)
    if moment is None:
        return ""
    this_year = moment.astimezone(tz).year == datetime.now(tz).astimezone(tz).year
    return times.shown(stamp, tz, "%m-%d %H:%M" if this_year else "%Y-%m-%d")


def _tail(path: str, width: int) -> str:
    """A path cut at its start, where it says least: ``…/src/api-server``."""
    return path if len(path) <= width else "…" + path[len(path) - width + 1 :]


def _short(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _wide_table(rows: list[SessionSummary], tz: tzinfo | None = None) -> Table:
    from rich.table import Table
    from rich.text import Text

    from kapacitor import times
    from kapacitor.pricing import price_source

    table = Table(caption=f"cost: {price_source()} (— = model without a price); times in {'the local zone' if tz is None else tz}")
    for name in ("session", "title", "repo / dir", "branch", "user", "started", "duration", "prompts", "tools", "files", "tokens (in/out/cache r/w)", "cost"):
        table.add_column(name, no_wrap=True)
    for s in rows:
        row = s.as_json()
        duration = row["duration_seconds"]
        tools = ", ".join(f"{k} {v}" for k, v in sorted(s.tool_calls.items(), key=lambda kv: -kv[1]))
        tokens = "\n".join(
            f"{model}: {t['input_tokens']:,}/{t['output_tokens']:,}/{t['cache_read_input_tokens']:,}/{t['cache_creation_input_tokens']:,}"
            for model, t in row["tokens"].items()
        )
        table.add_row(
            s.session_id,
            Text(s.title[:200]),
            Text(s.repository or s.cwd),
            Text(s.branch),
            Text(s.user),
            times.shown(s.started, tz),
            "" if duration is None else f"{duration:,.0f} s",
            str(s.prompts),
            Text(f"{sum(s.tool_calls.values())} ({tools})" if tools else "0"),
            str(len(s.files_changed)),
            Text(tokens),
            money.usd(row["cost_usd"])
            + "".join(f"\n+{n:,} tokens of {model} unpriced" for model, n in row["unpriced_tokens"].items()),
        )
    return table
