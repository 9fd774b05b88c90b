"""``kapacitor mcp``: Kapacitor's MCP servers (stdio, the official ``mcp`` SDK).

Without a subcommand it serves memory and session knowledge to the agent it
runs under (``memory/mcp_server.py``); ``kapacitor setup`` registers exactly
that with Claude Code. Subcommands are other servers (the eval judge's).
"""

from __future__ import annotations

import click

from kapacitor.cli.common import AppContext, pass_app


@click.group("mcp", invoke_without_command=True)
@click.pass_context
def mcp_group(ctx: click.Context) -> None:
    """Run Kapacitor's MCP server over stdio: the tools remember, recall,
    search_sessions, session_recap, session_errors, get_transcript (paged),
    get_tool_result and pr_sessions, answered by the Kapacitor server the hooks
    send to, with its token. `kapacitor setup` registers it with Claude Code."""
    if ctx.invoked_subcommand is None:
        from kapacitor.memory.mcp_server import serve

        serve()


@mcp_group.command("judge")
@click.option("--session", "session_id", required=True,
              help="The session the tools may read (and no other): its id, or a prefix only it has.")
@click.option("--threshold", type=click.IntRange(min=1), default=None, show_default="2000 bytes, as kapacitor eval",
              help="The trace threshold the judge saw (which outputs the summary lists as truncated).")
@pass_app
def mcp_judge_command(app: AppContext, session_id: str, threshold: int | None) -> None:
    """Serve the session tools (session_summary, search_session, transcript_page,
    tool_output, file_content) of one session over stdio, for a judge."""
    from kapacitor.cli.session_ids import resolved
    from kapacitor.eval import session as session_mod
    from kapacitor.eval.access import judge_may_read
    from kapacitor.eval.compact import DEFAULT_THRESHOLD
    from kapacitor.eval.mcp_server import serve
    from kapacitor.eval.tools import SessionTools

    if not judge_may_read(app.store, session_id):  # the judge names its session in full: no read model to catch up
        session_id = resolved(app, session_id)
    serve(SessionTools(session_mod.load(app.store, session_id), threshold or DEFAULT_THRESHOLD))
