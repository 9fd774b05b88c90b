"""Claude Code's newer record types and fields (2.1.2xx–2.1.332): where each goes.

``claude_code`` maps the conversation; this module maps what newer clients write
beside it, so that every record type has a home and none floods the import with
warnings or the chat with notices:

- ``api-request``: one per model API call (the requested model, effort, token
  limit, thinking mode, the request shape's hash). Assistant records point to it
  with ``requestRef``; ``assistant_fields`` copies that link onto their events.
- ``api-request-shape`` (system prompt and tool schemas) and ``api-request-blob``
  (one message of a request), both named by their content hash. Their text stays
  in the raw line (which the store keeps once per distinct content, see
  ``store.blobs``); the event carries only the hash and a summary.
- ``tools-used``, ``atis-latch`` (client state), ``file-history-delta`` (file
  history), ``cost-state`` (the client's own running usage and cost per model,
  requests the transcript does not record included).
- ``<task-notification>`` user records: a background subagent finished
  (``task_notification``).
- ``permissionDecision`` / ``toolDenialKind`` on a tool result: a denial, and who
  or what denied it (``denial_of``).
- Tags the client wraps a tool result in for the model (``result_text``): a
  subagent's answer opens with ``<tools-used-before-summary>Bash, Read</…>``
  (the tools are in ``toolUseResult.toolsUsed`` too), a refused call reads
  ``<tool_use_error>…</tool_use_error>``. The event's text is what the tool
  answered; the raw line keeps the tags.

Each mapper returns the payload only; ``claude_code`` wraps it as an event of the line.
"""

from __future__ import annotations

import re
from typing import Any

from kapacitor.events import ClientStateRecorded

CLIENT_RECORD_TYPES = frozenset(
    "api-request api-request-shape api-request-blob tools-used atis-latch cost-state file-history-delta".split()
)
"""Record types ``client_record`` maps (all as ``ClientStateRecorded`` of that kind)."""

_BIG = 2000  # characters: a field longer than this stays in the raw line only


def client_record(record: dict[str, Any], common: frozenset[str]) -> ClientStateRecorded:
    """The event for one of ``CLIENT_RECORD_TYPES``: its small fields, and for the
    big ones a summary (the raw line keeps them whole)."""
    kind = str(record["type"])
    fields = _SUMMARIES.get(kind, _small_fields)(record)
    fields = {k: v for k, v in fields.items() if k not in common}
    return ClientStateRecorded(timestamp=str(record.get("timestamp", "")), kind=kind, extensions={"claude_code": fields})


def _small_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if len(repr(v)) <= _BIG}


def _api_request(record: dict[str, Any]) -> dict[str, Any]:
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    thinking = params.get("thinking") if isinstance(params.get("thinking"), dict) else {}
    output = params.get("output_config") if isinstance(params.get("output_config"), dict) else {}
    return {
        "request_ref": record.get("id"),
        "model": params.get("model", ""),
        "effort": output.get("effort", ""),
        "max_tokens": params.get("max_tokens"),
        "thinking": thinking.get("type", ""),
        "betas": params.get("betas") or [],
        "shape_hash": record.get("shapeHash", ""),
        "query_source": record.get("querySource", ""),
        "base": record.get("base"),
        "messages_kept": record.get("keep"),
        "tail": record.get("tail") or [],
    }


def _request_shape(record: dict[str, Any]) -> dict[str, Any]:
    shape = record.get("shape") if isinstance(record.get("shape"), dict) else {}
    system = shape.get("system") if isinstance(shape.get("system"), list) else []
    tools = shape.get("tools") if isinstance(shape.get("tools"), list) else []
    return {
        "shape_hash": record.get("shapeHash", ""),
        "system_blocks": len(system),
        "system_chars": sum(len(str(b.get("text", ""))) for b in system if isinstance(b, dict)),
        "tools": [str(t.get("name", "")) for t in tools if isinstance(t, dict)],
    }


def _request_blob(record: dict[str, Any]) -> dict[str, Any]:
    message = record.get("message") if isinstance(record.get("message"), dict) else {}
    content = message.get("content")
    chars = len(content) if isinstance(content, str) else sum(len(str(b.get("text", ""))) for b in content or [] if isinstance(b, dict))
    return {"hash": record.get("hash", ""), "role": message.get("role", ""), "chars": chars}


def _cost_state(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "total_cost_usd": record.get("totalCostUSD"),
        "start_time": record.get("startTime"),
        "model_usage": record.get("modelUsage") if isinstance(record.get("modelUsage"), dict) else {},
        "has_unknown_model_cost": bool(record.get("hasUnknownModelCost")),
        "api_duration_ms": record.get("totalAPIDuration"),
        "tool_duration_ms": record.get("totalToolDuration"),
        "lines_added": record.get("totalLinesAdded"),
        "lines_removed": record.get("totalLinesRemoved"),
    }


_SUMMARIES = {
    "api-request": _api_request,
    "api-request-shape": _request_shape,
    "api-request-blob": _request_blob,
    "cost-state": _cost_state,
}


# --- fields on conversation records ----------------------------------------------


def assistant_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What a newer assistant record adds: the API request it answers
    (``requestRef``), the model asked for (the served one is ``message.model``), the
    effort and thinking time (thinking tokens are in the usage). Empty for older clients."""
    out = {
        "request_ref": record.get("requestRef"),
        "requested_model": record.get("requestedModel"),
        "effort": record.get("effort"),
        "thinking_ms": record.get("thinkingDurationMs"),
    }
    return {k: v for k, v in out.items() if v is not None}


def thinking_usage(usage: dict[str, Any]) -> dict[str, int]:
    """``{"thinking_tokens": n}`` where the API reports how many of the output tokens
    were thinking (``output_tokens_details``, 2.1.3xx clients), else nothing."""
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("thinking_tokens"), int):
        return {"thinking_tokens": details["thinking_tokens"]}
    return {}


def denial_of(record: dict[str, Any]) -> dict[str, str] | None:
    """Who or what refused a tool call, from a tool result's ``toolDenialKind`` and
    ``permissionDecision`` (2.1.3xx); None when the record says it was not refused
    (or does not say)."""
    decision = record.get("permissionDecision")
    decision = decision if isinstance(decision, dict) else {}
    kind = record.get("toolDenialKind")
    if not kind and decision.get("decision") not in ("reject", "deny"):
        return None
    return {
        "denial_kind": str(kind or "denied"),
        "decided_by": str(decision.get("source") or ("user" if str(kind).startswith("user") else "")),
        "reason": str(decision.get("reasonCode") or decision.get("reasonType") or ""),
    }


_BARE_COMMAND = re.compile(r"^/[A-Za-z0-9:_-]+(\s.*)?$", re.DOTALL)


def local_command_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What a ``system``/``local_command`` record says of a slash command: the one
    the client ran (``commandRun``), or one it refused (the record's content is the
    bare command, e.g. ``/login`` in print mode, and no ``<command-name>`` record
    follows), and its ``commandOutcome``."""
    out: dict[str, Any] = {}
    content = record.get("content")
    if isinstance(record.get("commandRun"), dict):
        out["command_run"] = True
    elif isinstance(content, str) and _BARE_COMMAND.match(content.strip()):
        out.update(command=content.strip().split()[0], command_run=False)
    outcome = record.get("commandOutcome")
    if isinstance(outcome, dict) and outcome.get("kind"):
        out["command_outcome"] = str(outcome["kind"])
    return out


_NOTIFICATION_TAGS = re.compile(r"<([a-z_-]+)>(.*?)</\1>", re.DOTALL)


def task_notification(text: str) -> dict[str, Any] | None:
    """The fields of a ``<task-notification>`` (a background task's completion):
    task id, tool use id, status, summary, result, and its usage (tokens, tool uses,
    duration). None when ``text`` is not one or names no task."""
    if not text.lstrip().startswith("<task-notification>"):
        return None
    tags = {name: value.strip() for name, value in _NOTIFICATION_TAGS.findall(text.split("<task-notification>", 1)[1])}
    if not tags.get("task-id"):
        return None

    def number(name: str) -> int | None:
        value = re.search(rf"<{name}>(\d+)</{name}>", tags.get("usage", ""))
        return int(value.group(1)) if value else None

    return {
        "task_id": tags["task-id"],
        "tool_use_id": tags.get("tool-use-id", ""),
        "status": tags.get("status", ""),
        "summary": tags.get("summary", ""),
        "result": tags.get("result", ""),
        "total_tokens": number("subagent_tokens"),
        "tool_use_count": number("tool_uses"),
        "duration_ms": number("duration_ms"),
    }


_TOOLS_USED_NOTE = re.compile(r"<tools-used-before-summary>.*?</tools-used-before-summary>\s*", re.DOTALL)
_TOOL_USE_ERROR = re.compile(r"\A\s*<tool_use_error>(.*)</tool_use_error>\s*\Z", re.DOTALL)


def result_text(text: str) -> str:
    """A tool result's (or a subagent's answer's) text without the client's own
    tags around it: the tools-used note dropped, a ``<tool_use_error>`` unwrapped."""
    if "<t" not in text:
        return text
    text = _TOOLS_USED_NOTE.sub("", text)
    error = _TOOL_USE_ERROR.match(text)
    return error.group(1) if error else text
