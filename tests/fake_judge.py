"""A scripted judge model: the Anthropic Messages API (``POST /v1/messages``) and
the OpenAI chat API (``POST /v1/chat/completions``) over HTTP on 127.0.0.1, in a
thread of the test process (the model is outside Kapacitor).

Each request is matched to a question by the ``question_id '...'`` its prompt
names (``retrospective`` for the retrospective prompt). The script maps a
question id (or ``*``) to a list of steps, one per request for that question
(the last step repeats):

- ``{"answer": {...}}``: submit this answer (fields default to a valid pass
  citing the first ref of the prompt; ``"cite": [...]`` replaces the evidence refs);
- ``{"raw": "text"}``: reply with text instead (e.g. malformed JSON);
- ``{"tool": NAME, "input": {...}}``: call a session tool;
- ``{"sleep": SECONDS}``: answer only after that long (a timeout);
- ``{"status": CODE}``: fail with that HTTP status.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RETRO = {"assessment": "A focused session.", "strengths": ["ran the tests"], "issues": ["none"],
         "suggestions": ["Run the tests before and after each change."]}


class FakeJudge:
    def __init__(self, script: dict[str, list[dict[str, Any]]] | None = None):
        self.script = script or {}
        self.lock = threading.Lock()
        self.turns: dict[str, int] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []  # (protocol, question, body)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def asked(self, question: str) -> list[dict[str, Any]]:
        return [body for _, q, body in self.requests if q == question]

    def step(self, question: str) -> dict[str, Any]:
        with self.lock:
            steps = self.script.get(question) or self.script.get("*") or [{"answer": {}}]
            turn = self.turns.get(question, 0)
            self.turns[question] = turn + 1
        return steps[min(turn, len(steps) - 1)]


def question_of(text: str) -> str:
    if "Write a retrospective" in text:
        return "retrospective"
    found = re.search(r"question_id '([^']+)'", text)
    return found.group(1) if found else "?"


def answer_for(question: str, first_prompt: str, step: dict[str, Any]) -> dict[str, Any]:
    if question == "retrospective":
        return dict(RETRO, **step.get("answer", {}))
    refs = re.findall(r"\[([0-9a-f]{8})\]", first_prompt)
    cite = step.get("cite", refs[:1])
    answer = {"category": "", "question_id": question, "score": 5, "finding": f"No concern about {question}.",
              "evidence": [{"event_id": r, "note": "seen here"} for r in cite], "recommendation": ""}
    return answer | step.get("answer", {})


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") if isinstance(b.get("text"), str) else _text(b.get("content", ""))
                     for b in content or [] if isinstance(b, dict))


def _handler(judge: FakeJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            path = self.path.split("?")[0]
            protocol = "openai" if path.endswith("/chat/completions") else "anthropic"
            messages = body.get("messages") or []
            first = _text(next((m.get("content") for m in messages if m.get("role") == "user"), ""))
            question = question_of(first)
            with judge.lock:
                judge.requests.append((protocol, question, body))
            # a tool result or a retry continues the question's script
            step = judge.step(question)
            if "sleep" in step:
                time.sleep(step["sleep"])
            if "status" in step:
                return self._json(step["status"], {"type": "error", "error": {"type": "api_error", "message": "fake judge: refused"}})
            usage = {"input_tokens": len(json.dumps(messages)) // 4, "output_tokens": 50}
            if protocol == "anthropic":
                if "raw" in step:
                    content = [{"type": "text", "text": step["raw"]}]
                elif "tool" in step:
                    content = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}", "name": step["tool"], "input": step.get("input", {})}]
                else:
                    content = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}", "name": "submit_answer",
                                "input": answer_for(question, first, step)}]
                return self._json(200, {"id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "role": "assistant",
                                        "model": body.get("model"), "content": content, "stop_reason": "tool_use",
                                        "stop_sequence": None, "usage": usage})
            message: dict[str, Any] = {"role": "assistant", "content": None}
            if "raw" in step:
                message["content"] = step["raw"]
            elif "tool" in step:
                message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                                          "function": {"name": step["tool"], "arguments": json.dumps(step.get("input", {}))}}]
            else:
                message["content"] = json.dumps(answer_for(question, first, step))
            return self._json(200, {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                                    "model": body.get("model"), "choices": [{"index": 0, "message": message,
                                    "finish_reason": "tool_calls" if "tool" in step else "stop"}],
                                    "usage": {"prompt_tokens": usage["input_tokens"], "completion_tokens": 50,
                                              "total_tokens": usage["input_tokens"] + 50}})

        def _json(self, status: int, obj: dict[str, Any]) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass

    return Handler
