"""Kapacitor: every coding-agent session captured as immutable events.

Import your Claude Code history, list its sessions with tokens and cost, and
serve the team dashboard (kapacitor serve). `kapacitor setup` installs hooks
so that every new session streams to the server live (sync delivers what a
down server missed).
The store defaults to a SQLite file in your data dir; point --store (or
KAPACITOR_STORE) elsewhere to share one.
"""

from __future__ import annotations

import click

from kapacitor import __version__
from kapacitor.cli.common import AppContext
from kapacitor.config import default_store_url


@click.group(help=__doc__)
@click.version_option(__version__, prog_name="kapacitor")
@click.option(
    "--store",
    "store_url",
    envvar="KAPACITOR_STORE",
    default=default_store_url,
    show_default="a SQLite file in the user data dir",
    help="Event store URL: sqlite:///path/to/file.db or postgresql://user@host/database",
)
@click.pass_context
def cli(ctx: click.Context, store_url: str) -> None:
    ctx.obj = AppContext(store_url)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    cli(prog_name="kapacitor")


@cli.command("hook", context_settings={"ignore_unknown_options": True})
@click.argument("event")
def hook_command(event: str) -> None:
    """What Claude Code's hooks run (installed by `kapacitor setup`): reads the
    hook's JSON payload from stdin, sends it with the session's new transcript
    lines to the server (spooling them when it is down) and exits 0, fast."""
    from kapacitor.capture.hook import main as hook_main

    raise SystemExit(hook_main([event]))


from kapacitor.cli import (  # noqa: E402  (commands register on cli)
    access_cmd,
    doctor_cmd,
    import_cmd,
    projections_cmd,
    serve_cmd,
    sessions_cmd,
    setup_cmd,
    store_cmd,
    sync_cmd,
    watch_cmd,
)

cli.add_command(import_cmd.import_command)
cli.add_command(sessions_cmd.sessions_command)
cli.add_command(projections_cmd.projections_group)
cli.add_command(serve_cmd.serve_command)
cli.add_command(setup_cmd.setup_command)
cli.add_command(sync_cmd.sync_command)
cli.add_command(watch_cmd.watch_command)
cli.add_command(doctor_cmd.doctor_command)
cli.add_command(access_cmd.users_group)
cli.add_command(access_cmd.tokens_group)
cli.add_command(access_cmd.repos_group)
cli.add_command(store_cmd.store_group)
