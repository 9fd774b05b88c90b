"""Kapacitor: every coding-agent session captured as immutable events.

Import your Claude Code history, list its sessions with tokens and cost, and
serve the team dashboard (kapacitor serve). `kapacitor setup` installs hooks
so that every new session streams to the server live (sync delivers what a
down server missed).
The store defaults to a SQLite file in your data dir; point --store (or
KAPACITOR_STORE) elsewhere to share one.
"""

from __future__ import annotations

import importlib

import click

from kapacitor import __version__
from kapacitor.cli.common import AppContext
from kapacitor.config import default_store_url

COMMANDS = {
    "import": "kapacitor.cli.import_cmd:import_command",
    "sessions": "kapacitor.cli.sessions_cmd:sessions_command",
    "projections": "kapacitor.cli.projections_cmd:projections_group",
    "serve": "kapacitor.cli.serve_cmd:serve_command",
    "setup": "kapacitor.cli.setup_cmd:setup_command",
    "sync": "kapacitor.cli.sync_cmd:sync_command",
    "watch": "kapacitor.cli.watch_cmd:watch_command",
    "doctor": "kapacitor.cli.doctor_cmd:doctor_command",
    "eval": "kapacitor.cli.eval_cmd:eval_command",
    "mcp": "kapacitor.cli.mcp_cmd:mcp_group",
    "memory": "kapacitor.cli.memory_cmd:memory_group",
    "search": "kapacitor.cli.search_cmd:search_command",
    "recap": "kapacitor.cli.recap_cmd:recap_command",
    "errors": "kapacitor.cli.recap_cmd:errors_command",
    "validate-plan": "kapacitor.cli.recap_cmd:validate_plan_command",
    "pr": "kapacitor.cli.pr_cmd:pr_command",
    "scrub": "kapacitor.cli.scrub_cmd:scrub_command",
    "redact": "kapacitor.cli.redact_cmd:redact_command",
    "users": "kapacitor.cli.access_cmd:users_group",
    "tokens": "kapacitor.cli.access_cmd:tokens_group",
    "repos": "kapacitor.cli.access_cmd:repos_group",
    "store": "kapacitor.cli.store_cmd:store_group",
}
"""Command name → where it lives, imported only when it runs (or --help lists
it): ``kapacitor sessions --json`` need not load the server, the normalizer
and every read model first."""


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            module, attr = COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)


@click.group(help=__doc__, cls=_LazyGroup)
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
