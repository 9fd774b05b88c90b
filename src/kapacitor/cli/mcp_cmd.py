"""``kapacitor mcp``: Kapacitor's MCP servers (stdio, the official ``mcp`` SDK).

Without a subcommand it serves memory and session knowledge to the agent it
runs under (``memory/mcp_server.py``); ``kapacitor setup`` registers exactly
that with Claude Code. Subcommands are other servers (the eval judge's).
"""

from __future__ import annotations

import click


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
