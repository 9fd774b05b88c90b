"""Judge backends: who answers a question, over which protocol.

- ``anthropic``: the official SDK (Messages API; ``ANTHROPIC_BASE_URL``,
  ``ANTHROPIC_API_KEY``). The answer is structured output through a forced
  ``submit_answer`` tool whose input schema is the answer's; a question with
  tools also gets the session tools, run in a loop until it submits.
- ``openai``: the official SDK, any OpenAI-compatible chat endpoint
  (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``): a ``json_schema`` response format,
  the session tools as function tools.
- ``claude``: the Claude Code CLI headless (``claude -p``, JSON output, the
  answer's JSON schema), in an empty working directory, with no built-in tools,
  no settings or hooks of ours, and, for a question with tools, only our MCP
  server (``kapacitor mcp judge``).

Every backend returns a ``Reply``: the answer (an object, or text to parse) and
the tokens it used per model. A call that times out or fails raises
``JudgeError``; the runner retries the question once. A judge that cannot answer
any question (no API key, the endpoint refuses the connection, the credentials
or the model; no ``claude`` executable) raises ``JudgeUnreachable``: the eval
stops at once and nothing is stored. The key is looked for before the SDK is
imported (importing it takes seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from kapacitor.eval.tools import TOOLS, SessionTools, ToolError
from kapacitor.pricing import cost_of

MAX_TURNS = 12
"""Model calls one question may take (tool calls included) before it counts as a loop."""
MAX_TOKENS = 4096
DEFAULT_MODELS = {"anthropic": "claude-sonnet-5", "openai": "gpt-5-mini", "claude": "sonnet"}
MCP_SERVER = "kapacitor_judge"
SUBMIT = "submit_answer"


class JudgeError(Exception):
    """A judge call failed: timeout, API error, no answer, a tool-use loop.
    ``usage`` holds the tokens spent before it failed."""

    def __init__(self, message: str, usage: dict[str, dict[str, int]] | None = None):
        super().__init__(message)
        self.usage = usage or {}


class JudgeUnreachable(JudgeError):
    """The judge cannot answer any question: no API key, a connection refused or
    unresolvable, credentials or model refused (401, 403, 404), no executable.
    Not retried; the eval stops and stores nothing."""


def _api_error(backend: str, sdk: Any, client: Any, exc: Exception, usage: dict[str, dict[str, int]]) -> JudgeError:
    """The ``JudgeError`` for an SDK's exception (``anthropic`` and ``openai`` share
    their error classes' names): unreachable for what no retry or other question
    can mend, a plain (per-question) error for the rest (timeouts, 429, 5xx)."""
    if isinstance(exc, sdk.APIConnectionError) and not isinstance(exc, sdk.APITimeoutError):
        return JudgeUnreachable(f"{backend} judge: cannot connect to {client.base_url} ({exc})", usage)
    if isinstance(exc, (sdk.AuthenticationError, sdk.PermissionDeniedError, sdk.NotFoundError)):
        return JudgeUnreachable(f"{backend} judge at {client.base_url}: {type(exc).__name__}: {exc}", usage)
    return JudgeError(f"{backend}: {type(exc).__name__}: {exc}", usage)


class NoApiKey(JudgeUnreachable):
    """No API key in the environment of the process that runs the judge
    (``kapacitor eval``'s, or for Run eval and auto-eval the server's):
    ``variable`` is the one to set there."""

    def __init__(self, backend: str, variable: str):
        super().__init__(f"{backend} judge: no API key: set {variable} in the environment `kapacitor eval` runs in")
        self.backend, self.variable = backend, variable


def _require_key(backend: str, *names: str) -> None:
    if not any(os.environ.get(name) for name in names):
        raise NoApiKey(backend, names[0])


@dataclass
class Reply:
    answer: Any
    usage: dict[str, dict[str, int]] = field(default_factory=dict)
    """model -> input_tokens, output_tokens, cache_read_input_tokens,
    cache_creation_input_tokens, requests."""


@dataclass
class Request:
    system: str
    prompt: str
    schema: dict[str, Any]
    tools: SessionTools | None = None
    timeout: float = 120.0


class Judge(Protocol):
    backend: str
    model: str

    def ask(self, request: Request) -> Reply: ...


def add_usage(total: dict[str, dict[str, int]], model: str, **tokens: int) -> None:
    row = total.setdefault(model, {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0,
                                   "cache_creation_input_tokens": 0, "requests": 0})
    row["requests"] += tokens.pop("requests", 1)
    for key, value in tokens.items():
        row[key] = row.get(key, 0) + int(value or 0)


def merge_usage(total: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> None:
    for model, row in more.items():
        add_usage(total, model, **row)


def usage_cost(usage: dict[str, dict[str, int]], provider: str) -> Decimal | None:
    """USD for the tokens, priced like sessions (genai-prices); None when a model has no price."""
    total = Decimal(0)
    for model, row in usage.items():
        price = cost_of(model, row, provider)
        if price is None:
            return None
        total += price
    return total


def provider_of(backend: str) -> str:
    return "openai" if backend == "openai" else "anthropic"


def _run_tool(tools: SessionTools, name: str, arguments: Any) -> tuple[str, bool]:
    """(output, is_error) of one session tool call."""
    try:
        return tools.call(name, arguments if isinstance(arguments, dict) else {}), False
    except ToolError as exc:
        return str(exc), True


class AnthropicJudge:
    backend = "anthropic"

    def __init__(self, model: str):
        _require_key("anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
        import anthropic

        self.model = model
        self._sdk = anthropic
        self.client = anthropic.Anthropic(max_retries=0)

    def ask(self, request: Request) -> Reply:
        tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                 for t in (TOOLS if request.tools else ())]
        tools.append({"name": SUBMIT, "description": "Submit your answer (call it exactly once, at the end).",
                      "input_schema": request.schema})
        messages: list[dict[str, Any]] = [{"role": "user", "content": request.prompt}]
        reply = Reply(None)
        for _ in range(MAX_TURNS):
            try:
                response = self.client.messages.create(
                    model=self.model, max_tokens=MAX_TOKENS, system=request.system, messages=messages,
                    tools=tools, tool_choice={"type": "any"}, timeout=request.timeout,
                )
            except self._sdk.APIError as exc:
                raise _api_error("anthropic", self._sdk, self.client, exc, reply.usage) from None
            u = response.usage
            add_usage(reply.usage, response.model or self.model, input_tokens=u.input_tokens,
                      output_tokens=u.output_tokens, cache_read_input_tokens=u.cache_read_input_tokens or 0,
                      cache_creation_input_tokens=u.cache_creation_input_tokens or 0)
            uses = [b for b in response.content if b.type == "tool_use"]
            submitted = next((b for b in uses if b.name == SUBMIT), None)
            if submitted is not None:
                reply.answer = submitted.input
                return reply
            if not uses or request.tools is None:
                reply.answer = "".join(getattr(b, "text", "") for b in response.content)
                return reply
            messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in response.content]})
            results = []
            for use in uses:
                output, failed = _run_tool(request.tools, use.name, use.input)
                results.append({"type": "tool_result", "tool_use_id": use.id, "content": output, "is_error": failed})
            messages.append({"role": "user", "content": results})
        raise JudgeError(f"no answer after {MAX_TURNS} model calls (tool-use loop)", reply.usage)


class OpenAIJudge:
    backend = "openai"

    def __init__(self, model: str):
        _require_key("openai", "OPENAI_API_KEY")
        import openai

        self.model = model
        self._sdk = openai
        self.client = openai.OpenAI(max_retries=0)

    def ask(self, request: Request) -> Reply:
        messages: list[dict[str, Any]] = [{"role": "system", "content": request.system},
                                          {"role": "user", "content": request.prompt}]
        options: dict[str, Any] = {
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": request.schema}},
        }
        if request.tools:
            options["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                                   "parameters": t.parameters}} for t in TOOLS]
        reply = Reply(None)
        for _ in range(MAX_TURNS):
            try:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, timeout=request.timeout, **options
                )
            except self._sdk.APIError as exc:
                raise _api_error("openai", self._sdk, self.client, exc, reply.usage) from None
            if response.usage is not None:
                u = response.usage
                cached = getattr(u.prompt_tokens_details, "cached_tokens", 0) or 0 if u.prompt_tokens_details else 0
                add_usage(reply.usage, response.model or self.model, input_tokens=u.prompt_tokens - cached,
                          output_tokens=u.completion_tokens, cache_read_input_tokens=cached)
            if not response.choices:
                raise JudgeError("openai: a reply without choices")
            message = response.choices[0].message
            if not message.tool_calls or request.tools is None:
                reply.answer = message.content or ""
                return reply
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                try:
                    arguments = json.loads(call.function.arguments or "{}")
                except ValueError:
                    arguments = None
                output, _ = (_run_tool(request.tools, call.function.name, arguments) if arguments is not None
                             else ("the arguments are not valid JSON", True))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
        raise JudgeError(f"no answer after {MAX_TURNS} model calls (tool-use loop)", reply.usage)


class ClaudeJudge:
    """The Claude Code CLI as judge. ``store_url`` and ``threshold`` go to the MCP
    server it starts for a question with tools; ``session_id`` names the session."""

    backend = "claude"

    def __init__(self, model: str, store_url: str, session_id: str, threshold: int, executable: str | None = None):
        self.model, self.store_url, self.session_id, self.threshold = model, store_url, session_id, threshold
        self.executable = executable or os.environ.get("KAPACITOR_CLAUDE") or shutil.which("claude") or "claude"

    def mcp_config(self) -> dict[str, Any]:
        """The ``--mcp-config`` JSON: our judge server over stdio, nothing else."""
        args = ["-m", "kapacitor", "--store", self.store_url, "mcp", "judge",
                "--session", self.session_id, "--threshold", str(self.threshold)]
        return {"mcpServers": {MCP_SERVER: {"type": "stdio", "command": sys.executable, "args": args, "alwaysLoad": True}}}

    def command(self, request: Request) -> list[str]:
        """The exact command line (the prompt goes on stdin: it can exceed one argument's limit)."""
        cmd = [
            self.executable, "-p", "--output-format", "json",
            "--json-schema", json.dumps(request.schema),
            "--model", self.model,
            "--system-prompt", request.system,
            "--tools", "",
            "--setting-sources", "",
            "--settings", json.dumps({"disableAllHooks": True}),
            "--strict-mcp-config",
            "--no-session-persistence",
        ]
        if request.tools is not None:
            cmd += ["--mcp-config", json.dumps(self.mcp_config()), "--allowedTools", f"mcp__{MCP_SERVER}"]
        return cmd

    def ask(self, request: Request) -> Reply:
        # our MCP server must be connected before the first model call, not in the
        # background; the client waits 5 s by default, and a loaded machine needs longer
        env = dict(os.environ, KAPACITOR_FOLLOW="0", MCP_CONNECTION_NONBLOCKING="0", MCP_CONNECT_TIMEOUT_MS="60000")
        with tempfile.TemporaryDirectory(prefix="kapacitor-judge-") as empty:
            try:
                done = subprocess.run(self.command(request), input=request.prompt, cwd=empty, env=env,
                                      capture_output=True, text=True, timeout=request.timeout)
            except subprocess.TimeoutExpired:
                raise JudgeError(f"claude: no answer within {request.timeout:g} s") from None
            except OSError as exc:
                raise JudgeUnreachable(f"claude judge: cannot run {self.executable}: {exc.strerror or exc}") from None
        try:
            out = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
        except ValueError:
            out = {}
        if not isinstance(out, dict) or not out:
            raise JudgeError(f"claude exited {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
        reply = Reply(None)
        for model, row in (out.get("modelUsage") or {}).items():
            add_usage(reply.usage, model, input_tokens=row.get("inputTokens", 0), output_tokens=row.get("outputTokens", 0),
                      cache_read_input_tokens=row.get("cacheReadInputTokens", 0),
                      cache_creation_input_tokens=row.get("cacheCreationInputTokens", 0))
        if out.get("is_error") or out.get("subtype") not in (None, "success"):
            raise JudgeError(f"claude: {out.get('subtype')}: {str(out.get('result', ''))[:300]}", reply.usage)
        reply.answer = out.get("structured_output") if out.get("structured_output") is not None else out.get("result", "")
        return reply


BACKENDS = ("anthropic", "openai", "claude")


def make_judge(backend: str, model: str | None, *, store_url: str, session_id: str, threshold: int) -> Judge:
    """A judge of ``backend`` (one of ``BACKENDS``) on ``model`` (its default when None).
    Raises ``JudgeUnreachable`` when the backend cannot be set up (no API key, no
    executable)."""
    model = model or DEFAULT_MODELS[backend]
    if backend == "anthropic":
        return AnthropicJudge(model)
    if backend == "openai":
        return OpenAIJudge(model)
    if backend == "claude":
        judge = ClaudeJudge(model, store_url, session_id, threshold)
        if shutil.which(judge.executable) is None:
            raise JudgeUnreachable(f"claude judge: no executable {judge.executable!r} (install Claude Code,"
                                   " or set KAPACITOR_CLAUDE to its path)")
        return judge
    raise ValueError(f"unknown judge {backend!r}; one of {', '.join(BACKENDS)}")
