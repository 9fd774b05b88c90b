"""``kapacitor serve``: the dashboard on a local port, projections running in-process."""

from __future__ import annotations

import shlex
import socket
from datetime import UTC, datetime
from pathlib import Path

import click
from click.core import ParameterSource
from rich.console import Console
from rich.markup import escape

from kapacitor.capture.transcripts import default_roots, no_history_message
from kapacitor.cli.common import AppContext, kapacitor_command, refuse_damaged
from kapacitor.cli.import_progress import import_with_progress, summary_table
from kapacitor.config import demo_store_path
from kapacitor.store.base import display_url


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on. Anything but loopback needs --auth.")
@click.option("--port", default=7227, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--demo", is_flag=True, help="Serve the bundled demo sessions: from a separate demo.db in the data dir unless --store is given, imported there the first time and reused as it is after (see docs/demo.md).")
@click.option("--token", envvar="KAPACITOR_TOKEN", default="", help="A shared bearer token ingest accepts besides users' tokens ($KAPACITOR_TOKEN; better in the environment or --token-file than on a command line). Without any, ingest accepts 127.0.0.1 only.")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), default=None, help="Read --token from this file.")
@click.option("--auth", is_flag=True, help="Team mode: every page and API needs a signed-in user (kapacitor users / tokens); may listen on any --host.")
@click.option("--oidc-issuer", envvar="KAPACITOR_OIDC_ISSUER", default="", help="Sign-in through this OpenID Connect provider (its issuer URL; with --auth). The client secret comes from $KAPACITOR_OIDC_CLIENT_SECRET.")
@click.option("--oidc-client-id", envvar="KAPACITOR_OIDC_CLIENT_ID", default="", help="This server's client id at the OIDC provider.")
@click.option("--public-url", envvar="KAPACITOR_PUBLIC_URL", default="", help="Where users reach the server (https://... behind TLS: the session cookie is then Secure).")
@click.option("--import", "import_first", is_flag=True, help="Import this machine's Claude Code history first (as `kapacitor import`, into the store served).")
@click.pass_context
def serve_command(ctx: click.Context, host: str, port: int, demo: bool, token: str, token_file: str | None,
                  auth: bool, oidc_issuer: str, oidc_client_id: str, public_url: str, import_first: bool) -> None:
    """Serve the dashboard: timeline, repositories, each session's chat, trace and
    stats, updated live; the JSON API beside it (documented at /docs).

    The read models are brought up to date and kept so while the server runs.
    Without --auth the server is this machine's only: it listens on loopback and
    answers loopback host names only. With --auth (team mode) users sign in
    (see docs/team.md) and each sees the sessions their visibility allows.
    """
    import uvicorn

    from kapacitor.server.guard import LOOPBACK_NAMES, host_name
    from kapacitor.server.oidc import OidcSettings

    if not auth and host_name(host) not in LOOPBACK_NAMES:
        raise click.ClickException(f"--host {host} would serve every session to the network: add --auth (users sign in) or listen on 127.0.0.1")
    settings = OidcSettings.from_env(oidc_issuer, oidc_client_id)
    if settings is not None and not auth:
        raise click.ClickException("--oidc-issuer is sign-in for a team server: add --auth")
    if token_file:
        token = Path(token_file).read_text().strip()

    app_ctx: AppContext = ctx.find_object(AppContext)
    err = Console(stderr=True)
    _port_free(host, port)  # before anything is imported
    if demo:
        parent = ctx.find_root()
        if parent.get_parameter_source("store_url") in (ParameterSource.DEFAULT, None):
            app_ctx = AppContext(f"sqlite://{demo_store_path()}")
            ctx.call_on_close(app_ctx.close)
        load_demo(app_ctx, err)
    refuse_damaged(app_ctx)  # before anything is written to it
    if import_first:
        roots = default_roots()
        if not roots:
            err.print(no_history_message(), markup=False, soft_wrap=True)
        err.print(summary_table(import_with_progress(app_ctx.store, roots, err)))
    from kapacitor.server.app import create_app

    app = create_app(app_ctx.store_url, token=token, auth=auth, public_url=public_url, oidc_settings=settings)
    if auth and not app.state.has_users():
        cli = kapacitor_command()
        err.print(f"[yellow]No users yet:[/] {cli} users add NAME --admin, then {cli} tokens create --user NAME", soft_wrap=True)
    err.print(f"Kapacitor dashboard on [bold]http://{host}:{port}/[/] (store {display_url(app_ctx.store_url)}); Ctrl+C stops it", soft_wrap=True)
    if demo:
        command = f"{kapacitor_command()} --store {shlex.quote(display_url(app_ctx.store_url))} sessions"
        err.print(f"The CLI reads this store with: [bold]{escape(command)}[/]", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def load_demo(app_ctx: AppContext, err: Console) -> None:
    """The bundled demo into ``app_ctx``'s store, unless that store already holds
    this very archive. Nothing is ever deleted: another server may be serving the
    store. The first import adds the demo team's facts, comments and marks. A
    store holding an older archive gets the new one dated for the same
    moment (same ids: what it already has is not imported twice); a demo store
    from before the archive was recorded is served as it is."""
    from kapacitor.demo import BY_DAY, add_extras, archive_digest, demo_record, extracted, record_demo

    store, shown = app_ctx.store, display_url(app_ctx.store_url)
    digest, record = archive_digest(), demo_record(app_ctx.store)
    fresh = "stop every server on it and delete it, or give another --store"
    if record.get("sha256") == digest or (not record and app_ctx.store_url == f"sqlite://{demo_store_path()}"
                                          and store.head_position()):
        err.print(f"demo: serving the demo already in {shown} (for a fresh one: {fresh})", soft_wrap=True)
        return
    now = datetime.fromisoformat(record["now"]) if record.get("now") else datetime.now(UTC)
    by_day = not record or record.get("dated") == BY_DAY  # a store dated the older way keeps it (same ids)
    with extracted(now=now, by_day=by_day) as (projects, resolve):
        summary = import_with_progress(store, [projects], err, resolve)
    added = {} if record else add_extras(store)  # once per store: they get new ids each time
    record_demo(store, digest, now, by_day)
    extras = "".join(f", {n} {kind}" for kind, n in added.items())
    err.print(f"demo: {summary.events_added:,} events from {summary.files} transcripts{extras} into {shown}", soft_wrap=True)


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
