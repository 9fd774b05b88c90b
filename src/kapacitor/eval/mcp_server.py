"""``kapacitor mcp judge --session ID``: the session tools as an MCP server over
stdio (the official ``mcp`` SDK), for the ``claude`` judge backend.

It serves exactly ``tools.TOOLS`` through ``SessionTools.call``: the same code
the API backends run, over the one session it was started for.
"""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from kapacitor.eval.tools import TOOLS, SessionTools, ToolError

NAME = "kapacitor-judge"


def build_server(tools: SessionTools) -> Server[Any]:
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[
            types.Tool(name=t.name, description=t.description, input_schema=t.parameters) for t in TOOLS
        ])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            text, failed = await anyio.to_thread.run_sync(tools.call, params.name, params.arguments), False
        except ToolError as exc:
            text, failed = str(exc), True
        return types.CallToolResult(content=[types.TextContent(text=text)], is_error=failed)

    return Server(NAME, on_list_tools=list_tools, on_call_tool=call_tool)


def serve(tools: SessionTools) -> None:
    """Serve until the client closes stdin."""
    server = build_server(tools)

    async def main() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
