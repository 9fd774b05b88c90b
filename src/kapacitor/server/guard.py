"""What the server checks on every request before routing, and adds to every answer.

- Without ``--auth`` the server is this machine's alone: a request whose ``Host``
  is not a loopback name is refused (a web page on another site cannot rebind
  its DNS name to 127.0.0.1 and read the dashboard).
- A state-changing request (not GET/HEAD/OPTIONS) from a browser must come from
  this server's own pages: its ``Origin`` must name the host it was sent to
  (when a browser sends no ``Origin``, ``Sec-Fetch-Site`` must not say
  cross-site). Hooks and scripts send neither and are let through to the
  route's own checks (bearer token, loopback).
- Every answer carries security headers: a Content-Security-Policy that runs
  scripts from this server's files only (no inline script), forbids framing,
  and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def host_name(host: str) -> str:
    """The name of a ``Host`` header value, without port or IPv6 brackets."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def refusal(headers: Headers, method: str, local_only: bool) -> str | None:
    """Why a request must be refused, or None."""
    host = headers.get("host", "")
    if local_only and host_name(host).lower() not in LOOPBACK_NAMES:
        return f"refused: Host {host!r} is not this machine (this server runs without --auth: loopback only)"
    if method not in SAFE_METHODS:
        origin = headers.get("origin")
        if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.lower()):
            return f"refused: cross-origin {method} from {origin!r}"
        if origin is None and headers.get("sec-fetch-site", "none") in ("cross-site", "same-site"):
            return f"refused: cross-site {method}"
    return None


class Guard:
    """ASGI middleware applying the rules above."""

    def __init__(self, app: ASGIApp, *, local_only: bool):
        self.app, self.local_only = app, local_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        reason = refusal(Headers(scope=scope), scope["method"], self.local_only)
        if reason is not None:
            await PlainTextResponse(reason, status_code=403)(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)
