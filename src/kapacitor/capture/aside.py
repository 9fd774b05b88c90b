"""Batches the server refused for good: kept, listed, and retried by themselves.

A batch the server refuses with a 4xx about the batch itself, that resending
the same bytes cannot change today (malformed, a batch version it does not
speak, a body over its limit: ``sender.classify``), is *set aside* so that it
never blocks the batches after it (``shipper``). (A refused token, 401/403,
would refuse every batch alike: those wait in the spool, in order.) The cause
is often fixed later — the server upgraded, its limit raised, the client
pointed at the right server — so a set-aside batch is retried:

- at once (at the next check) when the client's server URL or token differ
  from the ones it was refused with, or the server reports another version
  than it did then (``/healthz`` ``version``);
- otherwise with exponential back-off: ``FIRST_WAIT`` after it was set aside,
  doubling after each refusal, at most ``MOST_WAIT`` (a day) apart;
- now, whatever its schedule, by ``kapacitor sync --retry``.

Who retries: ``kapacitor sync``, and any running follower (``sweep``, at most
every ``CHECK_EVERY`` seconds across the machine), never a hook (the agent
waits for it). Retried batches are posted as they are: event ids are derived
from the lines and the hook payload and the server normalizes each batch
alone, so a batch that arrives late gives the same events as on time (one
that did arrive is skipped) — but it is stored after the batches sent
meanwhile: a session whose first line it held takes its start from a later
line, and its chat lists these lines after those (``docs/reliability.md``).

The ``<session>.aside`` file (state dir) is append-only JSON lines under
``flock``: an entry ``{"at", "reason", "config", "version", "batch"}`` per batch
set aside, then ``{"retried": entry offset, "at", "reason", "config",
"version"}`` per refused retry, ``{"seen": entry offset, "version"}`` when
the server's version is first learnt for an entry that had none (a hook does
not ask the server for it), and ``{"done": entry offset, "at"}`` once
delivered. It is emptied (under the same lock) when every entry is done.
Stdlib only: the follower and the hook's set-aside path run it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time

from kapacitor.capture import sender
from kapacitor.capture.client_config import ClientConfig, log_failure, state_dir
from kapacitor.capture.spool import append_line, exclusive, opened, session_file, sessions_dir

FIRST_WAIT = 300.0
"""Seconds from a refusal to the first retry by the clock (then doubled each time)."""
MOST_WAIT = 86400.0
"""The longest wait (seconds) between two retries of one batch."""
CHECK_EVERY = 30.0
"""A follower looks at the set-aside batches and other sessions' spools at most
this often (seconds), machine-wide."""


def fingerprint(config: ClientConfig) -> str:
    """A short digest of the server URL and token (never the token itself), to
    tell whether the client's config changed since a batch was refused."""
    import hashlib

    return hashlib.sha256(f"{config.server}\n{config.token}".encode()).hexdigest()[:16]


def _version_file() -> str:
    return os.path.join(state_dir(), "server-version.json")


def known_version(server: str) -> str:
    """The version ``server`` last reported (``server_version``), "" if unknown."""
    try:
        with open(_version_file(), "rb") as handle:
            seen = json.loads(handle.read())
    except (OSError, ValueError):
        return ""
    return str(seen.get(server) or "") if isinstance(seen, dict) else ""


def server_version(config: ClientConfig, timeout: float = 2.0) -> str:
    """The server's version from its ``/healthz`` (any status: a 503 still says
    it), remembered for ``set_aside``; "" when it cannot be had."""
    url = config.server + "/healthz"
    try:
        if url.startswith("http://"):
            _, body = sender.exchange("GET", url, {}, b"", timeout)
        else:
            import urllib.error
            import urllib.request

            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    body = response.read()
            except urllib.error.HTTPError as exc:
                body = exc.read()
        version = json.loads(body).get("version")
    except (OSError, ValueError, AttributeError):
        return ""
    version = str(version) if isinstance(version, str) else ""
    if version and version != known_version(config.server):
        try:
            with open(_version_file(), "rb") as handle:
                seen = json.loads(handle.read())
        except (OSError, ValueError):
            seen = {}
        seen = {**(seen if isinstance(seen, dict) else {}), config.server: version}
        tmp = f"{_version_file()}.{os.getpid()}.tmp"
        with open(opened(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", closefd=True) as handle:
            handle.write(json.dumps(seen))
        os.replace(tmp, _version_file())
    return version


def set_aside(session_id: str, body: bytes, reason: str, at: str, config: ClientConfig) -> str:
    """Keep a batch the server refused for good in the session's ``.aside`` file
    (durably, with the config and server version it was refused under); its path."""
    path = session_file(session_id, ".aside")
    head = {"at": at, "reason": reason, "config": fingerprint(config), "version": known_version(config.server)}
    encoded = json.dumps(head)[:-1].encode("utf-8", "surrogatepass")
    append_line(path, encoded + b',"batch":' + body.rstrip(b"\n") + b"}")
    return path


class SetAside:
    """One batch set aside and not yet delivered: where it is (``path``,
    ``offset``), its size in bytes, when and why it was refused first (``at``,
    ``reason``: the latest refusal's), ``attempts`` (retries refused since),
    ``last`` (epoch seconds of the latest refusal), and the config digest and
    server version of the latest refusal. (A plain class, as in ``spool``.)"""

    __slots__ = ("path", "offset", "size", "at", "reason", "attempts", "last", "config", "version")

    def __init__(self, path: str, offset: int, size: int, head: dict):
        self.path, self.offset, self.size = path, offset, size
        self.at, self.reason = str(head.get("at", "")), str(head.get("reason", ""))
        self.attempts, self.last = 0, epoch(self.at)
        self.config, self.version = str(head.get("config", "")), str(head.get("version", ""))

    def next_retry(self) -> float:
        """When (epoch seconds) the back-off lets it be retried."""
        return self.last + min(MOST_WAIT, FIRST_WAIT * 2 ** min(self.attempts, 30))

    def why_due(self, config: str, version: str, now: float) -> str:
        """Why it should be retried now ("" if it should not): the client's
        config (digest ``config``) or the server's ``version`` changed, or its
        back-off ran out."""
        if self.config and config != self.config:
            return "the client's server or token changed"
        if self.version and version and version != self.version:
            return f"the server's version changed ({self.version} -> {version})"
        return "its back-off ran out" if now >= self.next_retry() else ""

    def as_json(self, now: float) -> dict:
        """What ``kapacitor sync --json`` lists."""
        return {"at": self.at, "reason": self.reason, "age_s": round(max(0.0, now - epoch(self.at)), 1), "bytes": self.size,
                "attempts": self.attempts, "next_retry": _stamp(self.next_retry()), "path": self.path}


def epoch(stamp: str) -> float:
    """Epoch seconds of a ``shipper.utc_stamp`` (``2026-01-02T03:04:05.678901Z``); 0 if unreadable."""
    import calendar

    try:
        whole, _, fraction = stamp.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (fraction or "0"))
    except ValueError:
        return 0.0


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _head(line: bytes) -> dict:
    """The JSON object of an ``.aside`` line without its (maybe huge) batch."""
    cut = line.find(b',"batch":')
    try:
        head = json.loads(line[:cut] + b"}" if cut >= 0 else line)
    except ValueError:
        return {}
    return head if isinstance(head, dict) else {}


def pending(session_id: str) -> list[SetAside]:
    """The session's set-aside batches not yet delivered, oldest first."""
    path = session_file(session_id, ".aside")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return []
    entries: dict[int, SetAside] = {}
    offset = 0
    for line in data.split(b"\n")[:-1]:
        head = _head(line)
        if "done" in head:
            entries.pop(head["done"], None)
        elif "seen" in head:
            entry = entries.get(head["seen"])
            if entry is not None:
                entry.version = str(head.get("version", ""))
        elif "retried" in head:
            entry = entries.get(head["retried"])
            if entry is not None:
                entry.attempts += 1
                entry.last, entry.reason = epoch(str(head.get("at", ""))), str(head.get("reason", entry.reason))
                entry.config, entry.version = str(head.get("config", "")), str(head.get("version", ""))
        else:  # an entry (written before retries existed: only at, reason, batch)
            entries[offset] = SetAside(path, offset, len(line), head)
        offset += len(line) + 1
    return list(entries.values())


def sessions_set_aside() -> list[str]:
    """Every session with a non-empty ``.aside`` file (its other state may be forgotten)."""
    try:
        found = [e.name for e in os.scandir(sessions_dir()) if e.name.endswith(".aside") and e.stat().st_size]
    except OSError:
        return []
    return sorted(n.removesuffix(".aside") for n in found)


def _batch(entry: SetAside) -> bytes:
    with open(entry.path, "rb") as handle:
        handle.seek(entry.offset)
        line = handle.readline().rstrip(b"\n")
    cut = line.find(b',"batch":')
    return line[cut + len(',"batch":'):-1]


def retry(config: ClientConfig, *, force: bool = False, wait: float = 0.0) -> list[dict]:
    """Retry the set-aside batches that are due (``SetAside.why_due``; every one
    with ``force``), oldest first per session, stopping at the first that cannot
    reach the server. One retrier at a time on the machine (``wait`` seconds for
    another to finish, else nothing is done). Returns one row per batch tried:
    session_id, at, why, outcome (``sent``, ``rejected``, ``failed``), detail."""
    tried: list[dict] = []
    sessions = sessions_set_aside()
    if not sessions:
        return tried
    with exclusive(os.path.join(state_dir(), "aside.lock"), wait) as mine:
        if not mine:
            return tried
        digest, now = fingerprint(config), time.time()
        version: str | None = None  # the server's, asked once, only when it matters
        for session_id in sessions:
            for entry in pending(session_id):
                why = "asked to (--retry)" if force else entry.why_due(digest, "", now)
                if not why:
                    version = server_version(config) if version is None else version
                    why = entry.why_due(digest, version, now)
                if not why:
                    if version and not entry.version:  # the version it waits for a change of
                        append_line(entry.path, json.dumps({"seen": entry.offset, "version": version}).encode())
                    continue
                body = _batch(entry)
                outcome = sender.post(config, session_id, body, sender.patient_timeout(len(body)))
                tried.append({"session_id": session_id, "at": entry.at, "why": why, "outcome": outcome.kind,
                              "detail": outcome.detail})
                stamp = _stamp(time.time())
                if outcome.kind == sender.SENT:
                    append_line(entry.path, json.dumps({"done": entry.offset, "at": stamp}).encode())
                    log_failure(f"session {session_id}: a batch set aside at {entry.at} was delivered ({why})")
                elif outcome.kind == sender.REJECTED:
                    version = server_version(config) if version is None else version
                    append_line(entry.path, json.dumps({"retried": entry.offset, "at": stamp, "reason": outcome.detail,
                                                    "config": digest, "version": version}).encode())
                else:
                    _empty_if_done(session_id)
                    return tried  # the server is not there: every later try would fail as well
            _empty_if_done(session_id)
    return tried


def _empty_if_done(session_id: str) -> None:
    """Empty the session's ``.aside`` file when every batch in it was delivered
    (in place, under its lock: a writer may hold it open)."""
    path = session_file(session_id, ".aside")
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not pending(session_id):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)
