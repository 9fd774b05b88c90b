"""``kapacitor mcp``: memory and session knowledge as MCP tools, over stdio.

Claude Code starts it (``kapacitor setup`` registers it; the plugin carries it)
and the agent calls its tools. It is a client of the Kapacitor server the hooks
send to (``client.json`` / ``$KAPACITOR_SERVER``, with that bearer token), so it
answers for the user whose token it holds, through the server's visibility gate.

The session it runs in comes from ``$CLAUDE_CODE_SESSION_ID`` (Claude Code sets
it for its MCP servers), the repository from the working directory's git
remote: ``remember`` links a fact to that session, and the session tools default
to it. A failure is an MCP tool error whose text says what went wrong.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from kapacitor.capture.client_config import ClientConfig, load
from kapacitor.capture.gitinfo import project_of, resolve_context
from kapacitor.memory.facts import ORG

NAME = "kapacitor"
TIMEOUT = 20.0
INSTRUCTIONS = (
    "Kapacitor keeps every Claude Code session of this team as events. Use `remember` to keep a short, durable fact "
    "about this repository (a command that works, a trap to avoid) for later sessions; `recall` to read the facts; "
    "`search_sessions` to find where something was done before; `session_recap`, `session_errors`, `get_transcript`, "
    "`get_tool_result` to look into a session; `pr_sessions` for the sessions behind a pull request."
)


class Api:
    """The server's JSON API, as this user (bearer token)."""

    def __init__(self, config: ClientConfig, session_id: str = "", cwd: str = "", user: str = ""):
        self.config, self.session_id, self.user = config, session_id, user
        self.repo = project_of(cwd)
        headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
        self.http = httpx.Client(base_url=config.server, headers=headers, timeout=TIMEOUT)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ToolError(f"the Kapacitor server at {self.config.server} is not reachable ({exc}); is `kapacitor serve` running?") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:300]
            raise ToolError(f"Kapacitor server: {detail if isinstance(detail, str) else json.dumps(detail)} (HTTP {response.status_code})")
        return response.json()

    def session(self, session_id: str) -> str:
        chosen = session_id or self.session_id
        if not chosen:
            raise ToolError("give a session_id: this MCP server does not know the current session ($CLAUDE_CODE_SESSION_ID is not set)")
        return quote(chosen, safe="")


def build(api: Api) -> MCPServer:
    server = MCPServer(NAME, instructions=INSTRUCTIONS, log_level="WARNING")  # not a line per HTTP call in the client's MCP log

    @server.tool()
    def remember(fact: str, category: str = "", scope: str = "") -> str:
        """Keep a short fact for later sessions (recalled at their start): a command that
        works, a convention, a trap to avoid. scope: OWNER/REPO (default: this repository,
        or this directory when it has no GitHub remote) or "org" for the whole team;
        category: one word such as testing, build, style."""
        chosen = scope or api.repo or ORG
        answer = api.call("POST", "/api/memory/facts", json={
            "text": fact, "repo": chosen, "category": category, "session_id": api.session_id, "by": "agent",
            "user": api.user})
        return f"Remembered as fact {answer['fact_id']} ({chosen})."

    @server.tool()
    def recall(query: str = "", repo: str = "") -> str:
        """The facts kept for this repository or directory (or repo: OWNER/REPO) and for the team,
        most relevant and most used first; with query, only facts containing its words."""
        chosen = repo or api.repo
        if not query:
            answer = api.call("POST", "/api/memory/recall", json={"repo": chosen, "session": api.session_id, "via": "mcp"})
            return answer["context"] or f"No facts kept for {chosen or 'the team'} yet."
        found = [f for scope in dict.fromkeys([chosen, ORG]) if scope
                 for f in api.call("GET", "/api/memory/facts", params={"repo": scope, "q": query})]
        return "\n".join(f"- [{f['fact_id']}] ({f['scope']}, {f['category']}) {f['text']}" for f in found) or f"No facts match {query!r}."

    @server.tool()
    def search_sessions(query: str, repo: str = "", user: str = "", since: str = "", limit: int = 10) -> str:
        """Full-text search across sessions: prompts, assistant text, tool inputs and
        outputs, file paths. Every word must occur, in any of its forms ("failing" finds
        "failed"); "quote" a phrase. since: a day (YYYY-MM-DD, UTC) or a duration
        back from now (12h, 7d, 2w)."""
        hits = api.call("GET", "/api/search", params={"q": query, "repo": repo, "user": user, "since": since, "limit": limit})
        return json.dumps([{k: h[k] for k in ("session_id", "title", "repo", "kind", "tool", "snippet", "timestamp", "link",
                                              "ranked_within")}
                           for h in hits], indent=1, ensure_ascii=False)

    @server.tool()
    def session_recap(session_id: str = "") -> str:
        """A session's plan, files written and edited, test runs and their result, and
        how many tool calls failed (default: the current session)."""
        return json.dumps(api.call("GET", f"/api/sessions/{api.session(session_id)}/recap"), indent=1, ensure_ascii=False)

    @server.tool()
    def session_errors(session_id: str = "") -> str:
        """A session's failed tool calls: tool, input, error text, chat position (default: the current session)."""
        return json.dumps(api.call("GET", f"/api/sessions/{api.session(session_id)}/errors"), indent=1, ensure_ascii=False)

    @server.tool()
    def get_transcript(session_id: str = "", start: int = 0, limit: int = 50) -> str:
        """A session's transcript as markdown, limit chat items from start; the last line
        says where the next page starts."""
        page = api.call("GET", f"/api/sessions/{api.session(session_id)}/transcript", params={"start": start, "limit": limit})
        more = f"next page: start={page['next']}" if page["next"] is not None else "end of transcript"
        return f"{page['markdown']}\n({page['total']} items; {more})"

    @server.tool()
    def get_tool_result(session_id: str, call_id: str) -> str:
        """One tool call of a session with its whole result (call ids are in transcripts and errors)."""
        answer = api.call("GET", f"/api/sessions/{api.session(session_id)}/tool-results/{quote(call_id, safe='')}")
        return json.dumps(answer, indent=1, ensure_ascii=False)

    @server.tool()
    def pr_sessions(pr: str) -> str:
        """The sessions behind a pull request OWNER/REPO#N (on its head branch) and the
        files each touched (the server asks the GitHub CLI)."""
        repo, _, number = pr.partition("#")
        if not number.isdigit() or "/" not in repo:
            raise ToolError(f"a pull request is OWNER/REPO#NUMBER, not {pr!r}")
        return json.dumps(api.call("GET", f"/api/prs/{repo}/{number}"), indent=1, ensure_ascii=False)

    return server


def serve() -> None:
    """Serve over stdio until the client closes it."""
    cwd = os.getcwd()
    api = Api(load(), os.environ.get("CLAUDE_CODE_SESSION_ID", ""), cwd, str(resolve_context(cwd).get("user", "")))
    build(api).run("stdio")
