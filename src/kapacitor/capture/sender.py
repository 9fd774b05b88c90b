"""POST a batch to the ingest API, fast and with short timeouts (stdlib only).

Plain ``http://`` goes over a raw socket with a hand-written HTTP/1.1 request:
``http.client`` and ``urllib`` cost more to import than the rest of the hook
together, and even ``socket`` (enum, selectors, array) costs ~3 ms of a ~10 ms
budget, so this uses its C core ``_socket`` directly. ``https://`` falls back to
``urllib`` (TLS needs it anyway).
"""

from __future__ import annotations

import _socket
import json
import time

from kapacitor.capture.client_config import ClientConfig

CONNECT_TIMEOUT = 0.5
HOOK_TIMEOUT = 1.0
"""A hook waits at most this long for an answer (the agent waits for the hook)."""
PATIENT_TIMEOUT = 10.0
"""The follower and ``kapacitor sync`` wait longer: nobody waits for them."""
SLOWEST_INGEST = 256 << 10
"""Bytes per second the server is given, on top of ``PATIENT_TIMEOUT``, to take a
large batch (a huge transcript line costs it seconds to normalize and store)."""
GZIP_OVER = 64 << 10
"""Bodies larger than this (bytes) travel gzip-compressed (``Content-Encoding``)."""
INGEST_PATH = "/api/ingest/sessions/"

SENT, REJECTED, FAILED = "sent", "rejected", "failed"


class Outcome:
    """``sent``; ``rejected`` (a 4xx about this batch — malformed, too large, a
    version the server does not speak: set it aside so it blocks no other, log
    why; ``capture.aside`` retries it once the server or config changes);
    ``failed`` (unreachable, 5xx, 401/403 a token or right refused — every batch
    would be —, 404 no ingest API, 408, 429: keep it in the spool, in order,
    retry at every pass: nothing overtakes it, so the session's events arrive
    in the order they were written).
    ``slow``: it failed by timing out (the server is there but not answering).
    ``huge``: not tried, a batch too large for a hook (the follower sends it).
    ``status``: the server's HTTP status, 0 when it did not answer."""

    __slots__ = ("kind", "detail", "slow", "huge", "status")

    def __init__(self, kind: str, detail: str = "", slow: bool = False, huge: bool = False, status: int = 0):
        self.kind, self.detail, self.slow, self.huge, self.status = kind, detail, slow, huge, status

    def __repr__(self) -> str:
        return f"Outcome({self.kind!r}, {self.detail!r})"


REFUSED = (401, 403, 404)
"""Statuses that refuse every batch of the session until someone acts (the
token, the session's owner): the batch waits in the spool, in order
(``capture.refusals`` says why and what to do)."""


def classify(status: int, body: str) -> Outcome:
    if 200 <= status < 300:
        return Outcome(SENT, status=status)
    detail = f"HTTP {status}: {said(body)[:300]}"
    if 400 <= status < 500 and status not in (*REFUSED, 408, 429):
        return Outcome(REJECTED, detail, status=status)
    return Outcome(FAILED, detail, status=status)


def said(body: str) -> str:
    """What the server said: the text of an error answer's ``{"detail": "..."}``
    (FastAPI's form), else the body as it is."""
    if body.startswith('{"detail":'):
        try:
            detail = json.loads(body)["detail"]
        except (ValueError, KeyError, TypeError):
            return body
        if isinstance(detail, str):
            return detail
    return body


def patient_timeout(size: int) -> float:
    """Seconds the follower and ``kapacitor sync`` wait for a batch of ``size`` bytes."""
    return PATIENT_TIMEOUT + size / SLOWEST_INGEST


def post(config: ClientConfig, session_id: str, body: bytes, timeout: float) -> Outcome:
    """POST ``body`` and wait at most ``timeout`` seconds in all; gzip-compressed
    when large."""
    url = config.server + INGEST_PATH + session_id + "/batches"
    headers = {"Content-Type": "application/json"}
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    if len(body) > GZIP_OVER:
        import zlib  # only for large bodies: a hook's small batch does not pay the import

        packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing, the fastest level
        body = packer.compress(body) + packer.flush()
        headers["Content-Encoding"] = "gzip"
    try:
        if url.startswith("http://"):
            return _post_plain(url, headers, body, timeout)
        return _post_urllib(url, headers, body, timeout)
    except TimeoutError:
        return Outcome(FAILED, f"{config.server}: no answer within {timeout:g} s", slow=True)
    except (OSError, ValueError) as exc:
        return Outcome(FAILED, f"{config.server}: {exc}")


def split_http_url(url: str) -> tuple[str, str, int, str]:
    """(netloc, host, port, path) of an ``http://`` URL (``urllib.parse`` costs an import)."""
    netloc, _, path = url.removeprefix("http://").partition("/")
    host, port = netloc, "80"
    if netloc.startswith("["):
        host, _, tail = netloc[1:].partition("]")
        port = tail.removeprefix(":") or port
    elif ":" in netloc:
        host, _, port = netloc.rpartition(":")
    return netloc, host, int(port), "/" + path


def _post_plain(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    try:
        status, answer = exchange("POST", url, headers, body, timeout)
    except ValueError as exc:
        return Outcome(FAILED, str(exc))
    return classify(status, answer.decode("utf-8", "replace"))


def exchange(method: str, url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
    """One plain ``http://`` request over a raw socket, within ``timeout`` seconds in
    all: (status, body). ``ValueError`` when the answer is not HTTP; ``OSError``
    (``TimeoutError``) when the server cannot be reached or is too slow."""
    netloc, host, port, path = split_http_url(url)
    head = [f"{method} {path} HTTP/1.1", f"Host: {netloc}", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    deadline = time.monotonic() + timeout
    sock = _connect(host, port)
    try:
        sock.settimeout(timeout)
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        chunks = []
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))  # a total, not a per-read, limit
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    response = b"".join(chunks)
    status_line, _, rest = response.partition(b"\r\n")
    status = status_line.split()
    if len(status) < 2 or not status[1].isdigit():
        raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
    return int(status[1]), rest.partition(b"\r\n\r\n")[2]


def _connect(host: str, port: int) -> _socket.socket:
    """``socket.create_connection`` on ``_socket`` (bytes host: a str one would make
    getaddrinfo load the idna codec)."""
    error: OSError = OSError(f"cannot resolve {host}")
    for family, kind, proto, _, address in _socket.getaddrinfo(host.encode("ascii"), port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error


def _post_urllib(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return classify(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return classify(exc.code, exc.read().decode("utf-8", "replace"))
