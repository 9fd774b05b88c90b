"""``kapacitor serve``: the dashboard on a local port, projections running in-process."""

from __future__ import annotations

import socket

import click
from click.core import ParameterSource
from rich.console import Console

from kapacitor.capture.transcripts import default_roots
from kapacitor.cli.common import AppContext, refuse_damaged, store_path
from kapacitor.cli.import_progress import import_with_progress, summary_table
from kapacitor.config import data_dir
from kapacitor.store.base import display_url


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=7227, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--demo", is_flag=True, help="Load the bundled demo sessions into a fresh store first (a separate demo.db in the data dir unless --store is given).")
@click.option("--token", envvar="KAPACITOR_TOKEN", default="", help="Bearer token the ingest API requires from hooks on other machines ($KAPACITOR_TOKEN). Without one, ingest accepts 127.0.0.1 only.")
@click.option("--import", "import_first", is_flag=True, help="Import this machine's Claude Code history first (as `kapacitor import`, into the store served).")
@click.pass_context
def serve_command(ctx: click.Context, host: str, port: int, demo: bool, token: str, import_first: bool) -> None:
    """Serve the dashboard: timeline, repositories, each session's chat, trace and
    stats, updated live; the JSON API beside it (documented at /docs).

    The read models are brought up to date and kept so while the server runs.
    """
    import uvicorn

    app_ctx: AppContext = ctx.find_object(AppContext)
    err = Console(stderr=True)
    _port_free(host, port)  # before anything is imported
    if demo:
        from kapacitor.demo import extracted

        parent = ctx.find_root()
        if parent.get_parameter_source("store_url") in (ParameterSource.DEFAULT, None):
            fresh = data_dir() / "demo.db"
            for stale in fresh.parent.glob("demo.db*"):
                stale.unlink()
            app_ctx = AppContext(f"sqlite://{fresh}")
            ctx.call_on_close(app_ctx.close)
        with extracted() as (projects, resolve):
            summary = import_with_progress(app_ctx.store, [projects], err, resolve)
        err.print(f"demo: {summary.events_added:,} events from {summary.files} transcripts into {app_ctx.store_url}")
    store_path(app_ctx)  # a clear error for a store the dashboard cannot serve
    refuse_damaged(app_ctx)  # before anything is written to it
    if import_first:
        roots = default_roots()
        if not roots:
            err.print("[yellow]No Claude Code history found[/] (looked in $CLAUDE_CONFIG_DIR, ~/.claude, ~/.config/claude).")
        err.print(summary_table(import_with_progress(app_ctx.store, roots, err)))
    from kapacitor.server.app import create_app

    app = create_app(app_ctx.store_url, token=token)
    err.print(f"Kapacitor dashboard on [bold]http://{host}:{port}/[/] (store {display_url(app_ctx.store_url)}); Ctrl+C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _port_free(host: str, port: int) -> None:
    """A one-line error now, rather than after the import, when ``port`` is taken."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (is another server running? choose one with --port)"
            ) from None
