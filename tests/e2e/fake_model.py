"""A scripted Anthropic Messages API for driving the real Claude Code offline.

Runs in a thread of the test process on a 127.0.0.1 port (it stands in for the
model, which is outside Kapacitor). ``POST /v1/messages`` is answered from a
scenario, streamed as server-sent events like the real API:

- a request whose first user message contains one of ``scenario["subagents"]``'
  markers follows that subagent's script, any other request with tools follows
  ``scenario["main"]``; requests without tools (titles, probes) get ``side_text``;
- the turn is the number of assistant messages already in the request (the client
  resends the whole conversation); past the script's end: ``fallback_text``;
- ``overrides`` answer by a regex on the last user message (the /compact summary),
  or refuse it with ``status`` (an API error the client gives up on);
- a turn with ``"hold": NAME`` is answered only once the test calls
  ``release(NAME)``, so the test can look at the server while the client waits;
- a turn with ``"fail_first": STATUS`` is refused once with that status (an API
  error the client retries);
- a turn with ``"refuse": STATUS`` is refused every time, after its hold if it
  has one (a 400: an API error the client gives up on, ending that conversation's turn);
- with ``"usage": "cached"`` the usage billed is what the real API's prompt caching
  gives (the system prompt, tools and conversation counted, what an earlier request
  of the same conversation wrote read back from the cache, the rest written to it);
  otherwise every request writes its messages to the cache and reads nothing.

A scenario is the name of a file in ``scenarios/`` or the scenario itself (a dict).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).parent / "scenarios"


class FakeModel:
    def __init__(self, scenario: str | dict[str, Any], substitutions: dict[str, str]):
        text = json.dumps(scenario) if isinstance(scenario, dict) else (SCENARIOS / f"{scenario}.json").read_text()
        for key, value in substitutions.items():
            text = text.replace("{" + key + "}", json.dumps(value)[1:-1])
        self.scenario: dict[str, Any] = json.loads(text)
        self.lock = threading.Lock()
        self.releases: dict[str, threading.Event] = {}
        self.holding: set[str] = set()
        self.failed: set[tuple[str, int]] = set()
        self.requests: list[dict[str, Any]] = []
        self.cached: dict[str, int] = {}
        """Per conversation (its first user message), the prompt tokens the cache holds."""
        self.billed: list[dict[str, Any]] = []
        """Every answered request: ``model``, the ``usage`` billed, ``kind``:
        ``script`` (answered from a script: the transcript records its usage),
        ``override`` (e.g. the /compact summary) or ``side`` (no tools: a title, a
        model check; the transcript records neither), and ``conversation``: the
        marker of the subagent whose request it was, else ``main``."""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        for event in self.releases.values():
            event.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def release(self, name: str) -> None:
        self._event(name).set()

    def is_holding(self, name: str) -> bool:
        with self.lock:
            return name in self.holding

    def _event(self, name: str) -> threading.Event:
        with self.lock:
            return self.releases.setdefault(name, threading.Event())

    def kind_of(self, body: dict[str, Any]) -> str:
        """script, override or side: see ``billed``."""
        messages = body.get("messages") or []
        last = _text(next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), ""))
        if any(re.search(rule["match"], last, re.I | re.S) for rule in self.scenario.get("overrides", [])):
            return "override"
        return "script" if body.get("tools") else "side"

    def conversation_of(self, body: dict[str, Any]) -> str:
        """The marker of the subagent a request is from (its first user message has
        it), else ``main``."""
        first = _text(next((m.get("content") for m in body.get("messages") or [] if m.get("role") == "user"), ""))
        return next((m for m in self.scenario.get("subagents", {}) if m in first), "main")

    def reply(self, body: dict[str, Any]) -> tuple[int, list[dict[str, Any]], str]:
        """(HTTP status, content blocks, stop reason) for one request."""
        messages = body.get("messages") or []
        last = _text(next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), ""))
        for rule in self.scenario.get("overrides", []):
            if re.search(rule["match"], last, re.I | re.S):
                return rule.get("status", 200), [{"type": "text", "text": rule.get("text", "")}], "end_turn"
        if not body.get("tools"):
            return 200, [{"type": "text", "text": self.scenario.get("side_text", "OK")}], "end_turn"
        conversation = self.conversation_of(body)
        script = self.scenario["main"] if conversation == "main" else self.scenario["subagents"][conversation]
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        if turn >= len(script):
            return 200, [{"type": "text", "text": self.scenario.get("fallback_text", "Done.")}], "end_turn"
        step = script[turn]
        if "fail_first" in step and (conversation, turn) not in self.failed:
            self.failed.add((conversation, turn))
            return int(step["fail_first"]), [], ""
        if "hold" in step:
            with self.lock:
                self.holding.add(step["hold"])
            self._event(step["hold"]).wait(timeout=300)
            with self.lock:
                self.holding.discard(step["hold"])
        if "refuse" in step:
            return int(step["refuse"]), [], ""
        blocks = []
        for block in json.loads(json.dumps(step["content"])):
            if block["type"] == "tool_use":
                block.setdefault("id", f"toolu_{uuid.uuid4().hex[:24]}")
                names = [t.get("name") for t in body["tools"]]
                if block["name"] not in names and {"Task": "Agent", "Agent": "Task"}.get(block["name"]) in names:
                    block["name"] = {"Task": "Agent", "Agent": "Task"}[block["name"]]
            if block["type"] == "thinking":
                block.setdefault("signature", f"sig_{uuid.uuid4().hex}")
            blocks.append(block)
        return 200, blocks, "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            parts.append(_text(block.get("content")))
    return "\n".join(parts)


def billed_totals(billed: list[dict[str, Any]], kinds: tuple[str, ...] = ("script",)) -> dict[str, dict[str, int]]:
    """Per model, the token fields the fake billed (as ``sessions --json`` names
    them) and the number of requests, over the requests of the given ``kinds``."""
    out: dict[str, dict[str, int]] = {}
    for bill in billed:
        if bill["kind"] not in kinds:
            continue
        u = bill["usage"]
        totals = out.setdefault(bill["model"], dict.fromkeys(
            ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
             "ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens", "requests"), 0))
        totals["requests"] += 1
        for name in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            totals[name] += u[name]
        for name in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"):
            totals[name] += u["cache_creation"][name]
    return out


def _usage(body: dict[str, Any], blocks: list[dict[str, Any]], cached: dict[str, int] | None = None) -> dict[str, Any]:
    """The usage of one answer, about 4 characters a token. With ``cached`` (the
    model's per-conversation cache): the whole prompt is counted, the part an
    earlier request wrote is read, the rest written, a few tokens after the last
    cache breakpoint are plain input."""
    output = max(1, len(json.dumps(blocks)) // 4)
    if cached is None:
        prompt = len(json.dumps(body.get("messages", []))) // 4
        read, written, plain = 0, prompt, 5
    else:
        messages = body.get("messages") or []
        prompt = len(json.dumps([body.get("system"), body.get("tools"), messages])) // 4
        plain = 1 + len(json.dumps(messages[-1:])) % 9 if messages else 3
        key = _text(messages[0].get("content")) if messages else ""
        read = min(cached.get(key, 0), prompt - plain)
        written = prompt - plain - read
        cached[key] = prompt - plain
    return {"input_tokens": plain, "cache_creation_input_tokens": written, "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": written, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output, "service_tier": "standard"}


def _handler(model: FakeModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection; the body ends when it closes

        def log_message(self, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:  # connectivity probes
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": "fake model: no such endpoint"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            path = self.path.split("?")[0]
            if path.endswith("/count_tokens"):
                return self._json(200, {"input_tokens": len(json.dumps(body)) // 4})
            if not path.endswith("/v1/messages") or not isinstance(body, dict):
                return self.do_GET()
            with model.lock:
                model.requests.append(body)
            status, blocks, stop = model.reply(body)
            usage: dict[str, Any] = {}
            if status == 200:
                with model.lock:
                    cache = model.cached if model.scenario.get("usage") == "cached" else None
                    usage = _usage(body, blocks, cache)
                    model.billed.append({"model": body.get("model") or "claude-sonnet-4-5", "usage": usage, "kind": model.kind_of(body),
                                         "conversation": model.conversation_of(body)})
            if status != 200:
                kind = "overloaded_error" if status == 529 else "invalid_request_error"
                message = "Overloaded" if status == 529 else f"Request refused ({status})"
                return self._json(status, {"type": "error", "error": {"type": kind, "message": message}})
            message = {"id": f"msg_01{uuid.uuid4().hex[:22]}", "type": "message", "role": "assistant",
                       "model": body.get("model") or "claude-sonnet-4-5", "content": [], "stop_reason": None,
                       "stop_sequence": None, "usage": usage}
            if not body.get("stream"):
                return self._json(200, dict(message, content=blocks, stop_reason=stop))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
            self.end_headers()
            self._event("message_start", {"type": "message_start", "message": dict(message, usage=dict(message["usage"], output_tokens=1))})
            for index, block in enumerate(blocks):
                self._block(index, block)
            self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": message["usage"]})
            self._event("message_stop", {"type": "message_stop"})

        def _block(self, index: int, block: dict[str, Any]) -> None:
            kind = block["type"]
            start = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": "", "signature": ""},
                     "tool_use": {"type": "tool_use", "id": block.get("id"), "name": block.get("name"), "input": {}}}[kind]
            self._event("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            if kind == "text":
                deltas = [{"type": "text_delta", "text": block["text"][i:i + 50]} for i in range(0, len(block["text"]), 50)]
            elif kind == "thinking":
                deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}, {"type": "signature_delta", "signature": block["signature"]}]
            else:
                raw = json.dumps(block.get("input", {}))
                deltas = [{"type": "input_json_delta", "partial_json": raw[i:i + 50]} for i in range(0, len(raw), 50)]
            for delta in deltas:
                self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            self._event("content_block_stop", {"type": "content_block_stop", "index": index})

        def _event(self, name: str, data: dict[str, Any]) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()

        def _json(self, status: int, obj: dict[str, Any]) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
